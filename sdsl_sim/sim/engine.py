"""The serving replica as simpy processes: the clock, the scheduler's rounds, speculative steps, records.

One replica = a target model and a draft model sharing the same GPUs; step durations come only from a
`StepTimer`. Each round of the scheduler (vLLM V1's, by default):
  1. the running decoders (requests past their prefill) get their lookahead gamma from the policy
     (plain decoding above `disable_above_batch` sequences; gamma capped so that the decoders' verified
     tokens, `timer.slots(gamma)` each (gamma + 1 for a chain, nodes + 1 for a tree), fit the step's
     token budget);
  2. with paged KV, the decoders' blocks for this step (context + slots each) must fit the
     pool: else the most recently admitted request is preempted (its blocks freed; it goes back to the
     front of the queue and recomputes prompt + emitted tokens when readmitted, as vLLM's recompute
     preemption; a round that preempts admits nobody);
  3. prefill chunks fill what is left of the token budget (`max_num_batched_tokens`): requests already
     part-way through their prefill first, then waiting requests FIFO while a batch slot and KV blocks
     for their chunk are free. A request's last chunk emits its first token;
  4. a step with chunks runs alone (a mixed step: one target pass over decoders and chunks); a round
     with only decoders runs a *block* of decode steps.
Without chunked prefill (`chunked_prefill = false`) the admitted requests' whole prompts run as one
prefill step that stalls the decoders, and a decode block always follows it. With `kv_allocation =
"reserve"` a request reserves its full prompt + output at admission and is never preempted.

Blocks: the accepted counts of a block are drawn in one vectorised call; the block ends at its first
finishing request, at the policy's horizon, at the step whose KV blocks would overflow the pool, or
(when a batch slot is free) at the first step boundary after the next arrival (`env.peek()`). Nothing
else can happen inside a block, so the clock advances to its end with ONE `env.timeout` (event
skipping; the step boundaries are still recorded, computed with numpy). `step_events=True` instead
yields one timeout per step, for comparison; the records are the same.
"""

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import simpy

from ..costs import PassWork
from ..errors import InputError
from .acceptance import NO_PROPOSAL
from .arrivals import ARRIVALS, ClosedLoop, timed_arrivals
from .records import REQUEST_COLUMNS, EmissionLog, ItlLog, SimResult, StepLog

KV_ALLOCATIONS = ("paged", "reserve")
_BLOCK_CELLS = 1 << 14  # small batches get longer blocks: (steps x batch) cells per block
_DECODE, _PREFILL, _MIXED = 0, 1, 2  # codes of records.STEP_KINDS


@dataclass(frozen=True)
class Scheduler:
    """How the engine batches work (defaults: vLLM V1)."""

    chunked_prefill: bool = True
    max_num_batched_tokens: int = 2048  # token budget of one step (chunked prefill only)
    kv_allocation: str = "paged"  # "paged" (blocks as sequences grow, recompute preemption) or "reserve"
    block_size: int = 16  # tokens per KV block (paged)
    disable_above_batch: int | None = None  # plain decoding while more decoders than this run


@dataclass(frozen=True)
class Workload:
    """The requests of one run. Lengths, arrival instants and alphas are drawn once per run (by the
    caller, from the run's seed) and shared with the baseline run, which then serves the same work."""

    max_batch: int
    prompt_tokens: np.ndarray  # int64, per request
    output_tokens: np.ndarray  # int64, per request
    arrival: str = "static"
    arrival_s: np.ndarray | None = None  # poisson / trace: per-request instants, non-decreasing
    concurrency: int = 0  # closed loop: requests in flight
    kv_token_budget: float = float("inf")  # KV token slots the GPUs hold beyond the weights

    def __post_init__(self):
        if self.arrival not in ARRIVALS:
            raise InputError(f"arrival {self.arrival!r} unknown; expected one of {', '.join(ARRIVALS)}")
        longest = int(np.max(self.prompt_tokens + self.output_tokens))
        if longest > self.kv_token_budget:
            raise InputError(
                f"a request of {longest} tokens (prompt + output) needs more KV cache than the GPUs hold "
                f"({self.kv_token_budget:.0f} tokens); use more tp or shorter requests")

    @property
    def requests(self) -> int:
        return len(self.prompt_tokens)


