"""Metrics of a simulation run: records -> DataFrames -> one flat summary; confidence intervals; parquet.

Names. Keys follow vLLM's `vllm bench serve` result file (vllm/benchmarks/serve.py) wherever it has the
quantity: completed, failed, duration (s), total_input_tokens, total_output_tokens, request_throughput,
output_throughput, total_token_throughput, request_goodput, max_concurrent_requests, and for each latency
metric M in ttft, tpot, itl, e2el: mean_M_ms, median_M_ms, std_M_ms (population standard deviation, as
numpy's and vLLM's) and pNN_M_ms for the chosen percentiles (p99.9_M_ms for a non-integer one); the
speculative counters as spec_decode_num_drafts, _draft_tokens, _accepted_tokens, _acceptance_rate (a
percentage, as vLLM's), _acceptance_length and _per_position_acceptance_rates. The same statistics of the
server-side queueing delay are named mean_queue_ms and so on. Our own keys (intervals, the run TPOT, the
speedups, the per-token acceptance estimate, the time split) keep our names.

Glossary (per request r with n_r output tokens; all times in seconds inside, `_ms` in summaries):
  TTFT_r = first_token_at - arrived_at (queueing + prefill)
  TPOT_r = (finished_at - first_token_at) / (n_r - 1)          time per output token after the first;
           mean_tpot_ms etc. are over the requests with n_r > 1, as vLLM's
  ITL    = gaps between successive deliveries to one request; tokens delivered in the same iteration
           arrive together and count as one delivery (so ITL ~ TPOT x tokens per iteration), as a
           streaming client sees them
  E2EL_r = finished_at - arrived_at
  queue_r = admitted_at - arrived_at (waiting for a batch slot, KV blocks and step budget)
  duration = last finish - first arrival; output_throughput = total_output_tokens / duration
  goodput = requests/s whose TTFT and TPOT both meet the [slo] objectives (DistServe; vLLM's
            `request_goodput`)
  tokens per iteration = tokens emitted per sequence per decode iteration (accepted + 1)
  acceptance_rate       = accepted / judged: the per-token acceptance estimate (the MLE of alpha under
                          i.i.d. acceptance; judged = accepted + one per rejection)
  vLLM's speculative counters (`vllm:spec_decode_num_drafts`, `_num_draft_tokens`, `_num_accepted_tokens`,
  `_num_accepted_tokens_per_pos`) as spec_decode_num_drafts (sequence-iterations that proposed: all that
  speculate, but n-gram lookup without a match proposes nothing), spec_decode_draft_tokens (gamma tokens
  per draft, the nodes of depth <= gamma for a tree), spec_decode_accepted_tokens;
  spec_decode_acceptance_rate = 100 x accepted / draft tokens;
  spec_decode_acceptance_length = 1 + accepted / num_drafts (vLLM's "Mean acceptance length", the bonus
  token included; over proposing iterations only, so an n-gram run's mean tokens per iteration is lower);
  spec_decode_per_position_acceptance_rates[i] = drafts that accepted at least i + 1 tokens / num_drafts
  (for a tree, whose accepted count is the accepted path's depth: the per-depth acceptance)
Run-level TPOT is the token-weighted mean of TPOT_r: sum_r (finished - first) / sum_r (n_r - 1), which is
the plain mean when every request has the same length. Its confidence interval uses batch means over the
run's step sequence (valid for a single long request, where request-level replicates do not exist, and for
batches in lock-step, whose requests are correlated): each step contributes Y = duration x sequences
decoding (past their first token, not finished: stalled and preempted ones included) and X = tokens
emitted to them; sum Y / sum X is the TPOT; the steps are cut into K = 30 contiguous batches and the
ratio's standard error is the delta-method one over the batch sums, after removing a linear trend (t with
K-2 degrees of freedom; see `ratio_ci`). Tokens per iteration, acceptance and output_throughput use the same
batch-means ratio. ITL statistics come from the run's weighted gaps (`records.ItlLog`), not from a
per-delivery table.

Minimum sizes. An interval is reported only where its method has enough data to mean anything: the
batch-means intervals (TPOT, throughput, tokens per iteration, acceptance) need at least
MIN_CI_BATCHES = 10 batches, i.e. at least 20 steps (2 per batch; decode steps for the last two); the t
intervals (TTFT, E2E, queueing over requests; ITL over inter-token gaps) need at least
MIN_CI_SAMPLES = 10 requests (gaps). Below that the interval is [NaN, NaN] and `summarize` adds a key
`<metric>_ci95_note` saying why (a short run's normal-approximation interval can leave the possible
range altogether: acceptance [-0.35, 1.51] from 3 batches).

Clipping. Each interval here estimates a quantity with a range fixed by its definition: acceptance rate
in [0, 1]; tokens per iteration in [1, 1 + the largest gamma of the run] (every decoder emits at least
one token, at most gamma + 1); TPOT, TTFT, E2E, queueing, ITL and throughput >= 0. The intervals are
intersected with that range. This is justified for these methods: the true value lies in the range, so
the clipped interval contains it whenever the unclipped one does (coverage is unchanged) and only
impossible values are removed. It is not a substitute for the minimum sizes above, which keep a short
run from reporting an interval at all. The speedup intervals (`sim/run.py`) are not clipped: a speedup
is only known to be positive, and its delta-method interval ratio x (1 +- h) is reported only while
h < 1 (else NaN with a note); an undefined interval of either run makes the speedup's undefined too.

Undefined values. `UNDEFINED` lists every summary key that may be NaN (JSON null) or infinite, with
when (a `*` stands for any text: `may_be_undefined`); every other number of a summary is finite.
"""

