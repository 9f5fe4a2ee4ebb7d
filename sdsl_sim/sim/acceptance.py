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
- `TreeAcceptance(tree, marginal)`: a token tree (`analytic.trees`) walked from the root, per-depth and
  per-rank marginal acceptance; the accepted count is the depth of the deepest accepted node, so a chain
  is a profile with r_i = prod_{d<=i} p_d.
- `NgramAcceptance(base, trigger_rate)`: n-gram lookup proposes in a `trigger_rate` share of iterations
  only (a match exists); a proposal is accepted as `base`; an iteration without one draws NO_PROPOSAL.

The engine reads NO_PROPOSAL (-1) as "nothing drafted": the sequence verifies its last token alone and
emits one token; it counts in no draft metric.
"""

from dataclasses import dataclass

import numpy as np

from ..analytic import (
    alpha_from_expected_tokens,
    check_alpha,
    check_tree,
    cut_tree,
    expected_tokens_from_prefix_probs,
    expected_tokens_per_iteration,
    node_depths,
    node_ranks,
    path_probabilities,
)
from ..errors import InputError

NO_PROPOSAL = -1  # an accepted count meaning the drafter proposed nothing this iteration


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


@dataclass(frozen=True)
class TreeAcceptance:
    """Acceptance over a token tree: `marginal[d - 1][r - 1]` is the chance that the rank-r child of an
    accepted depth-(d - 1) node is the accepted one (`analytic.marginal_acceptance`). At lookahead gamma
    the tree is cut at depth gamma (`analytic.cut_tree`)."""

    tree: tuple
    marginal: tuple

    def __post_init__(self):
        tree = check_tree(self.tree)
        object.__setattr__(self, "tree", tree)
        object.__setattr__(self, "marginal", tuple(np.asarray(row, dtype=float) for row in self.marginal))
        path_probabilities(tree, self.marginal, "marginal")  # checks depths and ranks against the profile
        object.__setattr__(self, "_tables", {})  # per-gamma walk tables, built on first use

    @property
    def depth(self) -> int:
        return int(node_depths(self.tree).max())

    @property
    def mean_alpha(self) -> float:
        """The i.i.d. alpha whose chain of the tree's depth yields the same expected tokens (Leviathan eq. 1
        inverted): a one-number summary, not an input of the walk."""
        return alpha_from_expected_tokens(float(self.expected_tokens(self.depth)), self.depth)

    def request_alphas(self, rng, n: int) -> np.ndarray:
        return np.full(n, np.nan)

    def _table(self, gamma: int):
        """(children, upper) of the tree cut at depth gamma, one row per node with the root first: the
        row's children in rank order (-1 padding) and the cumulative marginals of those children (padded
        with their total, so that a uniform at or above the total selects no child)."""
        table = self._tables.get(gamma)
        if table is None:
            tree = cut_tree(self.tree, gamma)
            depths, ranks = node_depths(tree), node_ranks(tree)
            width = int(ranks.max())
            children = np.full((len(tree) + 1, width), -1, np.int64)
            prob = np.zeros((len(tree) + 1, width))
            for i, (parent, d, r) in enumerate(zip(tree, depths, ranks)):
                children[parent + 1, r - 1] = i + 1
                prob[parent + 1, r - 1] = self.marginal[d - 1][r - 1]
            table = self._tables[gamma] = (children, np.cumsum(prob, axis=1))
        return table

    def draw(self, rng, alphas: np.ndarray, gamma: int, steps: int) -> np.ndarray:
        """Accepted depth per cell, shape (steps, len(alphas)), from ONE uniform per cell: at an accepted
        node the child whose marginal interval holds u is accepted, and u is rescaled to that interval
        (uniform again), so a chain draws exactly as `ProfileAcceptance` with the same generator."""
        u = rng.random((steps, alphas.size))
        accepted = np.zeros(u.shape, np.int64)
        if gamma <= 0:
            return accepted
        children, upper = self._table(gamma)
        node = np.zeros(u.shape, np.int64)  # row of the current node (0: the root)
        alive = np.ones(u.shape, bool)
        width = children.shape[1]
        for _ in range(min(gamma, self.depth)):
            bounds = upper[node]
            rank = np.minimum((bounds <= u[..., None]).sum(axis=-1), width - 1)  # the first bound above u
            high = np.take_along_axis(bounds, rank[..., None], -1)[..., 0]
            child = children[node, rank]
            alive &= (u < high) & (child >= 0)
            if not alive.any():
                break
            low = np.where(rank > 0, np.take_along_axis(bounds, np.maximum(rank - 1, 0)[..., None], -1)[..., 0], 0.0)
            u = np.where(alive, (u - low) / np.where(alive, high - low, 1.0), u)
            node = np.where(alive, child, node)
            accepted += alive
        return accepted

    def expected_tokens(self, gamma) -> np.ndarray:
        """F of the tree cut at each gamma: 1 + the path probabilities of the nodes of depth <= gamma."""
        gamma = np.asarray(gamma)
        by_depth = np.bincount(node_depths(self.tree), weights=path_probabilities(self.tree, self.marginal,
                                                                                   "marginal"))
        cumulative = 1.0 + np.cumsum(by_depth)  # index d: nodes of depth <= d (by_depth[0] = 0)
        return cumulative[np.minimum(gamma, self.depth)]


@dataclass(frozen=True)
class NgramAcceptance:
    """n-gram lookup: a proposal in a `trigger_rate` share of iterations, accepted as `base`."""

    base: object
    trigger_rate: float

    def __post_init__(self):
        if not 0.0 < self.trigger_rate <= 1.0:
            raise InputError(f"trigger_rate {self.trigger_rate!r}; expected a share in (0, 1]")

    @property
    def mean_alpha(self) -> float:
        return self.base.mean_alpha

    def request_alphas(self, rng, n: int) -> np.ndarray:
        return self.base.request_alphas(rng, n)

    def draw(self, rng, alphas: np.ndarray, gamma: int, steps: int) -> np.ndarray:
        """The base draw, then one uniform per cell for the trigger: NO_PROPOSAL where no match exists."""
        accepted = self.base.draw(rng, alphas, gamma, steps)
        accepted[rng.random(accepted.shape) >= self.trigger_rate] = NO_PROPOSAL
        return accepted

    def expected_tokens(self, gamma) -> np.ndarray:
        """1 + trigger_rate (E_base[tokens] - 1): an untriggered iteration emits one token."""
        return 1.0 + self.trigger_rate * (np.asarray(self.base.expected_tokens(gamma)) - 1.0)
