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
