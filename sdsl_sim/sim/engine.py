"""The serving replica as simpy processes: arrivals, a continuous-batching scheduler, speculative steps.

One replica = a target model and a draft model sharing the same GPUs; pass durations come only from a
`PassTimer`. The scheduler loop:
  1. admit waiting requests FIFO while the batch has room (`max_batch`) and the KV budget covers each
     request's full length (prompt + output, reserved at admission, so nothing is ever preempted);
  2. prefill the admitted requests in one step (target, plus draft when speculating); running requests
     wait meanwhile; the prefill emits each new request's first token;
  3. run speculative iterations over the running batch: gamma draft passes, one verification pass of
     batch x (gamma + 1) tokens, accepted + 1 tokens per sequence (never past its output length);
     finished requests leave at once and free their batch slot and KV reservation.
An iteration's duration is the sum of its passes. Iterations are planned in blocks: the accepted counts
of a block are drawn in one vectorised call; the block ends at its first finishing request, at the policy's
horizon, or (when the batch has room) at the first iteration boundary after the next arrival. Nothing else
can happen inside a block, so the clock advances to its end with ONE `env.timeout` (event skipping; the
iteration boundaries are still recorded, computed with numpy). `step_events=True` instead yields one
timeout per iteration, for comparison; the records are the same. No per-token Python objects exist.
Arrivals: "static" (all at t = 0), "poisson" (exponential gaps at `rate_per_s`), "closed" (`concurrency`
requests in flight; each finish issues the next at once).
"""

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import simpy

from ..errors import InputError
from .records import REQUEST_COLUMNS, EmissionLog, SimResult, StepLog

ARRIVALS = ("static", "poisson", "closed")
_BLOCK_CELLS = 1 << 14  # small batches get longer blocks: (steps x batch) cells per block


