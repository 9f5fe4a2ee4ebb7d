"""Acceptance processes: how many drafted tokens the target accepts, per sequence per iteration.

Each process draws a whole block of accepted counts at once, shape (steps, batch), in one vectorised call
(never token by token). With P(A >= i) = r_i (r_i = P(first i drafts all accepted)), the tokens emitted
per iteration are A + 1 and E[A + 1] = 1 + sum_{i<=gamma} r_i (sdsl-math.md s.6).

- `IidAcceptance(alpha)`: every drafted token accepted independently with probability alpha (Leviathan's
  assumption): A = min(Geometric failures-before-first-rejection, gamma), i.e. r_i = alpha^i.
- `BetaAcceptance(alpha, concentration)`: each request draws its own alpha ~ Beta(alpha k, (1 - alpha) k)
  (mean alpha, variance alpha(1 - alpha)/(k + 1)), then accepts i.i.d. at that alpha.
- `ProfileAcceptance(prefix_probs)`: position-dependent, r_1 >= r_2 >= ... given as a list; beyond the
  list, the last conditional acceptance r_n / r_(n-1) repeats (a geometric tail).
"""

from dataclasses import dataclass

import numpy as np

from ..analytic import check_alpha, expected_tokens_from_prefix_probs, expected_tokens_per_iteration
from ..errors import InputError


@dataclass(frozen=True)
class IidAcceptance:
    alpha: float

    def __post_init__(self):
        check_alpha(self.alpha)

    @property
    def mean_alpha(self) -> float:
        return self.alpha

    def request_alphas(self, rng, n: int) -> np.ndarray:
        return np.full(n, self.alpha)

    def draw(self, rng, alphas: np.ndarray, gamma: int, steps: int) -> np.ndarray:
        """Accepted counts, shape (steps, len(alphas)): min(failures before the first rejection, gamma)."""
        accepted = rng.geometric(1.0 - alphas, size=(steps, alphas.size))
        accepted -= 1
        np.minimum(accepted, gamma, out=accepted)
        return accepted

    def expected_tokens(self, gamma) -> np.ndarray:
        """E[accepted + 1] at each gamma (Leviathan eq. 1)."""
        return expected_tokens_per_iteration(self.alpha, gamma)


@dataclass(frozen=True)
class BetaAcceptance(IidAcceptance):
    concentration: float = 20.0

    def __post_init__(self):
        check_alpha(self.alpha)
        if not (isinstance(self.concentration, (int, float)) and self.concentration > 0):
            raise InputError(f"alpha concentration {self.concentration!r} must be a positive number")

    def request_alphas(self, rng, n: int) -> np.ndarray:
        k = self.concentration
        # A request drawing alpha == 1.0 (possible in floating point) would accept forever; keep it < 1.
        return np.minimum(rng.beta(self.alpha * k, (1 - self.alpha) * k, size=n), 1 - 1e-12)

    def expected_tokens(self, gamma) -> np.ndarray:
        """E over the Beta population of sum_{i<=gamma} a^i, from the Beta moments
        E[a^i] = prod_{j<i} (p + j) / (p + q + j), p = alpha k, q = (1 - alpha) k."""
        p, q = self.alpha * self.concentration, (1 - self.alpha) * self.concentration
        gamma = np.asarray(gamma)
        top = int(gamma.max()) if gamma.size else 0
        j = np.arange(top)
        moments = np.concatenate(([1.0], np.cumprod((p + j) / (p + q + j))))
        return np.cumsum(moments)[gamma]


@dataclass(frozen=True)
class ProfileAcceptance:
    prefix_probs: tuple

    def __post_init__(self):
        r = np.asarray(self.prefix_probs, dtype=float)
        if r.ndim != 1 or r.size == 0 or not np.all((r > 0) & (r < 1)):
            raise InputError(f"acceptance profile {list(self.prefix_probs)!r}: expected a non-empty list of "
                             "prefix probabilities r_i = P(first i drafts accepted), each in (0, 1)")
        if np.any(np.diff(r) > 0):
            raise InputError(f"acceptance profile {list(self.prefix_probs)!r}: r_i = P(first i accepted) "
                             "cannot increase with i; expected a non-increasing list")

    @property
    def mean_alpha(self) -> float:
        """The i.i.d. alpha with the same P(all n accepted): r_n^(1/n), n = len(r)."""
        return float(self.prefix_probs[-1] ** (1.0 / len(self.prefix_probs)))

    def prefix(self, gamma: int) -> np.ndarray:
        """r_1..r_gamma, extending the list with its last conditional acceptance."""
        r = np.asarray(self.prefix_probs, dtype=float)
        if gamma <= r.size:
            return r[:gamma]
        tail = r[-1] / r[-2] if r.size > 1 else r[0]
        return np.concatenate((r, r[-1] * tail ** np.arange(1, gamma - r.size + 1)))

    def request_alphas(self, rng, n: int) -> np.ndarray:
        return np.full(n, np.nan)

    def draw(self, rng, alphas: np.ndarray, gamma: int, steps: int) -> np.ndarray:
        """A = #{i <= gamma : r_i > u}, u ~ U(0, 1): P(A >= i) = r_i since r is non-increasing."""
        neg_r = -self.prefix(gamma)
        u = rng.random((steps, alphas.size))
        return np.searchsorted(neg_r, -u, side="left").astype(np.int64)

    def expected_tokens(self, gamma) -> np.ndarray:
        """E[accepted + 1] = 1 + sum_{i<=gamma} r_i at each gamma."""
        gamma = np.asarray(gamma)
        r = self.prefix(int(gamma.max()) if gamma.size else 0)
        out = [expected_tokens_from_prefix_probs(r[:g]) for g in gamma.ravel()]
        return np.asarray(out, dtype=float).reshape(gamma.shape)
