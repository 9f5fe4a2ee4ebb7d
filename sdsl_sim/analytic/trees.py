"""Token trees: their shapes and the expected tokens one verification accepts (Sequoia's F(T)).

A tree is a tuple of parent indices, one per draft node: -1 for a child of the root (the last accepted
token), else the index of an earlier node, so the list is in topological order and has no cycles. A
node's depth is 1 + its parent's (children of the root have depth 1); its rank is its order among its
siblings in the list (1 for the first). Verification walks from the root: at an accepted node it tries
the children in rank order and accepts the first that the target accepts, or stops.

Acceptance per (depth, rank) comes in one of two forms (issue 14):
- conditional q[d][r]: the chance that the rank-r child is accepted given that its parent was and its
  better-ranked siblings were rejected; every value in (0, 1) is a valid tree acceptance;
- marginal p[d][r] (Sequoia's positional acceptance): the chance that the rank-r child is the accepted
  one given that its parent was, p_r = q_r prod_{j<r} (1 - q_j); at each depth sum_r p_r < 1.

Expected tokens per iteration, bonus token included: F(T) = 1 + sum over nodes of the probability that
the path to the node is accepted, each path's probability the product of its nodes' marginals (Sequoia,
Chen et al. 2024, s.3). A chain (every node the only child of the one before) with q = alpha at every
depth gives Leviathan's (1 - alpha^(gamma + 1)) / (1 - alpha).
"""

import numpy as np

from ..errors import InputError

ACCEPT_KINDS = ("conditional", "marginal")


def check_tree(parents) -> tuple:
    """The parent list as a tuple of ints; InputError unless each entry is -1 or an earlier node's index."""
    if isinstance(parents, (str, bytes)) or not hasattr(parents, "__len__") or len(parents) == 0:
        raise InputError(f"tree {parents!r}: expected a non-empty list of parent indices (-1 for a child of the root)")
    out = []
    for i, parent in enumerate(parents):
        if isinstance(parent, bool) or not isinstance(parent, (int, np.integer)) or not -1 <= parent < i:
            raise InputError(f"tree node {i}: parent {parent!r} is not -1 or the index of an earlier node "
                             f"(0..{i - 1}); a parent list is in topological order, so it has no cycles")
        out.append(int(parent))
    return tuple(out)


def tree_from_choices(choices) -> tuple:
    """A parent list from the Medusa/EAGLE "choices" form: each node is the path of sibling positions from
    the root, e.g. [[0], [0, 0], [1]] (0-based); every prefix of a path must be a node listed before it."""
    index = {}
    parents = []
    for i, path in enumerate(choices):
        if not isinstance(path, (list, tuple)) or not path or not all(
                isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0 for p in path):
            raise InputError(f"tree choice {i}: {path!r} is not a non-empty list of sibling positions >= 0")
        key = tuple(int(p) for p in path)
        if key in index:
            raise InputError(f"tree choice {i}: {list(key)} is listed twice")
        parent = -1 if len(key) == 1 else index.get(key[:-1])
        if parent is None:
            raise InputError(f"tree choice {i}: its parent {list(key[:-1])} is not listed before it")
        index[key] = i
        parents.append(parent)
    tree = check_tree(parents)
    ranks = node_ranks(tree)
    for key, i in index.items():
        if ranks[i] != key[-1] + 1:
            raise InputError(f"tree choice {i}: {list(key)} is sibling {ranks[i]} in list order but names "
                             f"position {key[-1]}; list siblings in their order")
    return tree


def tree_from_shape(branching) -> tuple:
    """The full tree whose every node at depth d has branching[d] children (depth D = len(branching))."""
    if len(branching) == 0 or not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) and b >= 1
                                      for b in branching):
        raise InputError(f"tree branching {branching!r}: expected a non-empty list of integers >= 1")
    parents, level = [], [-1]
    for b in branching:
        nxt = []
        for parent in level:
            for _ in range(int(b)):
                nxt.append(len(parents))
                parents.append(parent)
        level = nxt
    return tuple(parents)


def chain(gamma: int) -> tuple:
    """The chain of gamma draft tokens: a tree of branching 1."""
    return tree_from_shape([1] * int(gamma))


