"""The analytic model: SDSL scaling laws, Leviathan's expectations, the Lambert-W optimum and N*.

Pure, numpy-vectorised functions with no simulation and no I/O; token trees and their expected
accepted length are in `trees.py`. The simulator and its tests are checked against these;
sdsl-math.md derives every formula.
"""

from ..units import DEFAULT_TRAIN_TOKENS
from .laws import (
    ALPHA_LAW,
    PERPLEXITY_LAW,
    AlphaLaw,
    PerplexityLaw,
    alpha_from_perplexity,
    alpha_from_sizes,
    perplexity,
)
from .leviathan import (
    alpha_from_expected_tokens,
    expected_tokens_from_prefix_probs,
    expected_tokens_per_iteration,
    leviathan_speedup,
)
from .nstar import (
    LINEAR_LAW_M0_PARAMS,
    LINEAR_LAW_MU,
    PAPER_TARGET_PARAMS,
    LinearFit,
    NStar,
    fit_n_star,
    n_star,
    n_star_linear,
)
from .optimum import (
    best_integer_gamma,
    check_alpha,
    check_cost_ratio,
    neg_lambertw_m1_of_neg_exp,
    optimal_gamma,
    optimal_speedup,
    optimal_throughput_tokens_per_flop,
    speculation_helps,
    throughput_tokens_per_flop,
)
from .schedules import heuristic_expected_tokens, heuristic_gamma_distribution
from .trees import (
    ACCEPT_KINDS,
    best_trees,
    chain,
    check_tree,
    cut_tree,
    expected_tokens_tree,
    marginal_acceptance,
    node_depths,
    node_ranks,
    path_probabilities,
    rank_profile_for,
    tree_accept_from_length,
    tree_from_choices,
    tree_from_shape,
)