def simulate(workload: Workload, timer, acceptance, policy, *, rng, request_alpha=None,
             scheduler: Scheduler = Scheduler(), block_steps: int = 256, step_events: bool = False,
             keep_emissions: bool = False, progress=None) -> SimResult:
    """Run one replica until every request finished; return its records.

    rng: the run's numpy Generator (acceptance draws). request_alpha: per-request acceptance
    probabilities, drawn by the caller so that a baseline run can share them.
    progress(tokens_done, tokens_total): called after each block (e.g. a progress bar).
    step_events: advance the clock with one simpy timeout per step instead of one per block; the records
    are the same (up to float rounding of instants); it exists to measure and test that.
    keep_emissions: also keep the per-delivery emission table (one row per sequence per step).
    """
    started = time.perf_counter()
    if scheduler.kv_allocation not in KV_ALLOCATIONS:
        raise InputError(f"kv allocation {scheduler.kv_allocation!r} unknown; expected one of "
                         f"{', '.join(KV_ALLOCATIONS)}")
    if request_alpha is None:
        request_alpha = acceptance.request_alphas(rng, workload.requests)
    replica = _Replica(workload, scheduler, timer, acceptance, policy, rng, block_steps, progress, step_events,
                       np.asarray(request_alpha, dtype=float), keep_emissions)
    replica.start()
    replica.env.run()
    return replica.result(time.perf_counter() - started)


def _chunks_work(chunks) -> PassWork:
    """The prefill chunks of one step as one PassWork: groups (1 sequence, tokens, cached context).
    Plain Python: a step holds a handful of chunks, where numpy's per-call cost would dominate."""
    work = PassWork(0.0, 0.0, 0.0, 0.0, 0.0)
    for entry, tokens in chunks:
        work = work + PassWork.group(1.0, float(tokens), float(entry[2]), prefill=True)
    return work


