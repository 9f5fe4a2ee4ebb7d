"""Shared test helpers: workloads of fixed lengths and step timers over stand-in pass costs."""

import numpy as np

from sdsl_sim.sim.engine import Workload
from sdsl_sim.sim.timing import StepTimer
from sdsl_sim.step import StepPricer


def fixed_workload(requests, max_batch, prompt_tokens, output_tokens, *, arrival="static", rate_per_s=None,
                   seed=0, **kw) -> Workload:
    """A Workload whose requests all have one prompt and output length; poisson instants from `seed`."""
    if arrival == "poisson" and "arrival_s" not in kw:
        kw["arrival_s"] = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate_per_s, requests))
    return Workload(max_batch=max_batch, prompt_tokens=np.full(requests, prompt_tokens, np.int64),
                    output_tokens=np.full(requests, output_tokens, np.int64), arrival=arrival, **kw)


def stand_in_timer(target_s, draft_s=None, host_s=None, max_context=10_000) -> StepTimer:
    """A StepTimer over stand-in pass costs: callables of a costs.PassWork (fields broadcast)."""
    return StepTimer(StepPricer(target_s, draft_s, host_s), max_context=max_context)


def flat(seconds):
    """A pass cost independent of the work: the closed form's machine."""
    return lambda work: seconds + 0 * np.asarray(work.kv_tokens, float)
