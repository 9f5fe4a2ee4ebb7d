"""The simpy engine on stand-in pass costs: conservation, limits, arrivals, chunked prefill, paged KV with
preemption, reproducibility."""

import numpy as np
import pytest
from conftest import fixed_workload, flat, stand_in_timer

from sdsl_sim.errors import InputError
from sdsl_sim.metrics import request_frame, summarize
from sdsl_sim.sim.acceptance import IidAcceptance
from sdsl_sim.sim.engine import Scheduler, Workload, simulate
from sdsl_sim.sim.policies import FixedGamma

TARGET_S, DRAFT_S = 0.020, 0.001
LEGACY = Scheduler(chunked_prefill=False, kv_allocation="reserve")  # the engine before chunked prefill


def flat_timer(max_context=10_000, host_s=0.0):
    """Pass time independent of batch, tokens and context: the closed form's machine."""
    return stand_in_timer(flat(TARGET_S), flat(DRAFT_S), lambda b: host_s, max_context=max_context)


def batch_timer(max_context=10_000):
    """Pass time growing with the pass's new tokens and its KV reads (a crude roofline)."""
    return stand_in_timer(lambda w: 0.010 + 2e-5 * w.rows + 1e-8 * w.kv_tokens,
                          lambda w: 0.001 + 2e-6 * w.rows + 1e-9 * w.kv_tokens, max_context=max_context)


def run(workload, gamma=4, alpha=0.7, seed=1, timer=None, **kw):
    kw.setdefault("keep_emissions", True)
    return simulate(workload, timer or batch_timer(), IidAcceptance(alpha), FixedGamma(gamma),
                    rng=np.random.default_rng(seed), **kw)


@pytest.mark.parametrize("scheduler", [Scheduler(), LEGACY, Scheduler(max_num_batched_tokens=40)],
                         ids=["chunked-paged", "legacy", "small-budget"])
def test_every_request_gets_exactly_its_output_tokens(scheduler):
    w = fixed_workload(12, 4, 64, 300)
    result = run(w, scheduler=scheduler)
    emitted = result.emissions.groupby("request_id").tokens.sum()
    assert (emitted == 300).all() and len(emitted) == 12
    assert result.requests.finished_at_s.notna().all()
    # per-step emission never exceeds gamma + 1 per sequence
    assert result.emissions.tokens.max() <= 5


def test_varying_lengths_are_served_exactly():
    rng = np.random.default_rng(3)
    prompt, output = rng.integers(1, 400, 30), rng.integers(1, 200, 30)
    w = Workload(max_batch=6, prompt_tokens=prompt, output_tokens=output)
    result = run(w, scheduler=Scheduler(max_num_batched_tokens=128))
    emitted = result.emissions.groupby("request_id").tokens.sum().reindex(range(30))
    np.testing.assert_array_equal(emitted.to_numpy(), output)
    np.testing.assert_array_equal(result.steps.prefill_tokens.sum(), prompt.sum())
    # a one-token request finishes with its prefill
    req = result.requests
    one = req.output_tokens == 1
    assert (req.finished_at_s[one] == req.first_token_at_s[one]).all()


def test_plain_decoding_tpot_is_the_pass_time():
    w = fixed_workload(1, 1, 16, 500)
    result = run(w, gamma=0, timer=flat_timer())
    req = request_frame(result)
    assert req.tpot_s.iloc[0] == pytest.approx(TARGET_S, rel=1e-12)
    assert summarize(result)["iterations"] == 499


def test_max_batch_and_kv_budget_limit_the_running_batch():
    w = fixed_workload(20, 8, 100, 100)
    assert run(w).steps.decoders.max() == 8
    tight = fixed_workload(20, 8, 100, 100, kv_token_budget=650)
    assert run(tight, scheduler=LEGACY).steps.query("kind == 'decode'").decoders.max() == 3


def test_request_larger_than_kv_is_refused():
    with pytest.raises(InputError, match="KV"):
        fixed_workload(1, 1, 100, 100, kv_token_budget=150)


def test_poisson_arrivals_are_served_after_they_arrive():
    w = fixed_workload(40, 8, 32, 64, arrival="poisson", rate_per_s=20.0)
    req = request_frame(run(w))
    assert (req.admitted_at_s >= req.arrived_at_s - 1e-12).all()
    assert (req.first_token_at_s > req.admitted_at_s).all()
    assert (np.diff(req.arrived_at_s) > 0).all()


def test_closed_loop_keeps_concurrency_in_flight():
    w = fixed_workload(30, 16, 32, 64, arrival="closed", concurrency=5)
    result = run(w)
    assert (result.steps.decoders + result.steps.prefills).max() == 5
    req = result.requests
    # every arrival after the first 5 coincides with some finish
    later = np.sort(req.arrived_at_s.to_numpy())[5:]
    finishes = req.finished_at_s.to_numpy()
    assert all(np.isclose(finishes, t).any() for t in later)


def test_same_seed_same_records_other_seed_differs():
    w = fixed_workload(10, 4, 64, 200)
    a, b, c = run(w, seed=5), run(w, seed=5), run(w, seed=6)
    assert a.steps.equals(b.steps) and a.emissions.equals(b.emissions) and a.requests.equals(b.requests)
    assert not a.steps.equals(c.steps)


