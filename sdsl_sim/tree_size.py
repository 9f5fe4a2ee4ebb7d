"""The hardware-aware token tree: the tree (within a node budget) that minimises TPOT on a GPU, the
analogue of `draft_size.hardware_n_star` for trees.

Sequoia (Chen et al. 2024, s.3.3) picks the tree maximising F(T) / t(n), F from its dynamic programme
and t(n) a measured verification time per width. Here, for each depth bound D' = 1..max_depth, the
programme (`analytic.best_trees`) gives the best tree of every node count n; each candidate is priced
by the one step cost (`step.StepPricer`: its drafting, level by level for a sequential drafter, plus one
verification of batch x (n + 1) tokens with the tree's context, host costs included), and

    TPOT = step_s(B, tree, L) / F(tree)

is minimised over (n, D'). With a cost flat in width and depth this is the tree of maximal F within the
budget; on a real GPU the tree shrinks as batch x (n + 1) turns verification compute-bound.
"""

from dataclasses import dataclass


from .analytic import best_trees, node_depths, rank_profile_for
from .errors import InputError
from .step import StepPricer
from .speculation import Shape


TOP_K = 10  # EAGLE-2/3's default candidates per expanded node (ea_model.py top_k = 10)


@dataclass(frozen=True)
class TreeChoice:
    tree: tuple
    expected_tokens: float
    tpot_s: float
    baseline_tpot_s: float

    def summary(self) -> dict:
        """The keys of `sdsl-sim tree --json`."""
        return {"tree": list(self.tree), "nodes": len(self.tree), "depth": int(node_depths(self.tree).max()),
                "expected_tokens_per_iteration": self.expected_tokens, "tpot_ms": 1e3 * self.tpot_s,
                "baseline_tpot_ms": 1e3 * self.baseline_tpot_s,
                "speedup_vs_autoregressive": self.baseline_tpot_s / self.tpot_s}


def hardware_tree(price, tree_accept, *, method: str, batch: int, context: float, max_nodes: int,
                  max_depth: int | None = None, kind: str = "conditional") -> TreeChoice:
    """The TPOT-minimising tree. `price(shape)` returns the `StepPricer` of the deployment with that
    `speculation.Shape` (`StepPricer.of(target, drafter, shape)`; tests pass stand-ins); `tree_accept`
    per depth and rank in the `kind` form; max_depth defaults to the depths tree_accept gives."""
    depth_limit = len(tree_accept) if max_depth is None else min(int(max_depth), len(tree_accept))
    baseline_s = float(price(Shape(method)).cost(batch, 0, float(context)).total_s)
    best = None
    seen = set()
    for bound in range(1, depth_limit + 1):
        for tree, tokens in best_trees(tree_accept, max_nodes, bound, kind):
            if tree is None or tree in seen:
                continue
            seen.add(tree)
            depth = int(node_depths(tree).max())
            step_s = float(price(Shape(method, tree)).cost(batch, depth, float(context)).total_s)
            if best is None or step_s / tokens < best.tpot_s:
                best = TreeChoice(tree, tokens, step_s / tokens, baseline_s)
    return best


def pricer_for(target, drafter):
    """`price(shape)` for `hardware_tree` from deployments (drafter None for n-gram lookup)."""
    return lambda shape: StepPricer.of(target, drafter, shape)


def tree_accept_for_budget(length: float, max_nodes: int, max_depth: int) -> list:
    """The conditional profile q(d, r) = a / r (`analytic.rank_profile_for`) scaled so that the best tree of
    `max_nodes` nodes and depth <= max_depth yields `length` tokens per iteration: an engine reporting its
    mean acceptance length for a dynamic tree of that budget (SGLang's num_steps and num_draft_tokens),
    siblings ranked up to TOP_K. InputError unless 1 < length < max_depth + 1."""
    if not 1.0 < length < max_depth + 1:
        raise InputError(f"acceptance_length {length!r}: expected a value strictly between 1 and {max_depth + 1}")
    return rank_profile_for(length, max_depth, min(max_nodes, TOP_K),
                            lambda profile: best_trees(profile, max_nodes, max_depth)[-1][1])
