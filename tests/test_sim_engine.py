"""The simpy engine on stand-in pass costs: conservation, limits, arrivals, reproducibility."""

import numpy as np
import pytest

from sdsl_sim.metrics import request_frame, summarize
from sdsl_sim.sim.acceptance import IidAcceptance
from sdsl_sim.sim.engine import Workload, simulate
from sdsl_sim.sim.policies import FixedGamma
from sdsl_sim.sim.timing import PassTimer

TARGET_S, DRAFT_S = 0.020, 0.001


def flat_timer(max_context=10_000, host_s=0.0):
    """Pass time independent of batch, tokens and context: the closed form's machine."""
    return PassTimer(lambda b, t, c: TARGET_S + 0 * np.asarray(c, float),
                     lambda b, t, c: DRAFT_S + 0 * np.asarray(c, float),
                     lambda b: host_s, max_context=max_context)


def batch_timer(max_context=10_000):
    """Pass time growing with batch x tokens and with context (a crude roofline)."""
    return PassTimer(lambda b, t, c: 0.010 + 2e-5 * b * t + 1e-8 * b * np.asarray(c, float),
                     lambda b, t, c: 0.001 + 2e-6 * b * t + 1e-9 * b * np.asarray(c, float),
                     max_context=max_context)


def run(workload, gamma=4, alpha=0.7, seed=1, timer=None, **kw):
    return simulate(workload, timer or batch_timer(), IidAcceptance(alpha), FixedGamma(gamma),
                    rng=np.random.default_rng(seed), **kw)


def test_every_request_gets_exactly_its_output_tokens():
    w = Workload(requests=12, max_batch=4, prompt_tokens=64, output_tokens=300)
    result = run(w)
    emitted = result.emissions.groupby("request_id").tokens.sum()
    assert (emitted == 300).all() and len(emitted) == 12
    assert result.requests.finished_at_s.notna().all()
    # per-step emission never exceeds gamma + 1 per sequence
    assert result.emissions.tokens.max() <= 5


def test_plain_decoding_tpot_is_the_pass_time():
    w = Workload(requests=1, max_batch=1, prompt_tokens=16, output_tokens=500)
    result = run(w, gamma=0, timer=flat_timer())
    req = request_frame(result)
    assert req.tpot_s.iloc[0] == pytest.approx(TARGET_S, rel=1e-12)
    assert summarize(result)["iterations"] == 499


def test_max_batch_and_kv_budget_limit_the_running_batch():
    w = Workload(requests=20, max_batch=8, prompt_tokens=100, output_tokens=100)
    assert run(w).steps.batch.max() == 8
    tight = Workload(requests=20, max_batch=8, prompt_tokens=100, output_tokens=100, kv_token_budget=650)
    assert run(tight).steps.query("kind == 'decode'").batch.max() == 3


def test_request_larger_than_kv_is_refused():
    from sdsl_sim.errors import InputError

    with pytest.raises(InputError, match="KV"):
        Workload(requests=1, max_batch=1, prompt_tokens=100, output_tokens=100, kv_token_budget=150)


def test_poisson_arrivals_are_served_after_they_arrive():
    w = Workload(requests=40, max_batch=8, prompt_tokens=32, output_tokens=64, arrival="poisson", rate_per_s=20.0)
    req = request_frame(run(w))
    assert (req.admitted_at_s >= req.arrived_at_s - 1e-12).all()
    assert (req.first_token_at_s > req.admitted_at_s).all()
    assert (np.diff(req.arrived_at_s) > 0).all()


def test_closed_loop_keeps_concurrency_in_flight():
    w = Workload(requests=30, max_batch=16, prompt_tokens=32, output_tokens=64, arrival="closed", concurrency=5)
    result = run(w)
    assert result.steps.batch.max() == 5
    req = result.requests
    # every arrival after the first 5 coincides with some finish
    later = np.sort(req.arrived_at_s.to_numpy())[5:]
    finishes = req.finished_at_s.to_numpy()
    assert all(np.isclose(finishes, t).any() for t in later)


def test_same_seed_same_records_other_seed_differs():
    w = Workload(requests=10, max_batch=4, prompt_tokens=64, output_tokens=200)
    a, b, c = run(w, seed=5), run(w, seed=5), run(w, seed=6)
    assert a.steps.equals(b.steps) and a.emissions.equals(b.emissions) and a.requests.equals(b.requests)
    assert not a.steps.equals(c.steps)


def test_block_clock_and_per_step_clock_agree():
    w = Workload(requests=20, max_batch=6, prompt_tokens=32, output_tokens=120, arrival="poisson", rate_per_s=15.0)
    arrivals = w.arrival_times(np.random.default_rng(0))
    fast = run(w, arrival_at_s=arrivals)
    slow = run(w, arrival_at_s=arrivals, step_events=True)
    assert len(fast.steps) == len(slow.steps)
    np.testing.assert_allclose(fast.requests.finished_at_s, slow.requests.finished_at_s, rtol=1e-9)
    np.testing.assert_array_equal(fast.steps.tokens, slow.steps.tokens)


def test_accepted_histogram_counts_every_sequence_iteration():
    w = Workload(requests=4, max_batch=4, prompt_tokens=16, output_tokens=400)
    result = run(w, gamma=3)
    decode = result.steps.query("kind == 'decode'")
    assert result.accepted_hist.sum() == decode.batch.sum()
    assert len(result.accepted_hist) == 4
