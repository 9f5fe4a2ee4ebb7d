"""`sdsl-sim latency` (one forward pass on one GPU profile), `sdsl-sim calibrate` (a profile fitted to your
measured passes) and `sdsl-sim list hardware|models|runtimes`."""

import numpy as np

from ..errors import InputError
from ..hardware import list_gpus, list_runtimes, load_gpu, load_runtime
from ..models import list_models, load_model
from ..scenario import SWEEP_TABLES, scenarios_dir
from ..tomlfile import read_toml
from ..units import SCALE, TOKENS, TP
from . import add_batch, add_context, add_dtypes, add_json_flag, add_runtime, command, int_type, real_type, text_type


def register(subparsers) -> None:
    p = command(subparsers, "latency", "roofline latency of one forward pass",
                "GPU time of one forward pass: BATCH sequences each adding TOKENS new tokens on top of CONTEXT "
                "cached ones (a prefill is --tokens PROMPT --context 0), priced kernel by kernel on the GPU "
                "profile, with what bounds each part; step_ms adds the engine's host work of one decode step.",
                ("sdsl-sim latency --model llama-3.1-8b --hardware h100-sxm --batch 8 --tokens 5",
                 "sdsl-sim latency --model path/to/config.json --hardware b200 --tokens 2048 --context 0 "
                 "--dtype fp8 --json"))
    p.add_argument("--model", required=True, type=text_type, help="catalog name (see `sdsl-sim list models`), "
                   "synthetic-<size>, or a Hugging Face config.json or model .toml path")
    p.add_argument("--hardware", required=True, type=text_type, help="GPU profile name (see `sdsl-sim list hardware`) or a .toml path")
    add_batch(p)
    p.add_argument("--tokens", type=int_type(TOKENS), default=1, help="new tokens per sequence (default 1)")
    add_context(p)
    p.add_argument("--tp", type=int_type(TP), default=1, help="tensor-parallel degree (default 1)")
    add_dtypes(p)
    add_runtime(p)
    for what in ("bandwidth", "flops", "memory", "link"):
        p.add_argument(f"--{what}-scale", type=real_type(SCALE), default=1.0, metavar="X", help=f"what-if: multiply the GPU's {what} by X")
    add_json_flag(p)
    p.set_defaults(handler=latency)

    p = command(subparsers, "calibrate", "fit a GPU profile to your own measured pass latencies",
                "Fit the free parameters of GPU profile BASE (bandwidth-efficiency curve, kernel floor, and where "
                "the rows can identify them FLOP efficiency and all-reduce latency) to pass latencies you "
                "measured (CSV: model, tp, batch, tokens, context, weight_dtype, latency_ms[, kv_dtype]); write "
                "the fitted profile to OUT, to use as --hardware OUT.",
                ("sdsl-sim calibrate my-passes.csv --hardware h100-sxm --out my-h100.toml",
                 "sdsl-sim calibrate my-passes.csv --hardware a100-80gb-sxm --runtime vllm --out a100.toml --json"))
    p.add_argument("measurements", metavar="MEASUREMENTS.csv", type=text_type)
    p.add_argument("--hardware", required=True, type=text_type, metavar="BASE", help="the GPU profile to start from")
    add_runtime(p)  # the engine the measured passes ran under
    p.add_argument("--out", required=True, type=text_type, metavar="OUT.toml", help="where to write the profile")
    add_json_flag(p)
    p.set_defaults(handler=calibrate)

    p = command(subparsers, "list", "list GPU profiles, runtime profiles, catalog models or the shipped "
                "scenario and sweep files",
                "A table of what can be named: GPU profiles (--hardware), engine runtime profiles (--runtime), "
                "catalog models (--target, --draft, --model) or the scenario and sweep files shipped in "
                "scenarios/ (run, sweep).",
                ("sdsl-sim list hardware", "sdsl-sim list models --model path/to/config.json --json"))
    p.add_argument("what", choices=["hardware", "models", "runtimes", "scenarios"])
    p.add_argument("--model", action="append", type=text_type, metavar="MODEL",
                   help="with `models`: describe this model instead of the catalog (a name, synthetic-<size>, or a "
                   "config.json or model .toml path, as it would be read); repeatable")
    add_json_flag(p)
    p.set_defaults(handler=list_things)


def latency(args) -> dict:
    from ..api import pass_latency

    return pass_latency(args.model, args.hardware, batch=args.batch, tokens=args.tokens, context=args.context,
                        tp=args.tp, dtype=args.dtype, kv_dtype=args.kv_dtype, runtime=args.runtime,
                        bandwidth_scale=args.bandwidth_scale, flops_scale=args.flops_scale,
                        memory_scale=args.memory_scale, link_scale=args.link_scale).to_dict()


