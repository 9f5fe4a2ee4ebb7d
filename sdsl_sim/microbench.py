"""The public micro-benchmarks the GPU profiles are calibrated to (sdsl_sim/data/microbenchmarks.toml,
sources in hardware_profiles/SOURCES.md), each priced by the pass model in the row's own unit.

A point row (`measured_us`, `measured_gb_s`) is reproduced when the prediction is within the row's
`tolerance` of it; a range row (`measured_low_*`, `measured_high_*`) when the prediction lies inside the
range widened by its `tolerance` (0 for most; a row says why where it is not). A row with
`role = "held-out"` sets nothing and has no tolerance: it is priced and its error reported, the
decode-attention kernels the pass model does not reproduce yet.
"""

from importlib.resources import files

from .costs import gemm_time_s, pass_cost
from .errors import InputError
from .hardware import load_gpu
from .models import dtype_bytes, load_model
from .tomlfile import read_toml

KINDS = {  # kind -> (keys it needs, unit)
    "gemm": (("k", "n", "tokens", "measured_us", "tolerance"), "us"),
    "layer_linear": (("model", "tokens", "measured_us", "tolerance"), "us"),
    "gemm_bandwidth": (("k", "n", "tokens", "measured_gb_s", "tolerance"), "gb_s"),
    "gemm_tflops": (("k", "n", "tokens", "measured_low_tflops", "measured_high_tflops", "tolerance"), "tflops"),
    "allreduce": (("model", "tp", "tokens", "measured_low_us", "measured_high_us", "tolerance"), "us"),
    "attention_decode": (("model", "batch", "context", "measured_us"), "us"),
}
ROLES = ("calibration", "held-out")


def load_rows(path=None) -> list[dict]:
    """The rows, checked: InputError naming the row and the key otherwise."""
    path = path or files("sdsl_sim") / "data" / "microbenchmarks.toml"
    rows = read_toml(path).get("row", [])
    for row in rows:
        where = f"{path}: row {row.get('id', '?')!r}"
        if row.get("kind") not in KINDS:
            raise InputError(f"{where}: kind {row.get('kind')!r}; expected one of {', '.join(KINDS)}")
        for key in ("id", "gpu", "weight_dtype", "source", *KINDS[row["kind"]][0]):
            if key not in row:
                raise InputError(f"{where}: key {key!r} missing")
        row.setdefault("role", "calibration")
        if row["role"] not in ROLES or (row["role"] == "held-out" and "tolerance" in row):
            raise InputError(f"{where}: role {row['role']!r}; expected {ROLES[0]!r} (with a tolerance) or "
                             f"{ROLES[1]!r} (without one)")
    return rows


def predict(row: dict) -> float:
    """The pass model's value of the row's quantity, in the row's unit (see KINDS)."""
    gpu, dtype = load_gpu(row["gpu"]), row["weight_dtype"]
    kind = row["kind"]
    if kind in ("gemm", "gemm_bandwidth", "gemm_tflops"):
        k, n, rows = row["k"], row["n"], row["tokens"]
        seconds = float(gemm_time_s(gpu, rows=rows, k=k, n=n, weight_dtype=dtype))
        if kind == "gemm":
            return 1e6 * seconds
        if kind == "gemm_bandwidth":
            return (k * n * dtype_bytes(dtype, "weight dtype") + 2.0 * rows * (k + n)) / seconds / 1e9
        return 2.0 * rows * k * n / seconds / 1e12
    model = load_model(row["model"])
    if kind == "attention_decode":
        cost = pass_cost(model, gpu, batch=row["batch"], tokens=1, context=row["context"], weight_dtype=dtype,
                         kv_dtype=row["kv_dtype"])
        return 1e6 * cost.breakdown_s["attention"] / model.n_layers
    cost = pass_cost(model, gpu, batch=1, tokens=row["tokens"], context=0, tp=row.get("tp", 1), weight_dtype=dtype)
    b = cost.breakdown_s
    if kind == "layer_linear":
        return 1e6 * (b["qkv"] + b["out_proj"] + b["mlp"]) / model.n_layers
    return 1e6 * b["allreduce"] / (2 * model.n_layers)


def measured(row: dict) -> tuple[float, float]:
    """(low, high) of what the row allows: the measured value, or its measured range, widened by its tolerance."""
    unit, tolerance = KINDS[row["kind"]][1], row["tolerance"]
    if f"measured_{unit}" in row:
        return row[f"measured_{unit}"] * (1 - tolerance), row[f"measured_{unit}"] * (1 + tolerance)
    return row[f"measured_low_{unit}"] * (1 - tolerance), row[f"measured_high_{unit}"] * (1 + tolerance)


def reproduced(row: dict) -> dict:
    """The row with its prediction, its error against the measured value (or the nearer end of the range,
    0 inside it) and whether it is reproduced (None for a held-out row)."""
    value = predict(row)
    unit = KINDS[row["kind"]][1]
    if row["role"] == "held-out":
        return {**row, "unit": unit, "predicted": value, "error": value / row[f"measured_{unit}"] - 1,
                "reproduced": None}
    low, high = measured(row)
    centre = row.get(f"measured_{unit}")
    if centre is not None:
        error = value / centre - 1
    else:  # against the measured range itself, not the widened one
        low_m, high_m = row[f"measured_low_{unit}"], row[f"measured_high_{unit}"]
        error = 0.0 if low_m <= value <= high_m else (value / high_m - 1 if value > high_m else value / low_m - 1)
    return {**row, "unit": unit, "predicted": value, "error": error, "reproduced": bool(low <= value <= high)}