@pytest.mark.parametrize("scheduler", [Scheduler(), LEGACY], ids=["chunked-paged", "legacy"])
def test_block_clock_and_per_step_clock_agree(scheduler):
    w = fixed_workload(20, 6, 32, 120, arrival="poisson", rate_per_s=15.0)
    fast = run(w, scheduler=scheduler)
    slow = run(w, scheduler=scheduler, step_events=True)
    assert len(fast.steps) == len(slow.steps)
    np.testing.assert_allclose(fast.requests.finished_at_s, slow.requests.finished_at_s, rtol=1e-9)
    np.testing.assert_array_equal(fast.steps.tokens, slow.steps.tokens)


def test_accepted_histogram_counts_every_sequence_iteration():
    w = fixed_workload(4, 4, 16, 400)
    result = run(w, gamma=3)
    steps = result.steps
    assert result.accepted_hist.sum() == steps.decoders.sum()
    assert len(result.accepted_hist) == 4


def test_itl_log_equals_gaps_between_deliveries():
    w = fixed_workload(30, 5, 200, 80, arrival="poisson", rate_per_s=8.0)
    for scheduler in (Scheduler(max_num_batched_tokens=64), LEGACY):
        result = run(w, scheduler=scheduler)
        em = result.emissions.sort_values(["request_id", "at_s"], kind="stable")
        same = em.request_id.to_numpy()[1:] == em.request_id.to_numpy()[:-1]
        gaps = np.diff(em.at_s.to_numpy())[same]
        logged = np.repeat(result.itl.gap_s.to_numpy(), result.itl["count"].to_numpy())
        np.testing.assert_allclose(np.sort(logged), np.sort(gaps), rtol=1e-12, atol=1e-15)


def test_chunked_prefill_with_a_whole_prompt_budget_equals_one_prefill_step():
    w = fixed_workload(6, 6, 300, 200)
    reserve = dict(kv_allocation="reserve")
    chunked = run(w, scheduler=Scheduler(max_num_batched_tokens=6 * 300, **reserve))
    whole = run(w, scheduler=Scheduler(chunked_prefill=False, **reserve))
    for column in ("admitted_at_s", "first_token_at_s", "finished_at_s"):
        np.testing.assert_array_equal(chunked.requests[column], whole.requests[column])


def test_chunks_respect_the_token_budget_and_prompts_span_steps():
    w = fixed_workload(8, 4, 1000, 50)
    budget = 256
    result = run(w, gamma=3, scheduler=Scheduler(max_num_batched_tokens=budget))
    steps = result.steps
    assert (steps.prefill_tokens + steps.decoders * (steps.gamma + 1) <= budget).all()
    assert (steps.kind == "mixed").any()  # prefills rode along with decode steps
    # each 1000-token prompt took at least ceil(1000 / 256) = 4 steps
    assert steps.prefill_tokens.sum() == 8 * 1000 and (steps.prefills > 0).sum() >= 4 * 8 / 4


def test_paged_kv_under_pressure_preempts_and_stays_within_budget():
    budget = 4000
    w = fixed_workload(24, 12, 200, 400, kv_token_budget=budget)
    result = run(w, gamma=4, scheduler=Scheduler(block_size=16))
    assert result.requests.preemptions.sum() > 0
    assert result.steps.kv_tokens.max() <= budget
    emitted = result.emissions.groupby("request_id").tokens.sum()
    assert (emitted == 400).all() and len(emitted) == 24
    # a preempted request recomputes its prompt and its emitted tokens: more prefill work than prompts
    assert result.steps.prefill_tokens.sum() > 24 * 200
    # reserve never preempts, and admits fewer at once
    reserve = run(w, gamma=4, scheduler=Scheduler(kv_allocation="reserve"))
    assert reserve.requests.preemptions.sum() == 0
    assert reserve.steps.decoders.max() <= budget // 600 < result.steps.decoders.max()


def test_disable_above_batch_decodes_plainly_at_large_batch():
    w = fixed_workload(40, 16, 64, 100)
    result = run(w, gamma=4, scheduler=Scheduler(disable_above_batch=8))
    steps = result.steps[result.steps.decoders > 0]
    assert (steps.gamma[steps.decoders > 8] == 0).all()
    assert (steps.gamma[steps.decoders <= 8] == 4).all() and (steps.decoders <= 8).any()


def test_tpot_clock_counts_stalled_and_preempted_sequences():
    """The step-log TPOT (sum duration x decoding / tokens after the first) equals the request-level
    token-weighted TPOT, also when prefills stall decoders and preemptions send them back to the queue."""
    from sdsl_sim.metrics import tpot_ci

    w = fixed_workload(24, 12, 200, 400, kv_token_budget=4000, arrival="poisson", rate_per_s=30.0)
    for scheduler in (Scheduler(), LEGACY, Scheduler(chunked_prefill=False)):
        result = run(w, scheduler=scheduler)
        req = request_frame(result)
        expected = (req.finished_at_s - req.first_token_at_s).sum() / (req.output_tokens - 1).sum()
        assert tpot_ci(result)[0] == pytest.approx(expected, rel=1e-9)


def test_a_request_that_cannot_fit_with_its_lookahead_is_refused():
    w = fixed_workload(1, 1, 100, 40, kv_token_budget=150)  # 140 tokens fit, 140 + 9 lookahead slots do not
    with pytest.raises(InputError, match="blocks of 16 tokens"):
        run(w, gamma=8)
    run(w, gamma=8, scheduler=Scheduler(kv_allocation="reserve"))  # a reservation needs no lookahead slots