import fnmatch
from pathlib import Path

import numpy as np
import pandas as pd

from .units import PERCENTILES

LATENCY_METRICS = ("ttft", "tpot", "itl", "e2el", "queue")
MIN_CI_BATCHES = 10  # batch-means intervals: at least this many batches (2 steps each)
MIN_CI_SAMPLES = 10  # t intervals: at least this many requests (or inter-token gaps)

# Summary keys that may be NaN (null in JSON) or infinite, and when. A `*_ci95` interval of a summary is
# [NaN, NaN] exactly when the summary also holds its `*_ci95_note`.
UNDEFINED = {
    "*_ci95": "too few batches or requests for the interval's method, or (analytic method) no sampling; "
              "the key `*_ci95_note` then says which",
    "tpot_ms": "every request has a single output token (no time per output token after the first)",
    "speedup_vs_autoregressive": "as tpot_ms (a ratio of TPOTs)",
    "*_tpot_ms": "as tpot_ms (mean_, median_, std_, pNN_)",
    "*_itl_ms": "no request received a second delivery (no inter-token gap)",
    "*_throughput": "the run took no simulated time (request_, output_, total_token_throughput)",
    "acceptance_rate": "no draft token was judged (plain decoding, gamma 0 throughout)",
    "spec_decode_acceptance_*": "no draft token was proposed (gamma 0 throughout): _rate and _length",
    "mean_tokens_per_iteration": "no decode step ran (every request has a single output token)",
    "mean_gamma": "as mean_tokens_per_iteration", "mean_batch": "as mean_tokens_per_iteration",
    "request_goodput": "the scenario has no [slo] table", "slo_attainment": "the scenario has no [slo] table",
    "kv_token_budget": "inf on a GPU without a memory limit (the weights-only `ideal` machine)",
    "iterations": "NaN for run.method = 'analytic' (only a simulation counts iterations)",
    "baseline_iterations": "as iterations",
    **dict.fromkeys(("duration", "request_throughput", "total_token_throughput", "max_concurrent_requests",
                     "mean_*_ms", "median_*_ms", "std_*_ms", "p[0-9]*_ms", "preemptions", "kv_tokens_peak",
                     "spec_decode_*", "time_*_s", "e2e_speedup"),
                    "NaN for run.method = 'analytic' (an expected value knows no requests' times, counts or "
                    "latency spread)"),
}


