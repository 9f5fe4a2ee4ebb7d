"""Dynamic draft lengths in expectation: HF transformers' heuristic schedule as a Markov chain.

HF assisted generation (`num_assistant_tokens_schedule = "heuristic"`) drafts g tokens, then sets
g <- g + 2 after an iteration whose g drafts were all accepted and g <- max(1, g - 1) otherwise
(`AssistedCandidateGenerator.update_candidate_strategy`; capped at max_gamma here, as
`sim.policies.HeuristicGamma`). When the first g drafts are all accepted with probability
a_g = E(g) - E(g - 1) (E the expected tokens per iteration of a g-token chain; a_g = alpha^g for i.i.d.
acceptance), g is a Markov chain on 1..max_gamma. Its stationary distribution pi gives the long-run rates
by renewal-reward: tokens per iteration sum_g pi_g E(g), time per iteration sum_g pi_g t(g), and the TPOT
their ratio. The chain starts at 5; a run of hundreds of iterations forgets that.
"""

import numpy as np

from .leviathan import expected_tokens_per_iteration


def heuristic_gamma_distribution(all_accepted) -> np.ndarray:
    """Stationary probabilities of g = 1..G under the heuristic schedule, where all_accepted[g - 1] is
    P(all g drafts accepted). Solves pi (P - I) = 0 with sum(pi) = 1 by least squares (exact for the
    irreducible chain any 0 < a_g < 1 gives)."""
    a = np.asarray(all_accepted, dtype=float)
    size = a.size
    moves = np.zeros((size, size))
    for i in range(size):  # state g = i + 1
        moves[i, min(i + 2, size - 1)] += a[i]
        moves[i, max(i - 1, 0)] += 1.0 - a[i]
    system = np.vstack([(moves - np.eye(size)).T, np.ones(size)])
    target = np.zeros(size + 1)
    target[-1] = 1.0
    pi = np.clip(np.linalg.lstsq(system, target, rcond=None)[0], 0.0, None)  # round-off below 0
    return pi / pi.sum()


def heuristic_expected_tokens(alpha: float, max_gamma: int) -> float:
    """Long-run tokens per iteration of the heuristic schedule under i.i.d. acceptance alpha."""
    gammas = np.arange(1, int(max_gamma) + 1)
    pi = heuristic_gamma_distribution(float(alpha) ** gammas)
    return float(pi @ expected_tokens_per_iteration(alpha, gammas))
