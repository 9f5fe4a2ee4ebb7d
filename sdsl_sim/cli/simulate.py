"""`sdsl-sim simulate | run | validate`: the simpy simulator from the command line.

simulate  one target/draft pair on one GPU profile from flags (a static batch; speedup against a baseline
          run of the same workload with plain autoregressive decoding)
run       a scenario file (no argument: the embedded scenarios/default.toml), printed as a summary table;
          --out DIR also writes the run's requests/steps/inter-token gaps/emissions as parquet
validate  the closed-form agreement grid on `ideal` (simulated vs Lambert-W speedup, per point pass/fail)
"""

import sys

from ..errors import InputError
from ..scenario import DEFAULT_MAX_GAMMA, GAMMA_POLICIES
from ..units import MAX_GAMMA_RANGE, MAX_TOKENS, REQUESTS, SEED, TOKENS, TP, Range, count_range, parse_real
from . import (Shown, add_batch, add_context, add_dtypes, add_json_flag, add_result_flags, add_runtime, add_train_tokens,
               alpha_type, arg_type, command, count_type, gamma_type, int_type, parse_alpha, parse_list, real_type,
               text_type)


def _progress_bar(total_label, unit="tok"):
    """A tqdm bar on stderr for runs long enough to need one (tqdm hides itself when not a terminal)."""
    from tqdm import tqdm

    bar = None

    def update(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit=unit, desc=total_label, file=sys.stderr, leave=False,
                       mininterval=0.5, disable=None)
        bar.n = done
        bar.refresh() if done >= total else bar.update(0)
        if done >= total:
            bar.close()

    return update


def _pair(args, **decoding) -> dict:
    """The scenario tables of the flags `_add_pair_flags` defines (`api.pair_scenario`)."""
    from ..api import pair_scenario

    models = {}
    for role in ("target", "draft"):
        name, params = getattr(args, role), getattr(args, f"{role}_params")
        if (name is None) == (params is None):
            raise InputError(f"{args.command}: give exactly one of --{role} NAME or --{role}-params N")
        models[role] = name or params
    return pair_scenario(models["target"], models["draft"], args.hardware, tp=args.tp, draft_tp=args.draft_tp,
                         runtime=args.runtime, dtype=args.dtype, kv_dtype=args.kv_dtype,
                         alpha=getattr(args, "alpha", None), batch=args.batch, context=args.context,
                         output_tokens=args.output_tokens, requests=args.requests, train_tokens=args.train_tokens,
                         **decoding)


def simulate(args) -> Shown:
    from ..scenario import scenario_from_dict

    data = _pair(args, gamma=args.gamma, max_gamma=args.max_gamma)
    return _run(scenario_from_dict(data, source="simulate"), args.seed, args)


def _run(scenario, seed, args, out_dir=None) -> Shown:
    """Run `scenario` with `seed`: its result (the same keys for `simulate` and `run`) and its table."""
    from .. import metrics
    from ..sim.run import run_scenario

    if args.metric_percentiles is not None:
        scenario.config["run"]["metric_percentiles"] = args.metric_percentiles
    outcome = run_scenario(scenario, seed, progress=_progress_bar("simulating"), keep_emissions=bool(out_dir))
    if out_dir:
        metrics.write_parquet(outcome.spec, out_dir)
        metrics.write_parquet(outcome.base, f"{out_dir}/baseline")
    summary = {"scenario": scenario.source, "seed": seed, **outcome.summary}
    return Shown(summary, lambda s: _print_table(scenario, s, outcome.setup.scheduler))


def infer_alpha(args) -> dict:
    from ..sim.infer import infer_alpha

    return infer_alpha(_pair(args, gamma=args.gamma), args.measured_speedup)


def run(args) -> Shown:
    from ..scenario import load_scenario

    scenario = load_scenario(args.scenario)
    if args.out and scenario.config["run"]["method"] != "simulated":
        raise InputError(f"--out writes a simulation's records, but {scenario.source} has run.method = "
                         f"{scenario.config['run']['method']!r}; expected 'simulated'")
    seed = scenario.config["run"]["seed"] if args.seed is None else args.seed
    return _run(scenario, seed, args, args.out)


