"""Metrics of a simulation run: records -> DataFrames -> one flat summary; confidence intervals; parquet.

Glossary (per request r with n_r output tokens; all times in seconds inside, `_ms` in summaries):
  TTFT_r = first_token_at - arrived_at (queueing + prefill)
  TPOT_r = (finished_at - first_token_at) / (n_r - 1)          time per output token after the first
  ITL    = gaps between successive deliveries to one request; tokens delivered in the same iteration
           arrive together and count as one delivery (so ITL ~ TPOT x tokens per iteration)
  E2E_r  = finished_at - arrived_at
  queue_r = admitted_at - arrived_at (waiting for a batch slot, KV blocks and step budget)
  goodput = requests/s whose TTFT and TPOT both meet the [slo] objectives (DistServe; vLLM's
            `request_goodput`)
  tokens per iteration = tokens emitted per sequence per decode iteration (accepted + 1)
  acceptance_rate       = accepted / judged: the per-token acceptance estimate (the MLE of alpha under
                          i.i.d. acceptance; judged = accepted + one per rejection)
  draft_acceptance_rate = accepted / proposed (vLLM's definition: gamma tokens proposed per sequence,
                          the nodes of depth <= gamma for a tree)
  vLLM's speculative counters (`vllm:spec_decode_num_drafts`, `_num_draft_tokens`, `_num_accepted_tokens`,
  `_num_accepted_tokens_per_pos`) as num_drafts (sequence-iterations that proposed: all that speculate,
  but n-gram lookup without a match proposes nothing), num_draft_tokens, num_accepted_tokens;
  mean_acceptance_length = 1 + num_accepted_tokens / num_drafts (vLLM's "Mean acceptance length", the bonus
  token included; over proposing iterations only, so an n-gram run's mean tokens per iteration is lower);
  acceptance_rate_per_position[i] = drafts that accepted at least i + 1 tokens / num_drafts (for a tree,
  whose accepted count is the accepted path's depth: the per-depth acceptance)
Run-level TPOT is the token-weighted mean of TPOT_r: sum_r (finished - first) / sum_r (n_r - 1), which is
the plain mean when every request has the same length. Its confidence interval uses batch means over the
run's step sequence (valid for a single long request, where request-level replicates do not exist, and for
batches in lock-step, whose requests are correlated): each step contributes Y = duration x sequences
decoding (past their first token, not finished: stalled and preempted ones included) and X = tokens
emitted to them; sum Y / sum X is the TPOT; the steps are cut into K = 30 contiguous batches and the
ratio's standard error is the delta-method one over the batch sums, after removing a linear trend (t with
K-2 degrees of freedom; see `ratio_ci`). Tokens per iteration, acceptance and throughput use the same
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
when; every other number of a summary is finite.
"""

from pathlib import Path

import numpy as np
import pandas as pd

PERCENTILES = (50, 90, 99)
MIN_CI_BATCHES = 10  # batch-means intervals: at least this many batches (2 steps each)
MIN_CI_SAMPLES = 10  # t intervals: at least this many requests (or inter-token gaps)

# Summary keys that may be NaN (null in JSON) or infinite, and when. A `*_ci95` interval of a summary is
# [NaN, NaN] exactly when the summary also holds its `*_ci95_note`.
UNDEFINED = {
    "*_ci95": "too few batches or requests for the interval's method, or (analytic method) no sampling; "
              "the key `*_ci95_note` then says which",
    "tpot_ms": "every request has a single output token (no time per output token after the first)",
    "speedup_vs_autoregressive": "as tpot_ms (a ratio of TPOTs)",
    "tpot_ms_p50": "as tpot_ms", "tpot_ms_p90": "as tpot_ms", "tpot_ms_p99": "as tpot_ms",
    "itl_ms": "no request received a second delivery (no inter-token gap)",
    "itl_ms_p50": "as itl_ms", "itl_ms_p90": "as itl_ms", "itl_ms_p99": "as itl_ms",
    "acceptance_rate": "no draft token was judged (plain decoding, gamma 0 throughout)",
    "draft_acceptance_rate": "no draft token was proposed (gamma 0 throughout)",
    "mean_acceptance_length": "as draft_acceptance_rate",
    "mean_tokens_per_iteration": "no decode step ran (every request has a single output token)",
    "mean_gamma": "as mean_tokens_per_iteration", "mean_batch": "as mean_tokens_per_iteration",
    "request_goodput": "the scenario has no [slo] table", "slo_attainment": "the scenario has no [slo] table",
    "kv_token_budget": "inf on a GPU without a memory limit (the weights-only `ideal` machine)",
    "iterations": "NaN for run.method = 'analytic' (only a simulation counts iterations)",
    "baseline_iterations": "as iterations",
}


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


