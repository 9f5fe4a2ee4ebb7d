"""Fitting a GPU profile's free parameters to a user's own measured pass latencies.

Rows (CSV): model (catalog name or synthetic-<size>), tp, batch, tokens, context, weight_dtype,
latency_ms, optionally kv_dtype: the GPU time of one forward pass of `batch` sequences each adding
`tokens` to `context` cached ones. The fit is least squares on log(predicted / measured) over the
parameters the rows can identify, within physical bounds (`BOUNDS`):

    bw_eff_max, bw_eff_half_mb, kernel_floor_us       always (every pass reads weights and runs kernels)
    flops_eff_max, overlap_exponent                    only if some row has >= COMPUTE_ROWS GEMM rows
    allreduce_latency_us                               only if some row has tp > 1

The bandwidth curve's exponent stays at the base profile's (it trades off with the half-point and the
rows rarely pin it), and so do the SM count and GEMM tile (integers a least-squares fit cannot move).
Everything else (datasheet peaks, memory, links) is the base profile's.
"""

import dataclasses
import datetime
import math
import tomllib

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from .costs import pass_latency_s
from .errors import InputError
from .hardware import GPU, _profiles_dir, _read_profile, list_gpus, load_gpu
from .models import dtype_bytes, load_model
from .units import BATCH, CONTEXT, TOKENS, TP

COLUMNS = ("model", "tp", "batch", "tokens", "context", "weight_dtype", "latency_ms")
COMPUTE_ROWS = 128
# parameter (file key) -> (GPU field, factor file -> SI, lower, upper)
BOUNDS = {
    "bw_eff_max": ("bw_eff_max", 1.0, 0.05, 1.0),
    "bw_eff_half_mb": ("bw_eff_half_bytes", 1e6, 0.0, 1000.0),
    "kernel_floor_us": ("kernel_floor_s", 1e-6, 0.0, 100.0),
    "flops_eff_max": ("flops_eff_max", 1.0, 0.05, 1.0),
    "overlap_exponent": ("overlap_exponent", 1.0, 1.0, 16.0),
    "allreduce_latency_us": ("allreduce_latency_s", 1e-6, 0.0, 1000.0),
}


def read_rows(path) -> pd.DataFrame:
    """The measurement rows, checked: InputError naming the file, the row and the column otherwise."""
    try:
        frame = pd.read_csv(path, dtype={"model": str, "weight_dtype": str, "kv_dtype": str})
    except FileNotFoundError:
        raise InputError(f"measurements {str(path)!r} not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a CSV file ({str(exc).splitlines()[0]})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: column {missing[0]!r} missing; expected columns {', '.join(COLUMNS)} (kv_dtype optional)")
    if not len(frame):
        raise InputError(f"{path}: no rows; expected at least one measured pass")
    if "kv_dtype" not in frame.columns:
        frame["kv_dtype"] = "bf16"
    for i, row in frame.iterrows():
        where = f"{path}: row {i + 2}"
        load_model(str(row.model))  # an unknown model is an InputError naming it
        for column in ("weight_dtype", "kv_dtype"):
            dtype_bytes(str(row[column]), f"{where}: {column}")
        for column, bounds in (("tp", TP), ("batch", BATCH), ("tokens", TOKENS), ("context", CONTEXT)):
            value = row[column]
            if not (isinstance(value, (int, np.integer)) and bounds.contains(int(value))):
                raise InputError(f"{where}: {column} = {value!r}; expected {bounds.expected}")
        latency = row.latency_ms
        if not (isinstance(latency, (int, float, np.number)) and math.isfinite(latency) and latency > 0):
            raise InputError(f"{where}: latency_ms = {latency!r}; expected a positive finite number of ms")
    return frame