def may_be_undefined(key: str) -> bool:
    """Whether UNDEFINED allows summary key `key` (or its baseline_ twin) to be NaN or infinite."""
    key = key.removeprefix("baseline_")
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in UNDEFINED)


def _t_quantile(level, dof):
    from scipy import stats  # imported late: scipy.stats costs ~0.5 s to import

    return stats.t.ppf(0.5 + level / 2, dof)


def request_frame(result) -> pd.DataFrame:
    """Per-request latencies (seconds) added to the request records."""
    df = result.requests.copy()
    df["ttft_s"] = df.first_token_at_s - df.arrived_at_s
    df["e2e_s"] = df.finished_at_s - df.arrived_at_s
    df["queue_s"] = df.admitted_at_s - df.arrived_at_s
    decode_tokens = (df.output_tokens - 1).where(df.output_tokens > 1)
    df["tpot_s"] = (df.finished_at_s - df.first_token_at_s) / decode_tokens
    return df


def weighted_percentile(values, weights, q):
    """np.percentile (linear interpolation) of `values` each repeated `weights` times, without repeating."""
    values, weights = np.asarray(values, float), np.asarray(weights, np.int64)
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(weights[order])
    if not cum.size or cum[-1] == 0:
        return np.full(np.shape(q), np.nan)
    h = (cum[-1] - 1) * np.asarray(q, float) / 100
    lo = np.floor(h)
    at = lambda i: values[np.searchsorted(cum, i, side="right")]  # noqa: E731 - the i-th expanded value
    return at(lo) + (h - lo) * (at(np.minimum(lo + 1, cum[-1] - 1)) - at(lo))


def weighted_mean_ci(values, weights, level=0.95, min_n=MIN_CI_SAMPLES):
    """`mean_ci` of `values` each repeated `weights` times."""
    v, w = np.asarray(values, float), np.asarray(weights, float)
    n = w.sum()
    if n < max(2, min_n):
        return (float(v @ w / n) if n else np.nan), np.nan, np.nan
    mean = v @ w / n
    half = _t_quantile(level, n - 1) * np.sqrt(w @ (v - mean) ** 2 / (n - 1) / n)
    return mean, mean - half, mean + half