def summarize(result, slo=None, level=0.95) -> dict:
    """One flat dict of run metrics (ms for latencies, tokens/s for throughput); `_ci95` = [lo, hi], with a
    `_ci95_note` beside it where the interval is undefined (see the module docstring and UNDEFINED).
    slo: {"ttft_ms": ..., "tpot_ms": ...} (either may be None) for goodput (DistServe: requests/s whose
    TTFT and TPOT both meet their objectives) and the fraction of requests meeting them."""
    req = request_frame(result)
    steps = result.steps
    decode = steps[steps.decoders > 0]
    out = {"requests": len(req), "output_tokens": int(req.output_tokens.sum()),
           "iterations": len(decode)}
    span = req.finished_at_s.max() - req.arrived_at_s.min()
    out["makespan_s"] = span
    step_note = batch_means_note(len(steps))
    if span > 0:
        _put_ci(out, "throughput_tokens_per_s", 1.0, throughput_ci(result, level), step_note, low=0.0)
    else:
        _put_ci(out, "throughput_tokens_per_s", 1.0, (np.nan,) * 3, "undefined: the run took no simulated time")

    _put_ci(out, "tpot_ms", 1e3, tpot_ci(result, level), step_note, low=0.0)
    for name, values in (("tpot", req.tpot_s), ("ttft", req.ttft_s), ("e2e", req.e2e_s), ("queue", req.queue_s)):
        values = np.asarray(values, float)
        values = values[np.isfinite(values)]
        if name != "tpot":
            _put_ci(out, f"{name}_ms", 1e3, mean_ci(values, level), samples_note(values.size), low=0.0)
        for p in PERCENTILES:
            out[f"{name}_ms_p{p}"] = 1e3 * np.percentile(values, p) if values.size else np.nan
    gaps, counts = result.itl.gap_s.to_numpy(), result.itl["count"].to_numpy()
    _put_ci(out, "itl_ms", 1e3, weighted_mean_ci(gaps, counts, level),
            samples_note(int(counts.sum()), "inter-token gaps"), low=0.0)
    for p, value in zip(PERCENTILES, weighted_percentile(gaps, counts, PERCENTILES)):
        out[f"itl_ms_p{p}"] = 1e3 * value

    slo = slo or {}
    if slo.get("ttft_ms") is None and slo.get("tpot_ms") is None:
        out["request_goodput"] = out["slo_attainment"] = np.nan
    else:
        meets = np.ones(len(req), bool)
        if slo.get("ttft_ms") is not None:
            meets &= (req.ttft_s <= slo["ttft_ms"] / 1e3).to_numpy()
        if slo.get("tpot_ms") is not None:  # a one-token request has no TPOT to miss
            meets &= ~(req.tpot_s > slo["tpot_ms"] / 1e3).to_numpy()
        out["request_goodput"] = meets.sum() / span if span > 0 else np.nan
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
    out["draft_acceptance_rate"] = accepted / proposed if proposed else np.nan
    out["num_drafts"], out["num_draft_tokens"], out["num_accepted_tokens"] = drafts, proposed, accepted
    out["mean_acceptance_length"] = 1.0 + accepted / drafts if drafts else np.nan
    at_least = np.cumsum(result.accepted_hist[::-1])[::-1][1:top_gamma + 1]
    out["acceptance_rate_per_position"] = (at_least / drafts).tolist() if drafts else []
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