@dataclass(frozen=True)
class Workload:
    requests: int
    max_batch: int
    prompt_tokens: int
    output_tokens: int
    arrival: str = "static"
    rate_per_s: float = 0.0
    concurrency: int = 0
    kv_token_budget: float = float("inf")  # KV tokens the GPUs hold beyond the weights

    def __post_init__(self):
        if self.arrival not in ARRIVALS:
            raise InputError(f"arrival {self.arrival!r} unknown; expected one of {', '.join(ARRIVALS)}")
        if self.prompt_tokens + self.output_tokens > self.kv_token_budget:
            raise InputError(
                f"one request of {self.prompt_tokens} + {self.output_tokens} tokens needs more KV cache than "
                f"the GPUs hold ({self.kv_token_budget:.0f} tokens); use more tp or shorter requests")

    @property
    def max_running(self) -> int:
        """Most requests running at once: the batch limit, or fewer when the KV cache cannot hold that many
        full-length requests (every request has the same prompt + output length)."""
        need = self.prompt_tokens + self.output_tokens
        if self.kv_token_budget >= self.max_batch * need:  # an infinite budget included
            return self.max_batch
        return int(self.kv_token_budget // need)

    def arrival_times(self, rng) -> np.ndarray:
        """Arrival instants (s) for static and poisson arrivals; closed-loop arrivals follow finishes."""
        if self.arrival == "poisson":
            return np.cumsum(rng.exponential(1.0 / self.rate_per_s, self.requests))
        return np.zeros(self.requests)


def simulate(workload: Workload, timer, acceptance, policy, *, rng, arrival_at_s=None, request_alpha=None,
             block_steps: int = 256, step_events: bool = False, progress=None) -> SimResult:
    """Run one replica until every request finished; return its records.

    rng: the run's numpy Generator (acceptance draws). arrival_at_s / request_alpha: per-request arrival
    instants and acceptance probabilities, drawn by the caller so that a baseline run can share them.
    progress(tokens_done, tokens_total): called after each block (e.g. a progress bar).
    step_events: advance the clock with one simpy timeout per iteration instead of one per block;
    the records are the same (up to float rounding of instants); it exists to measure and test that.
    """
    started = time.perf_counter()
    if request_alpha is None:
        request_alpha = acceptance.request_alphas(rng, workload.requests)
    if arrival_at_s is None and workload.arrival == "poisson":
        arrival_at_s = workload.arrival_times(rng)
    replica = _Replica(workload, timer, acceptance, policy, rng, block_steps, progress, step_events,
                       np.asarray(request_alpha, dtype=float), arrival_at_s if workload.arrival == "poisson" else None)
    replica.start()
    replica.env.run()
    return replica.result(time.perf_counter() - started)


class _Replica:
    def __init__(self, workload, timer, acceptance, policy, rng, block_steps, progress, step_events, alpha_of,
                 arrival_at_s):
        self.env = simpy.Environment()
        self.w, self.timer, self.acceptance, self.policy, self.rng = workload, timer, acceptance, policy, rng
        self.block_steps, self.progress, self.step_events = block_steps, progress, step_events
        self.alpha_of, self.arrival_at_s = alpha_of, arrival_at_s  # per request; arrivals: poisson only
        self.max_running = workload.max_running
        n = workload.requests
        self.times = {name: np.full(n, np.nan) for name in ("arrived", "admitted", "first_token", "finished")}
        self.waiting = deque()
        self.wake = None
        self.issued = self.n_finished = self.tokens_done = 0
        self.ids = np.empty(0, np.int64)  # the running batch: ids, tokens still to emit, KV context
        self.remaining = np.empty(0, np.int64)
        self.context = np.empty(0, np.int64)
        self.alphas = np.empty(0)
        self.steps, self.emissions = StepLog(), EmissionLog()
        self.hist = np.zeros(policy.max_gamma + 1, np.int64)
        self.speculating = policy.max_gamma > 0
        self._tokens_cache = {}

    # -- arrivals ---------------------------------------------------------------------------------
    def start(self):
        if self.w.arrival == "closed":
            for _ in range(min(self.w.concurrency, self.w.requests)):
                self._arrive()
        elif self.w.arrival == "static":
            for _ in range(self.w.requests):
                self._arrive()
        else:
            self.env.process(self._poisson(self.arrival_at_s))
        self.env.process(self._scheduler())

    def _poisson(self, arrival_at_s):
        for at in arrival_at_s:
            yield self.env.timeout(at - self.env.now)
            self._arrive()

    def _arrive(self):
        i = self.issued
        self.issued += 1
        self.times["arrived"][i] = self.env.now
        self.waiting.append(i)
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    # -- scheduler --------------------------------------------------------------------------------
    def _scheduler(self):
        while self.n_finished < self.w.requests:
            admitted = self._admit()
            if admitted:
                yield from self._prefill(admitted)
            if self.ids.size:
                yield from self._decode_block()
            elif not self.waiting and self.n_finished < self.w.requests:
                self.wake = self.env.event()
                yield self.wake
                self.wake = None

    def _admit(self) -> list:
        admitted = []
        while self.waiting and self.ids.size + len(admitted) < self.max_running:
            admitted.append(self.waiting.popleft())
        return admitted

    def _prefill(self, admitted):
        env, n = self.env, len(admitted)
        duration = self.timer.prefill_s(n, self.w.prompt_tokens, self.speculating)
        start = env.now
        yield env.timeout(duration)
        new = np.asarray(admitted, np.int64)
        self.times["admitted"][new] = start
        self.times["first_token"][new] = env.now
        self.steps.append(kind=np.ones(1, np.int8), started_at_s=start, ended_at_s=env.now, batch=n,
                          decoding=self.ids.size, gamma=0, draft_s=0.0, verify_s=0.0, prefill_s=duration,
                          tokens=n, accepted=0, judged=0)
        self.emissions.append(request_id=new, at_s=env.now, tokens=1)
        self.tokens_done += n
        self.ids = np.concatenate((self.ids, new))
        self.remaining = np.concatenate((self.remaining, np.full(n, self.w.output_tokens - 1, np.int64)))
        self.context = np.concatenate((self.context, np.full(n, self.w.prompt_tokens, np.int64)))
        self.alphas = np.concatenate((self.alphas, self.alpha_of[new]))
        self._retire(env.now)

    def _decode_block(self):
        env, batch = self.env, self.ids.size
        gamma = self.policy.choose(batch, float(self.context.mean()))
        steps = int(min(max(self.block_steps, _BLOCK_CELLS // batch), self.policy.horizon, self.remaining.min()))
        if gamma:
            # Draw little past the expected first finish: draws beyond it are wasted.
            steps = min(steps, int(self.remaining.min() / self._expected_tokens(gamma) * 1.25) + 8)
            accepted = self.acceptance.draw(self.rng, self.alphas, gamma, steps)
            emitted = np.cumsum(accepted + 1, axis=0)
            finishing = (emitted >= self.remaining).any(axis=1)
            steps = int(np.argmax(finishing)) + 1 if finishing.any() else steps
            emitted = np.minimum(emitted[:steps], self.remaining)
            emitted[1:] -= emitted[:-1].copy()
        else:  # plain decoding: one token per sequence per step, nothing to draw
            accepted = None
            emitted = np.ones((steps, batch), np.int64)
        step_tokens = emitted.sum(axis=1)
        context_mean = self.context.mean() + (np.cumsum(step_tokens) - step_tokens) / batch
        step_table, draft_table = self.timer.step_table(batch, gamma)
        index = self.timer.index(context_mean)
        durations = step_table[index]

        ends = env.now + np.cumsum(durations)
        done = steps
        if self.ids.size < self.max_running and self.issued < self.w.requests and self.arrival_at_s is not None:
            # A request arriving mid-block joins at the first iteration boundary after it arrives.
            done = min(steps, int(np.searchsorted(ends, self.arrival_at_s[self.issued])) + 1)
        if self.step_events:  # one timeout per iteration (what a naive engine does; same results)
            for duration in durations[:done].tolist():
                yield env.timeout(duration)
        else:  # nothing can happen inside the block: advance the clock to its end at once
            yield env.timeout(ends[done - 1] - env.now)
        self._record_block(done, gamma, ends[:done], durations[:done], draft_table[index[:done]],
                           emitted[:done], step_tokens[:done], None if accepted is None else accepted[:done])

    def _expected_tokens(self, gamma) -> float:
        value = self._tokens_cache.get(gamma)
        if value is None:
            value = self._tokens_cache[gamma] = float(self.acceptance.expected_tokens(gamma))
        return value

    def _record_block(self, k, gamma, ended, durations, draft_s, emitted, step_tokens, accepted):
        batch = self.ids.size
        if accepted is None:
            acc_sum = judged = np.zeros(k, np.int64)
            self.hist[0] += k * batch
        else:
            acc_sum = accepted.sum(axis=1)
            judged = acc_sum + (accepted < gamma).sum(axis=1)
            self.hist += np.bincount(accepted.ravel(), minlength=self.hist.size)[: self.hist.size]
            self.policy.observe(int(acc_sum.sum()), int(judged.sum()))
        self.steps.append(kind=np.zeros(k, np.int8), started_at_s=ended - durations, ended_at_s=ended,
                          batch=batch, decoding=batch, gamma=gamma, draft_s=draft_s,
                          verify_s=durations - draft_s, prefill_s=0.0, tokens=step_tokens,
                          accepted=acc_sum, judged=judged)
        self.emissions.append(request_id=np.tile(self.ids, k), at_s=np.repeat(ended, batch),
                              tokens=emitted.ravel())
        per_sequence = emitted.sum(axis=0)
        self.remaining -= per_sequence
        self.context += per_sequence
        self.tokens_done += int(per_sequence.sum())
        self._retire(float(ended[-1]))
        if self.progress is not None:
            self.progress(self.tokens_done, self.w.requests * self.w.output_tokens)

    def _retire(self, now):
        done = self.remaining <= 0
        if not done.any():
            return
        gone = self.ids[done]
        self.times["finished"][gone] = now
        keep = ~done
        self.ids, self.remaining = self.ids[keep], self.remaining[keep]
        self.context, self.alphas = self.context[keep], self.alphas[keep]
        self.n_finished += gone.size
        if self.w.arrival == "closed":
            for _ in range(min(gone.size, self.w.requests - self.issued)):
                self._arrive()

    def result(self, wall_s) -> SimResult:
        import pandas as pd

        t = self.times
        requests = pd.DataFrame({
            "request_id": np.arange(self.w.requests), "arrived_at_s": t["arrived"],
            "admitted_at_s": t["admitted"], "first_token_at_s": t["first_token"],
            "finished_at_s": t["finished"], "prompt_tokens": self.w.prompt_tokens,
            "output_tokens": self.w.output_tokens, "alpha": self.alpha_of,
        }, columns=list(REQUEST_COLUMNS))
        return SimResult(requests=requests, steps=self.steps.to_frame(), emissions=self.emissions.to_frame(),
                         accepted_hist=self.hist, sim_wall_s=wall_s)