def ratio_ci(y, x, level=0.95, batches=30, min_batches=MIN_CI_BATCHES):
    """sum(y)/sum(x) with a batch-means delta-method interval over contiguous batches (NaN bounds with
    fewer than `min_batches` batches of at least 2 items each, or nothing in x).

    The batch residuals y_b - ratio x_b are detrended (least squares on the batch index) before their
    spread is taken: step costs grow steadily with the context, a deterministic drift that is no
    sampling error and would otherwise widen the interval (a plain-decoding static batch, which has
    no randomness at all, would get +-0.6%). One more degree of freedom pays for the slope."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    ratio = y.sum() / x.sum() if x.sum() else np.nan
    k = min(batches, y.size // 2)
    if k < max(3, min_batches) or not x.sum():
        return ratio, np.nan, np.nan
    cuts = np.linspace(0, y.size, k + 1).astype(int)[:-1]
    ys, xs = np.add.reduceat(y, cuts), np.add.reduceat(x, cuts)
    residual = ys - ratio * xs
    b = np.arange(k) - (k - 1) / 2
    residual = residual - b * (b @ residual) / (b @ b)
    se = np.sqrt(np.sum(residual**2) / (k * (k - 2))) / xs.mean()
    half = _t_quantile(level, k - 2) * se
    if not np.isfinite(half):
        return ratio, np.nan, np.nan
    return ratio, ratio - half, ratio + half


def mean_ci(values, level=0.95, min_n=MIN_CI_SAMPLES):
    """Mean with a t interval (i.i.d. values); NaN bounds with fewer than `min_n` (at least 2) finite values."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size < max(2, min_n):
        return (v.mean() if v.size else np.nan), np.nan, np.nan
    half = _t_quantile(level, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return v.mean(), v.mean() - half, v.mean() + half


def batch_means_note(items: int, what: str = "steps") -> str | None:
    """Why a batch-means interval over `items` is undefined (None when it is defined)."""
    k = items // 2
    if k >= MIN_CI_BATCHES:
        return None
    return (f"undefined: {items} {what} form {min(k, 30)} batches; the batch-means interval needs at least "
            f"{MIN_CI_BATCHES} batches of 2 {what} ({2 * MIN_CI_BATCHES} {what})")


def samples_note(n: int, what: str = "requests") -> str | None:
    """Why a t interval over `n` samples is undefined (None when it is defined)."""
    if n >= max(2, MIN_CI_SAMPLES):
        return None
    return f"undefined: {n} {what}; the t interval needs at least {MIN_CI_SAMPLES} {what}"


def _put_ci(out: dict, key: str, scale: float, estimate: tuple, note: str | None, low=None, high=None) -> None:
    """out[key] = scale x value, out[key_ci95] = the interval clipped to [low, high] (see the module
    docstring), and out[key_ci95_note] when the interval is undefined."""
    value, lo, hi = (scale * float(v) for v in estimate)
    if np.isnan(lo) or np.isnan(hi):
        lo = hi = np.nan
        note = note or ("undefined: the estimate itself is undefined" if np.isnan(value)
                        else "undefined: the spread of the data is not finite")
    else:
        note = None
        lo = lo if low is None else max(lo, low)
        hi = hi if high is None else min(hi, high)
    out[key], out[f"{key}_ci95"] = value, [lo, hi]
    if note is not None:
        out[f"{key}_ci95_note"] = note


def tpot_ci(result, level=0.95):
    """Run TPOT (s) and its batch-means interval (see module docstring)."""
    steps = result.steps
    y = (steps.ended_at_s - steps.started_at_s).to_numpy() * steps.decoding.to_numpy()
    x = (steps.tokens + steps.resumed).to_numpy()
    return ratio_ci(y, x, level)


def throughput_ci(result, level=0.95):
    """Output tokens/s over the makespan and its batch-means interval: each step contributes the tokens
    it emitted and the time since the previous step ended (the first: since the first arrival)."""
    steps, first = result.steps, result.requests.arrived_at_s.min()
    ended = steps.ended_at_s.to_numpy()
    elapsed = np.diff(ended, prepend=first)
    return ratio_ci((steps.tokens + steps.first_tokens + steps.resumed).to_numpy(), elapsed, level)


def percentile_key(p: float, metric: str) -> str:
    """vLLM's name of a percentile: p99_ttft_ms, p99.9_ttft_ms (an integer percentile without a decimal point)."""
    word = str(int(p)) if int(p) == p else str(p)
    return f"p{word}_{metric}_ms"


def latency_keys(percentiles=PERCENTILES) -> list[str]:
    """The latency statistics of every summary, in vLLM `bench serve` form: mean_/median_/std_/pNN_ per metric."""
    return [key for metric in LATENCY_METRICS
            for key in (f"mean_{metric}_ms", f"median_{metric}_ms", f"std_{metric}_ms",
                        *(percentile_key(p, metric) for p in percentiles))]


def summary_keys(percentiles=PERCENTILES) -> list[str]:
    """Every key `summarize` returns but the conditional `*_ci95_note`s: the one schema of a run's result,
    a sweep row (flattened: `sim.run.Outcome.row`) and an analytic prediction (NaN where only a simulation
    knows)."""
    cis = [f"{key}_ci95" for key in ("output_throughput", "tpot_ms", "mean_ttft_ms", "mean_e2el_ms",
                                     "mean_queue_ms", "mean_itl_ms", "mean_tokens_per_iteration", "acceptance_rate")]
    return ["completed", "failed", "duration", "total_input_tokens", "total_output_tokens", "request_throughput",
            "output_throughput", "total_token_throughput", "max_concurrent_requests", "request_goodput",
            "slo_attainment", "tpot_ms", *latency_keys(percentiles), *cis, "iterations", "preemptions",
            "kv_tokens_peak", "kv_token_budget", "mean_tokens_per_iteration", "acceptance_rate",
            "spec_decode_num_drafts", "spec_decode_draft_tokens", "spec_decode_accepted_tokens",
            "spec_decode_acceptance_rate", "spec_decode_acceptance_length",
            "spec_decode_per_position_acceptance_rates", "mean_gamma", "mean_batch", "time_draft_s",
            "time_verify_s", "time_prefill_s", "accepted_length_histogram", "sim_wall_s"]


def _put_stats(out: dict, metric: str, values, weights, percentiles) -> None:
    """median, std (population, as numpy's default: vLLM's) and percentiles of `values` (seconds), each
    repeated `weights` times, as milliseconds under vLLM's keys."""
    values, weights = np.asarray(values, float), np.asarray(weights, float)
    n = weights.sum()
    mean = values @ weights / n if n else np.nan
    out[f"std_{metric}_ms"] = 1e3 * np.sqrt(weights @ (values - mean) ** 2 / n) if n else np.nan
    median, *rest = weighted_percentile(values, weights, (50, *percentiles))
    out[f"median_{metric}_ms"] = 1e3 * median
    for p, value in zip(percentiles, rest):
        out[percentile_key(p, metric)] = 1e3 * value


def max_concurrent(arrived, finished) -> int:
    """The most requests in flight at once: a sweep over the half-open intervals [arrived, finished)
    (vLLM's `max_concurrent_requests`, there from the client's send and receive times)."""
    times = np.concatenate([arrived, finished])
    steps = np.concatenate([np.ones(len(arrived), int), -np.ones(len(finished), int)])
    order = np.lexsort((steps, times))  # at a tie, a departure comes before an arrival
    return int(np.cumsum(steps[order]).max()) if times.size else 0


def summarize(result, slo=None, level=0.95, percentiles=PERCENTILES) -> dict:
    """One flat dict of run metrics under vLLM `bench serve`'s names where it has one (see the README's
    table): ms for latencies, tokens/s and requests/s for throughputs, `duration` in seconds; `_ci95` =
    [lo, hi], with a `_ci95_note` beside it where the interval is undefined (see the module docstring
    and UNDEFINED). percentiles: the pNN_ keys of every latency metric (vLLM's --metric-percentiles).
    slo: {"ttft_ms": ..., "tpot_ms": ...} (either may be None) for goodput (DistServe: requests/s whose
    TTFT and TPOT both meet their objectives) and the fraction of requests meeting them."""
    req = request_frame(result)
    steps = result.steps
    decode = steps[steps.decoders > 0]
    span = req.finished_at_s.max() - req.arrived_at_s.min()
    input_tokens, output_tokens = int(req.prompt_tokens.sum()), int(req.output_tokens.sum())
    per_s = (lambda count: count / span) if span > 0 else (lambda count: np.nan)
    out = {"completed": len(req), "failed": 0, "duration": span, "total_input_tokens": input_tokens,
           "total_output_tokens": output_tokens, "request_throughput": per_s(len(req)),
           "total_token_throughput": per_s(input_tokens + output_tokens),
           "max_concurrent_requests": max_concurrent(req.arrived_at_s.to_numpy(), req.finished_at_s.to_numpy()),
           "iterations": len(decode)}
    step_note = batch_means_note(len(steps))
    if span > 0:
        _put_ci(out, "output_throughput", 1.0, throughput_ci(result, level), step_note, low=0.0)
    else:
        _put_ci(out, "output_throughput", 1.0, (np.nan,) * 3, "undefined: the run took no simulated time")

    _put_ci(out, "tpot_ms", 1e3, tpot_ci(result, level), step_note, low=0.0)
    for metric, values in (("ttft", req.ttft_s), ("tpot", req.tpot_s), ("e2el", req.e2e_s), ("queue", req.queue_s)):
        values = np.asarray(values, float)
        values = values[np.isfinite(values)]
        if metric == "tpot":  # per request, vLLM's; the run's token-weighted tpot_ms above carries the interval
            out["mean_tpot_ms"] = 1e3 * values.mean() if values.size else np.nan
        else:
            _put_ci(out, f"mean_{metric}_ms", 1e3, mean_ci(values, level), samples_note(values.size), low=0.0)
        _put_stats(out, metric, values, np.ones(values.size), percentiles)
    gaps, counts = result.itl.gap_s.to_numpy(), result.itl["count"].to_numpy()
    _put_ci(out, "mean_itl_ms", 1e3, weighted_mean_ci(gaps, counts, level),
            samples_note(int(counts.sum()), "inter-token gaps"), low=0.0)
    _put_stats(out, "itl", gaps, counts, percentiles)

    slo = slo or {}
    if slo.get("ttft_ms") is None and slo.get("tpot_ms") is None:
        out["request_goodput"] = out["slo_attainment"] = np.nan
    else:
        meets = np.ones(len(req), bool)
        if slo.get("ttft_ms") is not None:
            meets &= (req.ttft_s <= slo["ttft_ms"] / 1e3).to_numpy()
        if slo.get("tpot_ms") is not None:  # a one-token request has no TPOT to miss
            meets &= ~(req.tpot_s > slo["tpot_ms"] / 1e3).to_numpy()
        out["request_goodput"] = per_s(meets.sum())
        out["slo_attainment"] = meets.mean()
    out["preemptions"] = int(req.preemptions.sum())
    out["kv_tokens_peak"] = int(steps.kv_tokens.max()) if len(steps) else 0
    out["kv_token_budget"] = result.kv_token_budget

    decode_note = batch_means_note(len(decode), "decode steps")
    top_gamma = int(decode.gamma.max()) if len(decode) else 0
    _put_ci(out, "mean_tokens_per_iteration", 1.0, ratio_ci(decode.tokens, decode.decoders, level), decode_note,
            low=1.0, high=1.0 + top_gamma)
    judged_note = None if decode.judged.sum() else "undefined: no draft token was judged (plain decoding)"
    _put_ci(out, "acceptance_rate", 1.0, ratio_ci(decode.accepted, decode.judged, level),
            judged_note or decode_note, low=0.0, high=1.0)
    drafts, proposed, accepted = (int(decode[key].sum()) for key in ("drafts", "drafted", "accepted"))
    out["spec_decode_num_drafts"], out["spec_decode_draft_tokens"] = drafts, proposed
    out["spec_decode_accepted_tokens"] = accepted
    out["spec_decode_acceptance_rate"] = 100 * accepted / proposed if proposed else np.nan
    out["spec_decode_acceptance_length"] = 1.0 + accepted / drafts if drafts else np.nan
    at_least = np.cumsum(result.accepted_hist[::-1])[::-1][1:top_gamma + 1]
    out["spec_decode_per_position_acceptance_rates"] = (at_least / drafts).tolist() if drafts else []
    out["mean_gamma"] = (decode.gamma * decode.decoders).sum() / decode.decoders.sum() if len(decode) else np.nan
    out["mean_batch"] = decode.decoders.mean() if len(decode) else np.nan
    for part in ("draft", "verify", "prefill"):
        out[f"time_{part}_s"] = float(steps[f"{part}_s"].sum())
    out["accepted_length_histogram"] = result.accepted_hist.tolist()
    out["sim_wall_s"] = result.sim_wall_s
    return out


def write_parquet(result, out_dir) -> dict:
    """Write requests (with latencies), steps, inter-token gaps, emissions (when the run kept them) and the
    histogram as parquet files in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = {
        "requests": request_frame(result),
        "steps": result.steps,
        "itl": result.itl,
        "accepted_hist": pd.DataFrame({"accepted": np.arange(result.accepted_hist.size),
                                       "count": result.accepted_hist}),
    }
    if result.emissions is not None:
        frames["emissions"] = result.emissions
    paths = {}
    for name, frame in frames.items():
        paths[name] = out / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    return paths