def _print_table(scenario, s, sched) -> None:
    cfg = scenario.config
    m, hw, wl = cfg["model"], cfg["hardware"], cfg["workload"]
    percentiles = cfg["run"]["metric_percentiles"]
    target = m["target"] or f"synthetic {m['target_params']:.3g} params"
    method = cfg["decoding"]["method"]
    if method == "draft-model":
        draft = "draft " + (m["draft"] or f"synthetic {m['draft_params']:.3g} params")
    else:
        draft = "n-gram lookup" if method == "ngram" else f"its {method} head"

    def ci(key):
        lo, hi = s.get(f"{key}_ci95", [float("nan")] * 2)
        return f"[{lo:.4g}, {hi:.4g}]"

    rows = [
        ("scenario", f"{scenario.source} (seed {s['seed']}, {s['method']})"),
        ("pair", f"{target} + {draft}"),
        ("hardware", f"{hw['name']} x tp {hw['tp']}"),
        ("workload", _describe_workload(wl, s)),
        ("scheduler", (f"chunked prefill, {sched.max_num_batched_tokens} tokens per step" if sched.chunked_prefill
                       else "prefill steps stall the batch") + f"; {sched.kv_allocation} KV"),
        ("alpha", f"{s['alpha']:.4f} ({s['alpha_source']})"),
        ("gamma (most used)", f"{s['gamma']} (mean {s.get('mean_gamma', float('nan')):.2f})"),
        ("TPOT", f"{s['tpot_ms']:.4g} ms  95% CI {ci('tpot_ms')}  (baseline {s['baseline_tpot_ms']:.4g} ms)"),
        ("speedup vs plain", f"{s['speedup_vs_autoregressive']:.4g}x  95% CI {ci('speedup_vs_autoregressive')}"
                             f"  (expected-value prediction {s['predicted_speedup']:.4g}x)"),
        ("throughput", f"{s['output_throughput']:.5g} tokens/s" + (
            f"  ({s['throughput_speedup']:.4g}x baseline, 95% CI {ci('throughput_speedup')})"
            if s["method"] == "simulated" else "")),
        ("tokens / iteration", f"{s['mean_tokens_per_iteration']:.4g}"),
        ("acceptance rate", f"{s['acceptance_rate']:.4g} per token"),
    ]
    if s["method"] == "simulated":
        rows += [
            _latency_row(s, "ttft", "TTFT", percentiles),
            _latency_row(s, "itl", "ITL", percentiles),
            _latency_row(s, "e2el", "E2E latency", percentiles),
            ("E2E speedup", f"mean {s['e2e_speedup']:.4g}x faster than baseline, 95% CI {ci('e2e_speedup')}"),
            _latency_row(s, "queue", "queueing", percentiles),
            ("KV cache", f"peak {s['kv_tokens_peak']:,} of {s['kv_token_budget']:,.0f} token slots; "
                         f"{s['preemptions']} preemptions (baseline {s['baseline_preemptions']})"),
            ("time split", f"draft {s['time_draft_s']:.4g} s, verify {s['time_verify_s']:.4g} s, "
                           f"prefill {s['time_prefill_s']:.4g} s"),
            ("iterations", f"{s['iterations']} (baseline {s['baseline_iterations']})"),
            ("simulator wall time", f"{s['sim_wall_s']:.3g} s"),
        ]
        if s["slo_attainment"] == s["slo_attainment"]:  # not NaN: the scenario has an [slo] table
            rows.append(("goodput", f"{s['request_goodput']:.4g} requests/s meet the SLO ({s['slo_attainment']:.1%} "
                                    f"of requests; baseline {s['baseline_request_goodput']:.4g} requests/s)"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def _latency_row(s, metric: str, label: str, percentiles) -> tuple[str, str]:
    from ..metrics import percentile_key

    keys = [percentile_key(p, metric) for p in percentiles]
    return (f"{label} " + "/".join(key.split("_")[0] for key in keys),
            " / ".join(f"{s[key]:.4g}" for key in keys) + f" ms  (mean {s[f'mean_{metric}_ms']:.4g})")


def _describe_workload(wl, s) -> str:
    if wl["trace"] is not None:
        return f"trace {wl['trace']}, {s['requests']} requests, batch <= {wl['batch']}"
    arrival = {"poisson": f"poisson at {wl['rate_per_s']:g} requests/s",
               "closed": f"closed loop of {wl['concurrency'] or wl['batch']}"}.get(wl["arrival"], wl["arrival"])
    return (f"{arrival}, {wl['requests']} requests, batch <= {wl['batch']}, prompt {_length(wl['prompt_tokens'])} "
            f"+ output {_length(wl['output_tokens'])} tokens")


def _length(value) -> str:
    if isinstance(value, int):
        return str(value)
    return "{" + ", ".join(f"{k} = {v!r}" for k, v in value.items()) + "}"


def validate(args) -> dict | None:
    from ..sim.validate import ALPHAS, RATIOS, agreement_grid

    alphas = ALPHAS if args.alphas is None else args.alphas
    ratios = RATIOS if args.ratios is None else args.ratios
    progress = None if args.json else _progress_bar("validating", unit="point")
    rows = agreement_grid(alphas, ratios, args.min_output_tokens, args.seed, args.tolerance, progress)
    result = {
        "passed": all(r["pass"] for r in rows),
        "max_abs_rel_error_vs_lambert_w": max(abs(r["rel_error_vs_lambert_w"]) for r in rows),
        "tolerance": args.tolerance, "points": rows,
    }
    if args.json:
        return result
    print(f"{'alpha':>5} {'M/N':>5} {'gamma':>5} {'tokens':>8} {'simulated':>10} {'Lambert-W':>10} "
          f"{'error':>8} {'Leviathan in 99% CI':>20}  result")
    for r in rows:
        print(f"{r['alpha']:>5.2f} {r['m_over_n']:>5g} {r['gamma']:>5d} {r['output_tokens']:>8d} "
              f"{r['simulated_speedup']:>10.4f} {r['lambert_w_speedup']:>10.4f} "
              f"{100 * r['rel_error_vs_lambert_w']:>7.2f}% {str(r['leviathan_inside_ci99']):>20}  "
              f"{'pass' if r['pass'] else 'FAIL'}")
    print(f"{'passed' if result['passed'] else 'FAILED'}: max |error| "
          f"{100 * result['max_abs_rel_error_vs_lambert_w']:.2f}% (tolerance {100 * args.tolerance:g}%)")
    return None


def _alphas(text):
    return parse_list(text, parse_alpha)


RATIO = Range(1.0, 5000.0, low_open=True)  # drafts are synthetic 70B / ratio models, which need ~10M+
TOLERANCE = Range(0.0, 1.0, low_open=True, high_open=True)
SPEEDUP = Range(0.0, 1000.0, low_open=True)
# Fewer tokens a point leave the 99% interval of the agreement check undefined (it needs 10 batches of steps).
VALIDATE_TOKENS = count_range(MAX_TOKENS, "MAX_TOKENS", low=1000)


def _ratios(text):
    return parse_list(text, lambda item: parse_real(item, RATIO, "M/N"))


def _add_pair_flags(p, alpha: bool = True) -> None:
    """The flags naming a target/draft pair on a GPU and its static batch (simulate, infer-alpha)."""
    p.add_argument("--target", type=text_type, help="target model: a catalog name (see `sdsl-sim list models`), "
                   "synthetic-<size>, or a config.json or model .toml path")
    p.add_argument("--target-params", type=count_type("target size"), metavar="M",
                   help="synthetic target of M parameters (70B, 70e9)")
    p.add_argument("--draft", type=text_type, help="draft model, in the forms --target takes")
    p.add_argument("--draft-params", type=count_type("draft size"), metavar="N", help="synthetic draft (277M)")
    p.add_argument("--hardware", required=True, type=text_type, help="GPU profile name or TOML path (e.g. h100-sxm, ideal)")
    p.add_argument("--tp", type=int_type(TP), default=1, help="tensor-parallel GPUs of the target (default 1)")
    p.add_argument("--draft-tp", type=int_type(TP), help="tensor-parallel GPUs of the draft (default: the runtime's "
                   "policy, 1 for all but vllm-v0 and gpt-fast)")
    add_runtime(p)
    add_dtypes(p)
    if alpha:
        p.add_argument("--alpha", type=alpha_type, help="per-token acceptance; default: the SDSL law")
    add_batch(p)
    add_context(p)
    p.add_argument("--output-tokens", type=int_type(TOKENS), default=1024,
                   help="tokens generated per request (default 1024)")
    p.add_argument("--requests", type=int_type(REQUESTS), help="requests (default: one batch)")
    add_train_tokens(p)


def register(subparsers) -> None:
    p = command(subparsers, "simulate", "simulate one target/draft pair on one GPU (static batch)",
                "Simulate speculative decoding of a draft and a target model on one GPU profile: a static batch "
                "of requests, each draft and verification pass priced by the roofline model and the engine's "
                "runtime profile, acceptance drawn token by token. The result sets it beside plain decoding of "
                "the same requests (speedups with 95% intervals) under vLLM `bench serve`'s result keys.",
                ("sdsl-sim simulate --target llama-3.1-8b --draft llama-3.2-1b --hardware h100-sxm --batch 8",
                 "sdsl-sim simulate --target llama-3.1-70b --draft llama-3.2-1b --hardware h100-sxm --tp 4 "
                 "--alpha 0.7 --gamma 4 --runtime sglang --json --output runs/70b.json"))
    _add_pair_flags(p)
    p.add_argument("--gamma", type=gamma_type(*GAMMA_POLICIES), default="auto",
                   help="draft tokens per iteration: integer, auto (default), adaptive or heuristic (HF's +2/-1 rule)")
    p.add_argument("--max-gamma", type=int_type(MAX_GAMMA_RANGE), default=DEFAULT_MAX_GAMMA,
                   help=f"bound for the policies (default {DEFAULT_MAX_GAMMA})")
    p.add_argument("--seed", type=int_type(SEED), default=0, help="seed (default 0)")
    add_result_flags(p)
    p.set_defaults(handler=simulate)

    p = command(subparsers, "infer-alpha", "the acceptance that reproduces a measured speedup",
                "The per-token acceptance alpha at which the expected-value model of this pair, GPU and engine "
                "gives the speedup you measured at lookahead GAMMA; reproducible: false when no alpha in (0, 1) "
                "does (the engine model, not the acceptance, is then off).",
                ("sdsl-sim infer-alpha --target llama-3.1-8b --draft llama-3.2-1b --hardware h100-sxm "
                 "--gamma 4 --measured-speedup 1.9",
                 "sdsl-sim infer-alpha --target llama-3.1-70b --draft llama-3.2-1b --hardware a100-80gb-sxm "
                 "--tp 4 --runtime vllm --gamma 5 --measured-speedup 2.3 --json"))
    _add_pair_flags(p, alpha=False)
    p.add_argument("--gamma", type=gamma_type("heuristic", allowed=MAX_GAMMA_RANGE), required=True,
                   help="the lookahead the measurement ran with (>= 1), or heuristic (HF's +2/-1 schedule)")
    p.add_argument("--measured-speedup", type=real_type(SPEEDUP), required=True, metavar="S",
                   help="measured speedup of speculative over plain decoding (TPOT ratio)")
    add_json_flag(p)
    p.set_defaults(handler=infer_alpha)

    p = command(subparsers, "run", "run a scenario file and print a summary table",
                "Run a scenario (a TOML file of [run], [model], [hardware], [workload], [scheduler], "
                "[decoding] and [slo] tables; `sdsl-sim list scenarios` shows the shipped ones) with its "
                "autoregressive baseline, and print the result as a table, or as JSON.",
                ("sdsl-sim run scenarios/poisson-serving.toml --metric-percentiles 50,99",
                 "sdsl-sim run my-scenario.toml --seed 3 --json --output runs/seed3.json --out runs/seed3"))
    p.add_argument("scenario", nargs="?", type=text_type, help="scenario TOML path or embedded name (default: default)")
    p.add_argument("--seed", type=int_type(SEED), help="seed (default: the scenario's run.seed)")
    p.add_argument("--out", metavar="DIR", type=text_type, help="write requests/steps/emissions parquet files here")
    add_result_flags(p)
    p.set_defaults(handler=run)

    p = command(subparsers, "validate", "closed-form agreement grid on the ideal GPU",
                "Simulate a grid of acceptances and target/draft size ratios on the `ideal` GPU, where a pass "
                "costs its weights' bytes, and check each simulated speedup against the Lambert-W closed form "
                "to a tolerance (and Leviathan's speedup against the run's 99% interval).",
                ("sdsl-sim validate", "sdsl-sim validate --alphas 0.6,0.8 --ratios 10,100 --tolerance 0.02 --json"))
    p.add_argument("--alphas", type=arg_type(_alphas), help="comma-separated alphas (default 0.5..0.9)")
    p.add_argument("--ratios", type=arg_type(_ratios), help="comma-separated M/N (default 10,100,1000)")
    p.add_argument("--min-output-tokens", type=int_type(VALIDATE_TOKENS), default=100_000)
    p.add_argument("--tolerance", type=real_type(TOLERANCE), default=0.01, help="relative tolerance vs Lambert-W (0.01)")
    p.add_argument("--seed", type=int_type(SEED), default=0)
    add_json_flag(p)
    p.set_defaults(handler=validate)
