"""Arrivals: when each request of a run reaches the replica.

- "static": every request at t = 0;
- "poisson": exponential gaps at `rate_per_s` (instants drawn by `poisson_instants`);
- "trace": the instants of a trace file (`workload.load_trace`);
- "closed": `concurrency` requests in flight; each finish issues the next at once.
Timed arrivals (static, poisson, trace) are one simpy process that waits for each instant, so the
engine learns the next one with `env.peek()` and never looks into the arrival table.
"""

import numpy as np

ARRIVALS = ("static", "poisson", "closed", "trace")


def poisson_instants(rng, rate_per_s: float, n: int) -> np.ndarray:
    """n arrival instants (s) of a Poisson process at `rate_per_s`, starting at t = 0."""
    return np.cumsum(rng.exponential(1.0 / rate_per_s, n))


def timed_arrivals(env, instants_s, arrive):
    """A simpy process calling `arrive()` at each instant (non-decreasing seconds)."""
    for at in instants_s:
        if at > env.now:
            yield env.timeout(at - env.now)
        arrive()


class ClosedLoop:
    """Keeps `concurrency` requests in flight until `total` have been issued."""

    def __init__(self, concurrency: int, total: int, arrive):
        self.left = total
        self.arrive = arrive
        self.issue(concurrency)

    def issue(self, n: int) -> None:
        for _ in range(min(n, self.left)):
            self.left -= 1
            self.arrive()