def node_depths(tree) -> np.ndarray:
    """Depth of each node (1 for children of the root)."""
    depths = np.zeros(len(tree), dtype=np.int64)
    for i, parent in enumerate(tree):
        depths[i] = 1 if parent < 0 else depths[parent] + 1
    return depths


def node_ranks(tree) -> np.ndarray:
    """Rank of each node among its siblings in list order (1 for the first)."""
    seen: dict = {}
    ranks = np.zeros(len(tree), dtype=np.int64)
    for i, parent in enumerate(tree):
        seen[parent] = seen.get(parent, 0) + 1
        ranks[i] = seen[parent]
    return ranks


def marginal_acceptance(tree_accept, kind: str = "conditional") -> list:
    """Per depth, the marginal acceptance of each sibling rank (Sequoia's p), from either form; InputError
    for values outside (0, 1) or, in the marginal form, a depth whose values sum to 1 or more."""
    if kind not in ACCEPT_KINDS:
        raise InputError(f"tree_accept_kind {kind!r}; expected one of {', '.join(ACCEPT_KINDS)}")
    if isinstance(tree_accept, (str, bytes)) or not hasattr(tree_accept, "__len__") or len(tree_accept) == 0:
        raise InputError(f"tree_accept {tree_accept!r}: expected a list per depth of acceptance per sibling rank")
    out = []
    for d, row in enumerate(tree_accept, start=1):
        values = np.atleast_1d(np.asarray(row, dtype=float)) if _numbers(row) else None
        if values is None or values.ndim != 1 or values.size == 0 or not np.all((values > 0) & (values < 1)):
            raise InputError(f"tree_accept depth {d}: {row!r}; expected a list of probabilities in (0, 1)")
        if kind == "marginal":
            if values.sum() >= 1:
                raise InputError(f"tree_accept depth {d}: marginal acceptances {row!r} sum to {values.sum():g}; "
                                 "expected a sum below 1 (one sibling at most is accepted)")
            out.append(values)
        else:
            rejected_before = np.concatenate(([1.0], np.cumprod(1.0 - values)[:-1]))
            out.append(values * rejected_before)
    return out


def _numbers(row) -> bool:
    items = row if isinstance(row, (list, tuple, np.ndarray)) else [row]
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in items)


def path_probabilities(tree, tree_accept, kind: str = "conditional") -> np.ndarray:
    """Probability that the path from the root to each node is accepted."""
    tree = check_tree(tree)
    marginal = marginal_acceptance(tree_accept, kind)
    depths, ranks = node_depths(tree), node_ranks(tree)
    if depths.max() > len(marginal):
        raise InputError(f"tree_accept has {len(marginal)} depths; the tree is {depths.max()} deep")
    prob = np.zeros(len(tree))
    for i, parent in enumerate(tree):
        row = marginal[depths[i] - 1]
        if ranks[i] > row.size:
            raise InputError(f"tree node {i}: sibling rank {ranks[i]} at depth {depths[i]}, but tree_accept gives "
                             f"{row.size} rank(s) there")
        prob[i] = row[ranks[i] - 1] * (1.0 if parent < 0 else prob[parent])
    return prob


def expected_tokens_tree(tree, tree_accept, kind: str = "conditional") -> float:
    """Sequoia's F(T): expected tokens one verification of `tree` yields, the bonus token included."""
    return 1.0 + float(np.sum(path_probabilities(tree, tree_accept, kind)))


def cut_tree(tree, depth: int) -> tuple:
    """The tree's nodes of depth <= `depth`, re-indexed (parents come before children, so order is kept)."""
    tree = check_tree(tree)
    keep = node_depths(tree) <= depth
    new = np.cumsum(keep) - 1
    return tuple(int(-1 if p < 0 else new[p]) for p, k in zip(tree, keep) if k)


