"""Token trees (analytic/trees.py): shapes, and the expected accepted length against brute force."""

import numpy as np
import pytest

from sdsl_sim.analytic import expected_tokens_per_iteration
from sdsl_sim.analytic.trees import (chain, check_tree, expected_tokens_tree, marginal_acceptance, node_depths,
                                     node_ranks, tree_from_choices, tree_from_shape)
from sdsl_sim.errors import InputError


def _brute_force(tree, conditional) -> float:
    """Expected tokens by enumerating every outcome of the verification walk: from an accepted node, try
    its children in rank order, accept the first the target accepts (chance q), or stop there."""
    children = {}
    for i, parent in enumerate(tree):
        children.setdefault(parent, []).append(i)
    depths = node_depths(tree)

    def walk(node, accepted_tokens):  # (probability-weighted tokens) summed over the outcomes below `node`
        total, reach = 0.0, 1.0
        for rank, child in enumerate(children.get(node, []), start=1):
            q = conditional[depths[child] - 1][rank - 1]
            total += reach * q * walk(child, accepted_tokens + 1)
            reach *= 1.0 - q
        return total + reach * (accepted_tokens + 1)  # stop: the accepted tokens and the bonus token

    return walk(-1, 0)


def _random_tree(rng, nodes):
    return tuple(int(rng.integers(-1, i)) for i in range(nodes))


@pytest.mark.parametrize("seed", range(40))
def test_expected_tokens_match_brute_force_on_random_trees(seed):
    rng = np.random.default_rng(seed)
    tree = _random_tree(rng, int(rng.integers(1, 65)))
    depth, width = int(node_depths(tree).max()), int(node_ranks(tree).max())
    conditional = rng.uniform(0.02, 0.98, size=(depth, width)).tolist()
    assert expected_tokens_tree(tree, conditional) == pytest.approx(_brute_force(tree, conditional), rel=1e-12, abs=0)
    marginal = [row.tolist() for row in marginal_acceptance(conditional)]
    assert expected_tokens_tree(tree, marginal, "marginal") == pytest.approx(_brute_force(tree, conditional), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.3, 0.7, 0.95])
@pytest.mark.parametrize("gamma", [1, 4, 9])
def test_a_chain_is_leviathans(alpha, gamma):
    assert expected_tokens_tree(chain(gamma), [[alpha]] * gamma) == pytest.approx(
        float(expected_tokens_per_iteration(alpha, gamma)), rel=1e-12)


def test_a_second_sibling_adds_its_marginal_times_its_subtree():
    # Adding a rank-2 child at depth 1 with nothing below raises F by p_2 = q_2 (1 - q_1) (issue 14 sketch).
    q = [[0.6, 0.5], [0.7, 0.5]]
    base = expected_tokens_tree(chain(2), q)
    assert expected_tokens_tree((-1, 0, -1), q) - base == pytest.approx(0.5 * (1 - 0.6))


def test_tree_forms():
    assert tree_from_choices([[0], [0, 0], [1], [0, 1]]) == (-1, 0, -1, 0)
    assert tree_from_shape([2, 2]) == (-1, -1, 0, 0, 1, 1)
    assert len(tree_from_shape([4, 2, 1])) == 4 + 8 + 8
    assert list(node_depths((-1, 0, -1, 0))) == [1, 2, 1, 2] and list(node_ranks((-1, 0, -1, 0))) == [1, 1, 2, 2]


@pytest.mark.parametrize("tree, accept, kind, message", [
    ((-1, 5), [[0.5]], "conditional", "parent 5 is not -1 or the index of an earlier node"),
    ((-1, 1), [[0.5]], "conditional", "parent 1 is not"),  # a node its own parent: a cycle
    ((0,), [[0.5]], "conditional", "parent 0 is not"),
    ((), [[0.5]], "conditional", "non-empty list"),
    ((-1, 0), [[0.5]], "conditional", "tree_accept has 1 depths; the tree is 2 deep"),
    ((-1, -1), [[0.5], [0.5]], "conditional", "sibling rank 2 at depth 1"),
    ((-1,), [[1.0]], "conditional", "expected a list of probabilities in (0, 1)"),
    ((-1,), [[0.0]], "conditional", "in (0, 1)"),
    ((-1,), [[float("nan")]], "conditional", "in (0, 1)"),
    ((-1,), [["0.5"]], "conditional", "in (0, 1)"),
    ((-1, -1), [[0.6, 0.5]], "marginal", "sum to 1.1"),
    ((-1,), [[0.5]], "prior", "tree_accept_kind 'prior'"),
])
def test_bad_trees_are_one_line(tree, accept, kind, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expected_tokens_tree(tree, accept, kind)


@pytest.mark.parametrize("choices, message", [
    ([[0], [1, 0]], r"parent \[1\] is not listed before it"),
    ([[0], [0]], "listed twice"),
    ([[1]], "names position 1"),
    ([[]], "non-empty list"),
])
def test_bad_choices(choices, message):
    with pytest.raises(InputError, match=message):
        tree_from_choices(choices)


def test_check_tree_refuses_bools_and_strings():
    with pytest.raises(InputError):
        check_tree([True])
    with pytest.raises(InputError):
        check_tree("-1")