def _rows(what: str, models: list[str] | None = None) -> list[dict]:
    if what == "hardware":
        rows = []
        for name in list_gpus():
            g = load_gpu(name)
            rows.append({
                "name": name,
                "bf16_tflops": g.bf16_flop_per_s / 1e12,
                "fp8_tflops": None if g.fp8_flop_per_s is None else g.fp8_flop_per_s / 1e12,
                "fp4_tflops": None if g.fp4_flop_per_s is None else g.fp4_flop_per_s / 1e12,
                "hbm_bandwidth_gb_s": g.hbm_bandwidth_bytes_per_s / 1e9,
                "memory_gb": g.memory_bytes / 1e9,
                "description": g.description,
            })
        return rows
    if what == "scenarios":
        return [_scenario_row(path) for path in sorted(scenarios_dir().glob("*.toml"))]
    if what == "runtimes":
        return [{"name": n, "cuda_graphs": r.cuda_graphs, "description": r.description}
                for n, r in ((n, load_runtime(n)) for n in list_runtimes())]
    rows = []
    for name in models or list_models():
        m = load_model(name)
        rows.append({
            "name": name,
            "params_b": m.params / 1e9,
            "active_params_b": m.active_params / 1e9,
            "n_layers": m.n_layers,
            "hidden_size": m.hidden_size,
            "heads": f"{m.n_heads}/{m.n_kv_heads}",
            "ffn": (f"{m.ffn_type} {m.experts_per_token}/{m.num_experts}x{m.moe_ffn_size}"
                    + (f"+{m.shared_experts}" if m.shared_experts else "") if m.is_moe else f"{m.ffn_type} {m.ffn_size}"),
            "attention": "mla" if m.is_mla else (f"window {m.sliding_window} x{m.sliding_window_layers}"
                                                 if m.sliding_window else "full"),
            "vocab_size": m.vocab_size,
        })
    return rows


def _scenario_row(path) -> dict:
    """Name, kind (a sweep file has a [base], [axes] or [[zip]] table) and the first line of its header."""
    kind = "sweep" if set(read_toml(path)) & set(SWEEP_TABLES) else "scenario"
    comments = [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]
    run_with = f"sdsl-sim sweep {path.stem} --out DIR" if kind == "sweep" else f"sdsl-sim run {path.stem}"
    return {"name": path.stem, "kind": kind, "run_with": run_with, "description": comments[0] if comments else ""}


def list_things(args):
    if args.model and args.what != "models":
        raise InputError(f"list {args.what}: --model describes a model; expected `sdsl-sim list models --model MODEL`")
    rows = _rows(args.what, args.model)
    if args.json:
        return {args.what: rows}
    cells = [[_cell(v) for v in row.values()] for row in rows]
    header = list(rows[0])
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    for line in [header, *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    return None


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if value == value and abs(value) != float("inf") else str(value)
    return str(value)


def calibrate(args) -> dict:
    from pathlib import Path

    from ..calibrate import calibrate as fit, profile_text

    result = fit(args.measurements, args.hardware, args.runtime)
    rows = result["rows"]
    Path(args.out).write_text(profile_text(args.hardware, result["parameters"], args.measurements, len(rows)))
    before, after = np.abs(result["before"]), np.abs(result["after"])
    per_row = [{"model": r.model, "tp": int(r.tp), "batch": int(r.batch), "tokens": int(r.tokens),
                "context": int(r.context), "latency_ms": float(r.latency_ms), "error_before": float(b),
                "error_after": float(a)} for r, b, a in zip(rows.itertuples(index=False), result["before"], result["after"])]
    summary = {"out": args.out, "parameters": result["parameters"],
               "median_abs_error_before": float(np.median(before)), "median_abs_error_after": float(np.median(after)),
               "worst_abs_error_before": float(before.max()), "worst_abs_error_after": float(after.max()),
               "rows": per_row}
    if args.json:
        return summary
    print(f"{'model':<16} {'tp':>3} {'batch':>5} {'tokens':>6} {'context':>7} {'measured ms':>11} {'before':>8} {'after':>8}")
    for r in per_row:
        print(f"{r['model']:<16} {r['tp']:>3} {r['batch']:>5} {r['tokens']:>6} {r['context']:>7} {r['latency_ms']:>11.4g} "
              f"{100 * r['error_before']:>7.1f}% {100 * r['error_after']:>7.1f}%")
    print(f"median |error| {100 * summary['median_abs_error_before']:.1f}% -> {100 * summary['median_abs_error_after']:.1f}%,"
          f" worst {100 * summary['worst_abs_error_before']:.1f}% -> {100 * summary['worst_abs_error_after']:.1f}%")
    print("fitted: " + ", ".join(f"{k} = {v:.4g}" for k, v in result["parameters"].items()) + f"; wrote {args.out}")
    return None
