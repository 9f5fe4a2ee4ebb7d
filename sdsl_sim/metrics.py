"""Metrics of a simulation run: records -> DataFrames -> one flat summary; confidence intervals; parquet.

Glossary (per request r with n_r output tokens; all times in seconds inside, `_ms` in summaries):
  TTFT_r = first_token_at - arrived_at (queueing + prefill)
  TPOT_r = (finished_at - first_token_at) / (n_r - 1)          time per output token after the first
  ITL    = gaps between successive deliveries to one request; tokens delivered in the same iteration
           arrive together and count as one delivery (so ITL ~ TPOT x tokens per iteration)
  E2E_r  = finished_at - arrived_at
  tokens per iteration = tokens emitted per sequence per decode iteration (accepted + 1)
  acceptance_rate       = accepted / judged: the per-token acceptance estimate (the MLE of alpha under
                          i.i.d. acceptance; judged = accepted + one per rejection)
  draft_acceptance_rate = accepted / proposed (vLLM's definition: gamma tokens proposed per sequence)
Run-level TPOT is the token-weighted mean of TPOT_r: sum_r (finished - first) / sum_r (n_r - 1), which is
the plain mean when every request has the same length. Its confidence interval uses batch means over the
run's step sequence (valid for a single long request, where request-level replicates do not exist, and for
batches in lock-step, whose requests are correlated): each step contributes Y = duration x sequences
decoding and X = tokens emitted by them; sum Y / sum X is the TPOT; the steps are cut into K = 30
contiguous batches and the ratio's standard error is the delta-method one over the batch sums, after
removing a linear trend (t with K-2 degrees of freedom; see `ratio_ci`). Tokens per iteration and acceptance use the same batch-means ratio.
"""

from pathlib import Path

import numpy as np
import pandas as pd

PERCENTILES = (50, 90, 99)


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


def itl_s(result) -> np.ndarray:
    """Inter-token latencies (seconds): gaps between successive deliveries to the same request."""
    em = result.emissions
    order = np.lexsort((em.at_s.to_numpy(), em.request_id.to_numpy()))
    ids, at = em.request_id.to_numpy()[order], em.at_s.to_numpy()[order]
    same = ids[1:] == ids[:-1]
    return (at[1:] - at[:-1])[same]


def ratio_ci(y, x, level=0.95, batches=30):
    """sum(y)/sum(x) with a batch-means delta-method interval over contiguous batches (NaN if too short).

    The batch residuals y_b - ratio x_b are detrended (least squares on the batch index) before their
    spread is taken: step costs grow steadily with the context, a deterministic drift that is no
    sampling error and would otherwise widen the interval (a plain-decoding static batch, which has
    no randomness at all, would get +-0.6%). One more degree of freedom pays for the slope."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    ratio = y.sum() / x.sum() if x.sum() else np.nan
    k = min(batches, y.size // 2)
    if k < 3:
        return ratio, np.nan, np.nan
    cuts = np.linspace(0, y.size, k + 1).astype(int)[:-1]
    ys, xs = np.add.reduceat(y, cuts), np.add.reduceat(x, cuts)
    residual = ys - ratio * xs
    b = np.arange(k) - (k - 1) / 2
    residual = residual - b * (b @ residual) / (b @ b)
    se = np.sqrt(np.sum(residual**2) / (k * (k - 2))) / xs.mean()
    half = _t_quantile(level, k - 2) * se
    return ratio, ratio - half, ratio + half


def mean_ci(values, level=0.95):
    """Mean with a t interval (i.i.d. values); NaN bounds with fewer than 2 values."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return (v.mean() if v.size else np.nan), np.nan, np.nan
    half = _t_quantile(level, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return v.mean(), v.mean() - half, v.mean() + half


def tpot_ci(result, level=0.95):
    """Run TPOT (s) and its batch-means interval (see module docstring)."""
    steps = result.steps
    y = (steps.ended_at_s - steps.started_at_s).to_numpy() * steps.decoding.to_numpy()
    x = np.where(steps.kind == "decode", steps.tokens, 0)
    return ratio_ci(y, x, level)


def summarize(result, level=0.95) -> dict:
    """One flat dict of run metrics (ms for latencies, tokens/s for throughput); `_ci95` = [lo, hi]."""
    req = request_frame(result)
    steps = result.steps
    decode = steps[steps.kind == "decode"]
    out = {"requests": len(req), "output_tokens": int(req.output_tokens.sum()),
           "iterations": len(decode)}
    span = req.finished_at_s.max() - req.arrived_at_s.min()
    out["makespan_s"] = span
    out["throughput_tokens_per_s"] = out["output_tokens"] / span if span > 0 else np.nan

    tpot, lo, hi = tpot_ci(result, level)
    out["tpot_ms"], out["tpot_ms_ci95"] = 1e3 * tpot, [1e3 * lo, 1e3 * hi]
    for name, values in (("tpot", req.tpot_s), ("ttft", req.ttft_s), ("e2e", req.e2e_s), ("itl", itl_s(result))):
        values = np.asarray(values, float)
        values = values[np.isfinite(values)]
        if name != "tpot":
            m, l, h = mean_ci(values, level)
            out[f"{name}_ms"], out[f"{name}_ms_ci95"] = 1e3 * m, [1e3 * l, 1e3 * h]
        for p in PERCENTILES:
            out[f"{name}_ms_p{p}"] = 1e3 * np.percentile(values, p) if values.size else np.nan

    tpi, lo, hi = ratio_ci(decode.tokens, decode.batch, level)
    out["mean_tokens_per_iteration"], out["mean_tokens_per_iteration_ci95"] = tpi, [lo, hi]
    acc, lo, hi = ratio_ci(decode.accepted, decode.judged, level)
    out["acceptance_rate"], out["acceptance_rate_ci95"] = acc, [lo, hi]
    proposed = (decode.gamma * decode.batch).sum()
    out["draft_acceptance_rate"] = decode.accepted.sum() / proposed if proposed else np.nan
    out["mean_gamma"] = (decode.gamma * decode.batch).sum() / decode.batch.sum() if len(decode) else np.nan
    out["mean_batch"] = decode.batch.mean() if len(decode) else np.nan
    for part in ("draft", "verify", "prefill"):
        out[f"time_{part}_s"] = float(steps[f"{part}_s"].sum())
    out["accepted_length_histogram"] = result.accepted_hist.tolist()
    out["sim_wall_s"] = result.sim_wall_s
    return out


def write_parquet(result, out_dir) -> dict:
    """Write requests (with latencies), steps, emissions and the histogram as parquet files in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = {
        "requests": request_frame(result),
        "steps": result.steps,
        "emissions": result.emissions,
        "accepted_hist": pd.DataFrame({"accepted": np.arange(result.accepted_hist.size),
                                       "count": result.accepted_hist}),
    }
    paths = {}
    for name, frame in frames.items():
        paths[name] = out / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    return paths
