"""The two empirical laws SDSL composes: perplexity from pre-training scale, acceptance from perplexity.

References: sdsl-math.md sections 3 and 4; Besiroglu et al. 2024 (Chinchilla replication) for the
perplexity constants; the SDSL paper's Equation 5 for the alpha law.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class PerplexityLaw:
    """ppl(N, D) = exp(E + A / N^a + B / D^b), the Chinchilla loss law exponentiated (sdsl-math.md s.4)."""

    e: float = 1.817
    a: float = 482.0
    alpha: float = 0.348
    b: float = 2085.0
    beta: float = 0.366


@dataclass(frozen=True)
class AlphaLaw:
    """alpha = A x + B y + C with x draft and y target perplexity (SDSL Equation 5, sdsl-math.md s.3).

    The blog rounds the paper's B = 0.01297, C = 0.6421 to 0.013 and 0.642; the blog's values are the
    defaults because the reference N* table (sdsl-math.md s.5) was computed with them.
    """

    a: float = -0.0067
    b: float = 0.013
    c: float = 0.642



PERPLEXITY_LAW = PerplexityLaw()
ALPHA_LAW = AlphaLaw()


def perplexity(params, train_tokens, law: PerplexityLaw = PERPLEXITY_LAW):
    """Pre-training perplexity of a model with `params` parameters trained on `train_tokens` tokens."""
    params = np.asarray(params, dtype=float)
    train_tokens = np.asarray(train_tokens, dtype=float)
    # Far outside the fit (a handful of parameters or tokens) the law's perplexity exceeds a float: inf,
    # quietly. Callers check the alpha it leads to and report it.
    with np.errstate(over="ignore", divide="ignore"):
        return np.exp(law.e + law.a / params**law.alpha + law.b / train_tokens**law.beta)


def alpha_from_perplexity(draft_ppl, target_ppl, law: AlphaLaw = ALPHA_LAW):
    """Acceptance rate from draft and target perplexity (SDSL Equation 5). Not clipped to (0, 1); NaN where
    both perplexities are infinite (see `perplexity`): callers check the range and report it."""
    with np.errstate(invalid="ignore"):
        return law.a * np.asarray(draft_ppl, dtype=float) + law.b * np.asarray(target_ppl, dtype=float) + law.c


def alpha_from_sizes(draft_params, target_params, train_tokens, law: AlphaLaw = ALPHA_LAW):
    """Acceptance rate of a draft/target pair trained on the same `train_tokens` (Eq. 5 over Eq. 4's ppl).

    Raises InputError when the law leaves (0, 1): the affine fit has no meaning there, and clipping
    would invent an acceptance rate the law does not give.
    """
    alpha = alpha_from_perplexity(
        perplexity(draft_params, train_tokens), perplexity(target_params, train_tokens), law
    )
    bad = ~((alpha > 0) & (alpha < 1))
    if np.any(bad):
        i = np.flatnonzero(np.broadcast_to(bad, np.shape(alpha)).ravel())[0] if np.ndim(alpha) else 0
        value = np.ravel(alpha)[i]
        draft = np.ravel(np.broadcast_to(draft_params, np.shape(alpha)))[i]
        if np.isnan(value):
            raise InputError(
                f"the perplexity law overflows for draft params {draft:.4g} at train tokens "
                f"{np.ravel(np.broadcast_to(train_tokens, np.shape(alpha)))[i]:.4g}: no alpha; expected sizes and "
                "training tokens within the law's reach (billions of tokens)"
            )
        raise InputError(
            f"alpha law gives alpha = {value:.4g} for draft params {draft:.4g}; "
            "expected a value in (0, 1): the draft is too small for the law to hold"
        )
    return alpha