class _Replica:
    def __init__(self, workload, scheduler, timer, acceptance, policy, rng, block_steps, progress, step_events,
                 alpha_of, keep_emissions):
        self.env = simpy.Environment()
        self.w, self.s = workload, scheduler
        self.timer, self.acceptance, self.policy, self.rng = timer, acceptance, policy, rng
        self.block_steps, self.progress, self.step_events = block_steps, progress, step_events
        n = workload.requests
        self.n = n
        self.prompt = np.asarray(workload.prompt_tokens, np.int64)
        self.output = np.asarray(workload.output_tokens, np.int64)
        self.alpha_of = alpha_of
        self.times = {name: np.full(n, np.nan) for name in ("arrived", "admitted", "first_token", "finished")}
        self.emitted = np.zeros(n, np.int64)  # tokens delivered so far, per request
        self.preemptions = np.zeros(n, np.int64)
        self.last_at = np.zeros(n)  # instant of each request's latest delivery (for inter-token gaps)
        self.admit_order = np.zeros(n, np.int64)  # admission counter at the latest (re)admission
        self.admissions = 0
        self.waiting = deque()
        self.prefilling = []  # [request id, tokens to prefill, tokens prefilled] in admission order
        self.wake = None
        self.issued = self.n_finished = self.live = self.tokens_done = 0
        self.tokens_total = int(self.output.sum())
        # The decoders: ids, tokens still to emit, KV context, acceptance probability.
        self.ids = np.empty(0, np.int64)
        self.remaining = np.empty(0, np.int64)
        self.context = np.empty(0, np.int64)
        self.alphas = np.empty(0)
        self.steps, self.itl = StepLog(), ItlLog()
        self.emissions = EmissionLog() if keep_emissions else None
        self.hist = np.zeros(policy.max_gamma + 1, np.int64)
        self.speculating = policy.max_gamma > 0
        self.chunked = scheduler.chunked_prefill
        self.token_budget = scheduler.max_num_batched_tokens if self.chunked else float("inf")
        self.paged = scheduler.kv_allocation == "paged" and np.isfinite(workload.kv_token_budget)
        self.reserve = scheduler.kv_allocation == "reserve" and np.isfinite(workload.kv_token_budget)
        self.bs = scheduler.block_size
        self.pool_blocks = int(workload.kv_token_budget // self.bs) if self.paged else 0
        longest = int(np.max(self.prompt + self.output)) + timer.slots(policy.max_gamma)
        if self.paged and -(-longest // self.bs) > self.pool_blocks:
            raise InputError(
                f"a request of {longest} KV slots (prompt + output + lookahead) needs {-(-longest // self.bs)} "
                f"blocks of {self.bs} tokens, but the KV cache holds {self.pool_blocks}; use more tp, shorter "
                "requests or a smaller max gamma")
        self.reserved = 0  # reserve: tokens reserved by admitted requests
        self.smallest_request = int(np.min(self.prompt + self.output))
        self.prefilled_last = False
        self.closed = None
        self._tokens_cache = {}

    # -- arrivals ---------------------------------------------------------------------------------
    def start(self):
        w = self.w
        if w.arrival == "closed":
            self.closed = ClosedLoop(w.concurrency, self.n, self._arrive)
        elif w.arrival == "static":
            for _ in range(self.n):
                self._arrive()
        else:
            self.env.process(timed_arrivals(self.env, w.arrival_s, self._arrive))
        self.env.process(self._scheduler())

    def _arrive(self):
        i = self.issued
        self.issued += 1
        self.times["arrived"][i] = self.env.now
        self.waiting.append(i)
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    # -- the scheduler's rounds -------------------------------------------------------------------
    def _scheduler(self):
        while self.n_finished < self.n:
            gamma = self._gamma()
            preempted = self.paged and self._make_room(gamma)
            if preempted:
                gamma = min(gamma, self._gamma())
            must_decode = not self.chunked and self.prefilled_last and self.ids.size
            chunks = [] if must_decode else self._plan_chunks(gamma, admit=not preempted)
            self.prefilled_last = bool(chunks)
            if chunks:
                yield from self._step(gamma, chunks)
            elif self.ids.size:
                yield from self._decode_block(gamma)
            elif self.waiting or self.prefilling:
                raise RuntimeError("scheduler stalled: work waits but nothing can run (KV accounting bug)")
            else:
                self.wake = self.env.event()
                yield self.wake
                self.wake = None

    def _gamma(self) -> int:
        batch = self.ids.size
        if not batch or not self.speculating:
            return 0
        limit = self.s.disable_above_batch
        if limit is not None and batch > limit:
            return 0
        gamma = int(self.policy.choose(batch, float(self.context.mean())))
        while gamma and batch * self.timer.slots(gamma) > self.token_budget:
            gamma -= 1
        return gamma

    def _decoder_blocks(self, gamma: int, context=None) -> int:
        """KV blocks the decoders hold in a step with lookahead gamma (context + slots each)."""
        context = self.context if context is None else context
        return int(((context + (self.timer.slots(gamma) - 1 + self.bs)) // self.bs).sum())

    def _prefill_blocks(self) -> int:
        return sum(-(-done // self.bs) for _, _, done in self.prefilling)

    def _make_room(self, gamma: int) -> bool:
        """Preempt the most recently admitted requests until the decoders' next step fits the pool;
        whether any was preempted."""
        preempted = False
        while self._decoder_blocks(gamma) + self._prefill_blocks() > self.pool_blocks:
            preempted = True
            last_prefill = self.prefilling[-1] if self.prefilling else None
            decoder = int(np.argmax(self.admit_order[self.ids])) if self.ids.size else -1
            if last_prefill is not None and (decoder < 0 or
                                             self.admit_order[last_prefill[0]] > self.admit_order[self.ids[decoder]]):
                self.prefilling.pop()
                rid = last_prefill[0]
            else:
                rid = int(self.ids[decoder])
                self.emitted[rid] = self.output[rid] - self.remaining[decoder]
                keep = np.arange(self.ids.size) != decoder
                self.ids, self.remaining = self.ids[keep], self.remaining[keep]
                self.context, self.alphas = self.context[keep], self.alphas[keep]
            self.preemptions[rid] += 1
            self.waiting.appendleft(rid)
        return preempted

    def _plan_chunks(self, gamma: int, admit: bool = True) -> list:
        """[(prefill entry, chunk tokens)]: part-way prefills first, then new admissions (see module doc);
        none in a round that preempted (as vLLM V1's scheduler: a freed block goes to the running first)."""
        batch = self.ids.size
        budget = self.token_budget - batch * self.timer.slots(gamma)
        free = self.pool_blocks - self._decoder_blocks(gamma) - self._prefill_blocks() if self.paged else 0
        chunks = []
        for entry in self.prefilling:
            if budget <= 0:
                break
            _, need, done = entry
            tokens = min(budget, need - done)
            if self.paged:
                held = -(-done // self.bs)
                tokens = min(tokens, (held + free) * self.bs - done)
                if tokens <= 0:
                    continue
                free -= -(-(done + tokens) // self.bs) - held
            chunks.append((entry, int(tokens)))
            budget -= tokens
        seats = self.w.max_batch - batch - len(self.prefilling)
        while admit and self.waiting and seats > 0 and budget > 0:
            rid = self.waiting[0]
            need = int(self.prompt[rid] + self.emitted[rid])
            tokens = min(budget, need)
            if self.paged:
                tokens = min(tokens, free * self.bs)
            if tokens <= 0 or (not self.chunked and tokens < need):
                break
            if self.reserve:
                full = int(self.prompt[rid] + self.output[rid])
                if self.reserved + full > self.w.kv_token_budget:
                    break
                self.reserved += full
            self.waiting.popleft()
            if np.isnan(self.times["admitted"][rid]):
                self.times["admitted"][rid] = self.env.now
            self.admissions += 1
            self.admit_order[rid] = self.admissions
            entry = [rid, need, 0]
            self.prefilling.append(entry)
            chunks.append((entry, int(tokens)))
            seats -= 1
            budget -= tokens
            free -= -(-tokens // self.bs)
        return chunks

    def _kv_in_use(self, decoder_blocks: int) -> int:
        if self.paged:
            return (decoder_blocks + self._prefill_blocks()) * self.bs
        return self.reserved

    # -- a single step: prefill chunks, with or without decoders ----------------------------------
    def _step(self, gamma, chunks):
        env = self.env
        decoders = self.ids.size if self.chunked else 0
        gamma = gamma if decoders else 0
        context = float(self.context.mean()) if decoders else 0.0
        cost = self.timer.step(decoders, gamma, context, _chunks_work(chunks))
        duration = float(cost.total_s)
        start, live = env.now, self.live
        decoder_blocks = self._decoder_blocks(gamma) if self.paged and decoders else 0
        yield env.timeout(duration)
        end = env.now
        accepted_sum = judged = drafts = drafted = emitted_sum = 0
        if decoders:
            if gamma:
                accepted = self.acceptance.draw(self.rng, self.alphas, gamma, 1)
                accepted_sum, judged, drafts, drafted = self._observe(accepted, gamma)
                emitted = np.minimum(np.maximum(accepted[0], 0) + 1, self.remaining)
            else:
                accepted = None
                emitted = np.ones(decoders, np.int64)
                self.hist[0] += decoders
            self._deliver(emitted[None, :], np.array([end]))
            emitted_sum = int(emitted.sum())
        for entry, c in chunks:
            entry[2] += c
        kv = self._kv_in_use(decoder_blocks)
        first, resumed = self._complete_prefills(end)
        kind = _PREFILL if not decoders else _MIXED
        self.steps.append(1, kind=kind, started_at_s=start, ended_at_s=end, decoders=decoders,
                          prefills=len(chunks), decoding=live, gamma=gamma, draft_s=cost.draft_s,
                          verify_s=cost.target_s, prefill_s=0.0 if decoders else duration, tokens=emitted_sum,
                          prefill_tokens=sum(c for _, c in chunks), first_tokens=first, resumed=resumed,
                          accepted=accepted_sum, judged=judged, drafts=drafts, drafted=drafted, kv_tokens=kv)
        self._retire(end)

    def _complete_prefills(self, now) -> tuple:
        """Move finished prefills to the decoders; each emits one token. Returns (first, resumed) counts."""
        done = [e for e in self.prefilling if e[2] >= e[1]]
        if not done:
            return 0, 0
        self.prefilling = [e for e in self.prefilling if e[2] < e[1]]
        ids = np.fromiter((e[0] for e in done), np.int64, len(done))
        need = np.fromiter((e[1] for e in done), np.int64, len(done))
        fresh = np.isnan(self.times["first_token"][ids])
        self.times["first_token"][ids[fresh]] = now
        back = ids[~fresh]
        if back.size:
            self.itl.append(back.size, gap_s=now - self.last_at[back], count=1)
        self.live += int(fresh.sum())
        self.last_at[ids] = now
        self.emitted[ids] += 1
        if self.emissions is not None:
            self.emissions.append(ids.size, request_id=ids, at_s=now, tokens=1)
        self.tokens_done += ids.size
        self.ids = np.concatenate((self.ids, ids))
        self.remaining = np.concatenate((self.remaining, self.output[ids] - self.emitted[ids]))
        self.context = np.concatenate((self.context, need))
        self.alphas = np.concatenate((self.alphas, self.alpha_of[ids]))
        return int(fresh.sum()), int(back.size)

    # -- a block of decode steps ------------------------------------------------------------------
    def _decode_block(self, gamma):
        env, batch = self.env, self.ids.size
        steps = int(min(max(self.block_steps, _BLOCK_CELLS // batch), self.policy.horizon, self.remaining.min()))
        if gamma:
            # Draw little past the expected first finish: draws beyond it are wasted.
            steps = min(steps, int(self.remaining.min() / self._expected_tokens(gamma) * 1.25) + 8)
            accepted = self.acceptance.draw(self.rng, self.alphas, gamma, steps)
            emitted = np.cumsum(np.maximum(accepted, 0) + 1, axis=0)
            finishing = (emitted >= self.remaining).any(axis=1)
            steps = int(np.argmax(finishing)) + 1 if finishing.any() else steps
            emitted = np.minimum(emitted[:steps], self.remaining)
            emitted[1:] -= emitted[:-1].copy()
        else:  # plain decoding: one token per sequence per step, nothing to draw
            accepted = None
            emitted = np.ones((steps, batch), np.int64)
        decoder_blocks = None
        if self.paged:
            steps, decoder_blocks = self._kv_cut(gamma, emitted)
            emitted = emitted[:steps]
        step_tokens = emitted.sum(axis=1)
        context_mean = self.context.mean() + (np.cumsum(step_tokens) - step_tokens) / batch
        step_table, draft_table = self.timer.decode_table(batch, gamma)
        index = self.timer.index(context_mean)
        durations = step_table[index]

        ends = env.now + np.cumsum(durations)
        done = steps
        if self._has_seat():
            # A request arriving mid-block joins at the first step boundary after it arrives.
            done = min(steps, int(np.searchsorted(ends, env.peek())) + 1)
        if self.step_events:  # one timeout per step (what a naive engine does; same results)
            for duration in durations[:done].tolist():
                yield env.timeout(duration)
        else:  # nothing can happen inside the block: advance the clock to its end at once
            yield env.timeout(ends[done - 1] - env.now)
        if decoder_blocks is None:
            kv = self.reserved
        else:
            kv = (decoder_blocks[:done] + self._prefill_blocks()) * self.bs
        self._record_block(done, gamma, ends[:done], durations[:done], draft_table[index[:done]],
                           emitted[:done], step_tokens[:done], None if accepted is None else accepted[:done], kv)

    def _kv_cut(self, gamma, emitted) -> tuple:
        """(steps whose KV blocks fit the pool, decoder blocks per step): context before step j is the
        context now plus what steps 0..j-1 emitted; each step needs context + slots."""
        free = self.pool_blocks - self._prefill_blocks()
        steps, batch = emitted.shape
        before = np.cumsum(emitted, axis=0) - emitted
        before += self.context
        blocks = ((before + (self.timer.slots(gamma) - 1 + self.bs)) // self.bs).sum(axis=1)
        over = blocks > free
        if over.any():
            steps = max(1, int(np.argmax(over)))  # step 0 fits: `_make_room` saw to it
        return steps, blocks[:steps]

    def _has_seat(self) -> bool:
        if self.ids.size + len(self.prefilling) >= self.w.max_batch or self.issued >= self.n:
            return False
        return not self.reserve or self.reserved + self.smallest_request <= self.w.kv_token_budget

    def _expected_tokens(self, gamma) -> float:
        value = self._tokens_cache.get(gamma)
        if value is None:
            value = self._tokens_cache[gamma] = float(self.acceptance.expected_tokens(gamma))
        return value

    def _observe(self, accepted, gamma) -> tuple:
        """Histogram and policy feedback of a (steps, batch) block of accepted counts; per-step sums of
        accepted and judged tokens, proposing sequences and proposed tokens. A NO_PROPOSAL cell (n-gram
        lookup without a match) proposed nothing: it is judged nowhere and counts at 0 in the histogram."""
        proposing = accepted != NO_PROPOSAL
        accepted = np.maximum(accepted, 0)
        acc_sum = accepted.sum(axis=1)
        judged = acc_sum + (proposing & (accepted < gamma)).sum(axis=1)
        drafts = proposing.sum(axis=1)
        self.hist += np.bincount(accepted.ravel(), minlength=self.hist.size)[: self.hist.size]
        self.policy.observe(int(acc_sum.sum()), int(judged.sum()))
        return acc_sum, judged, drafts, drafts * (self.timer.slots(gamma) - 1)

    def _deliver(self, emitted, ended) -> None:
        """Tokens `emitted` (steps, batch) reach the decoders at the `ended` instants: inter-token gaps,
        emission rows, remaining tokens and contexts."""
        k, batch = emitted.shape
        last = self.last_at[self.ids]
        first = ended[0] - last
        if (last == last[0]).all():
            self.itl.append(1, gap_s=first[0], count=batch)
        else:
            self.itl.append(batch, gap_s=first, count=1)
        if k > 1:
            self.itl.append(k - 1, gap_s=np.diff(ended), count=batch)
        self.last_at[self.ids] = ended[-1]
        if self.emissions is not None:
            self.emissions.append(k * batch, request_id=np.tile(self.ids, k), at_s=np.repeat(ended, batch),
                                  tokens=emitted.ravel())
        per_sequence = emitted.sum(axis=0)
        self.remaining -= per_sequence
        self.context += per_sequence
        self.tokens_done += int(per_sequence.sum())

    def _record_block(self, k, gamma, ended, durations, draft_s, emitted, step_tokens, accepted, kv):
        batch = self.ids.size
        if accepted is None:
            acc_sum = judged = drafts = drafted = 0
            self.hist[0] += k * batch
        else:
            acc_sum, judged, drafts, drafted = self._observe(accepted, gamma)
        self.steps.append(k, kind=_DECODE, started_at_s=ended - durations, ended_at_s=ended, decoders=batch,
                          prefills=0, decoding=self.live, gamma=gamma, draft_s=draft_s,
                          verify_s=durations - draft_s, prefill_s=0.0, tokens=step_tokens, prefill_tokens=0,
                          first_tokens=0, resumed=0, accepted=acc_sum, judged=judged, drafts=drafts, drafted=drafted,
                          kv_tokens=kv)
        self._deliver(emitted, ended)
        self._retire(float(ended[-1]))

    def _retire(self, now):
        if self.progress is not None:
            self.progress(self.tokens_done, self.tokens_total)
        done = self.remaining <= 0
        if not done.any():
            return
        gone = self.ids[done]
        self.times["finished"][gone] = now
        self.emitted[gone] = self.output[gone]
        keep = ~done
        self.ids, self.remaining = self.ids[keep], self.remaining[keep]
        self.context, self.alphas = self.context[keep], self.alphas[keep]
        self.n_finished += gone.size
        self.live -= gone.size
        if self.reserve:
            self.reserved -= int((self.prompt[gone] + self.output[gone]).sum())
        if self.closed is not None:
            self.closed.issue(gone.size)

    def result(self, wall_s) -> SimResult:
        import pandas as pd

        t = self.times
        requests = pd.DataFrame({
            "request_id": np.arange(self.n), "arrived_at_s": t["arrived"],
            "admitted_at_s": t["admitted"], "first_token_at_s": t["first_token"],
            "finished_at_s": t["finished"], "prompt_tokens": self.prompt,
            "output_tokens": self.output, "preemptions": self.preemptions, "alpha": self.alpha_of,
        }, columns=list(REQUEST_COLUMNS))
        return SimResult(requests=requests, steps=self.steps.to_frame(), itl=self.itl.to_frame(),
                         emissions=None if self.emissions is None else self.emissions.to_frame(),
                         accepted_hist=self.hist, kv_token_budget=float(self.w.kv_token_budget),
                         sim_wall_s=wall_s)