# Default positional profile for a tree given only its mean acceptance length: the rank-r child's
# conditional acceptance a / r at every depth, Sequoia's power-law sibling rejection with exponent 1
# (Chen et al. 2024, s.3.2: r_k <= 1 / k^b), scaled by a.
def rank_profile_for(length: float, depth: int, width: int, tokens_of) -> list:
    """[[a / r for r = 1..width]] * depth with `tokens_of(profile)` = length, a found by bisection to double
    precision (tokens_of must rise with a; the caller checks that length is reachable)."""
    ranks = np.arange(1, width + 1)

    def profile(a):
        return [list(a / ranks)] * depth

    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if tokens_of(profile(mid)) < length else (lo, mid)
    return profile(0.5 * (lo + hi))


def tree_accept_from_length(tree, length: float) -> list:
    """Conditional acceptance (`rank_profile_for`) whose F(T) equals `length` (mean tokens per iteration,
    bonus included; vLLM's mean acceptance length); InputError unless 1 < length < depth + 1."""
    tree = check_tree(tree)
    depth, width = int(node_depths(tree).max()), int(node_ranks(tree).max())
    if not 1.0 < length < depth + 1:
        raise InputError(f"acceptance_length {length!r}: a tree of depth {depth} yields between 1 and {depth + 1} "
                         "tokens per iteration; expected a value strictly between")
    return rank_profile_for(length, depth, width, lambda profile: expected_tokens_tree(tree, profile))


def best_trees(tree_accept, max_nodes: int, max_depth: int, kind: str = "conditional") -> list:
    """Sequoia's dynamic programme (Chen et al. 2024, s.3.2, with acceptance per depth): for n = 1..max_nodes
    draft nodes, the tree of depth <= max_depth with the largest F(T); a list of (tree, F) by n, (None, -inf)
    where no tree of n nodes fits the depth and the ranks tree_accept gives.

    c_d(n): the largest sum of path probabilities, relative to its root, of a subtree of n nodes whose root
    is at depth d (the root counts 1); c_D(1) = 1. Its root's children take ranks 1, 2, ... in order, the
    rank-r child (marginal p_{d+1, r}) heading a subtree of n_r nodes, so c_d(n) = 1 + max over
    n_1 + n_2 + ... = n - 1 (n_r >= 1, ranks contiguous) of sum_r p_{d+1, r} c_{d+1}(n_r): a knapsack over
    ranks, solved as max-plus convolutions. F of the best n-node tree is c_0(n + 1)."""
    marginal = marginal_acceptance(tree_accept, kind)
    depth = min(int(max_depth), len(marginal))
    size = int(max_nodes) + 1  # subtree sizes 0..max_nodes + 1 (the root included)
    j = np.arange(size + 1)
    m = j[:, None] - j[None, :]  # m - j for the convolution (rows m, columns j)
    c = np.full(size + 1, -np.inf)
    c[1] = 1.0  # the deepest level: leaves only
    choice = [None] * depth  # choice[d][r][m]: the size of the rank-r child's subtree at remainder m
    for d in range(depth - 1, -1, -1):
        p = marginal[d]
        g = np.where(j == 0, 0.0, -np.inf)  # beyond the last rank: nothing left to place
        picks = []
        for r in range(p.size - 1, -1, -1):
            table = np.where((j[None, :] >= 1) & (m >= 0), p[r] * c[None, :] + g[np.clip(m, 0, size)], -np.inf)
            pick = np.argmax(table, axis=1)
            g = np.where(j == 0, 0.0, table[j, pick])
            picks.append(pick)
        choice[d] = picks[::-1]
        c = np.where(j >= 1, 1.0 + g[np.maximum(j - 1, 0)], -np.inf)

    def children(d, n):
        """Subtree sizes of the ranked children of a depth-d root heading n nodes."""
        sizes, left = [], n - 1
        for pick in choice[d] if d < depth else ():
            if left == 0:
                break
            sizes.append(int(pick[left]))
            left -= sizes[-1]
        return sizes

    out = []
    for n in range(1, int(max_nodes) + 1):
        if not np.isfinite(c[n + 1]):
            out.append((None, -np.inf))
            continue
        parents, level = [], [(-1, 0, n + 1)]  # breadth first: (index, depth, subtree size)
        while level:
            nxt = []
            for index, d, sub in level:
                for k in children(d, sub):
                    parents.append(index)
                    nxt.append((len(parents) - 1, d + 1, k))
            level = nxt
        out.append((tuple(parents), float(c[n + 1])))
    return out