def free_parameters(rows: pd.DataFrame) -> list[str]:
    """The parameters the rows can identify (see the module docstring)."""
    names = ["bw_eff_max", "bw_eff_half_mb", "kernel_floor_us"]
    if (rows.batch * rows.tokens).max() >= COMPUTE_ROWS:
        names += ["flops_eff_max", "overlap_exponent"]
    if rows.tp.max() > 1:
        names.append("allreduce_latency_us")
    return names


def with_parameters(gpu: GPU, values: dict) -> GPU:
    """`gpu` with the given file-unit parameters replaced."""
    return dataclasses.replace(gpu, **{BOUNDS[k][0]: v * BOUNDS[k][1] for k, v in values.items()})


def predict_ms(gpu: GPU, rows: pd.DataFrame, runtime=None) -> np.ndarray:
    out = np.empty(len(rows))
    for i, row in enumerate(rows.itertuples(index=False)):
        out[i] = 1e3 * float(pass_latency_s(load_model(row.model), gpu, batch=int(row.batch), tokens=int(row.tokens),
                                            context=int(row.context), tp=int(row.tp), weight_dtype=row.weight_dtype,
                                            kv_dtype=row.kv_dtype, runtime=runtime))
    return out


def current(gpu: GPU, names: list[str]) -> dict:
    return {k: getattr(gpu, BOUNDS[k][0]) / BOUNDS[k][1] for k in names}


def fit(base: GPU, rows: pd.DataFrame, runtime=None) -> dict:
    """Fitted parameters, the calibrated GPU and the residuals before and after (relative errors)."""
    names = free_parameters(rows)
    if len(rows) < 2 * len(names):
        raise InputError(f"{len(rows)} measured passes cannot pin down {len(names)} parameters ({', '.join(names)}); "
                         f"expected at least {2 * len(names)} rows (two per parameter)")
    start = current(base, names)
    lower = np.array([BOUNDS[k][2] for k in names])
    upper = np.array([BOUNDS[k][3] for k in names])
    x0 = np.clip([start[k] for k in names], lower, upper)
    measured = rows.latency_ms.to_numpy(float)

    def residual(x):
        return np.log(predict_ms(with_parameters(base, dict(zip(names, x))), rows, runtime) / measured)

    result = least_squares(residual, x0, bounds=(lower, upper), x_scale=np.maximum(np.abs(x0), 1e-3))
    fitted = dict(zip(names, map(float, result.x)))
    gpu = with_parameters(base, fitted)
    before = predict_ms(base, rows, runtime) / measured - 1
    after = predict_ms(gpu, rows, runtime) / measured - 1
    return {"parameters": fitted, "gpu": gpu, "before": before, "after": after}


def profile_text(base_name: str, fitted: dict, source: str, rows: int) -> str:
    """A GPU profile: the base file's keys with the fitted ones replaced, and a header saying what was fitted."""
    table = tomllib.loads(_read_profile(base_name, _profiles_dir(), list_gpus(), "hardware")[2].decode())
    table.update({k: round(v, 6) for k, v in fitted.items()})
    stamp = datetime.date.today().isoformat()
    lines = [f"# Calibrated by `sdsl-sim calibrate` on {stamp} from {rows} measured passes in {source}.",
             f"# Base profile: {base_name} (its sources: hardware_profiles/SOURCES.md); fitted keys: "
             f"{', '.join(fitted)}. Every other value is the base profile's."]
    for key, value in table.items():
        if isinstance(value, str):
            value = f'"{value}"'
        elif isinstance(value, bool):
            value = str(value).lower()
        lines.append(f"{key} = {value}{'  # fitted' if key in fitted else ''}")
    return "\n".join(lines) + "\n"


def calibrate(measurements, hardware: str, runtime=None) -> dict:
    rows = read_rows(measurements)
    base = load_gpu(hardware)
    if base.pass_model != "roofline":
        raise InputError(f"--hardware {hardware!r} has pass_model {base.pass_model!r}; expected a roofline profile")
    result = fit(base, rows, runtime)
    return {**result, "rows": rows}
