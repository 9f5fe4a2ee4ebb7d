"""Fuzzing the promise the README makes about bad input: every command, run in-process through
`cli.main(argv)`, either exits 0 with finite, in-range numbers on stdout, or exits 2 with exactly one
stderr line starting `error:`; never a traceback, never a warning.

Flags take values drawn from what the command accepts and from hostile strategies (negatives, zero,
values just beyond a stated bound, huge, inf/NaN, empty, blank, unicode, NUL, wrong types, text).
Scenario files are drawn from `scenario.SCHEMA`, GPU and runtime profiles from a built-in profile with
keys replaced, both with unknown keys and tables mixed in. Valid values of the costly sizes (requests,
lengths, batch) are kept small so that a passing run takes milliseconds; their bounds are tested with
values beyond them. Examples per test: `EXAMPLES` in the default run (derandomised, so CI sees the same
cases every time), 10x as many and random under `-m slow`.
"""

import contextlib
import io
import itertools
import json
import math
import tomllib
import warnings
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_faults import ANALYTIC_SWEEP

from sdsl_sim import metrics, units
from sdsl_sim.sim import infer
from sdsl_sim.cli import main
from sdsl_sim.hardware import _GPU_KEYS, _RULES, _RUNTIME_KEYS, list_gpus, list_runtimes
from sdsl_sim.scenario import SCHEMA

EXAMPLES = {"flags": 60, "scenario": 150, "profile": 80, "sweep": 15}
PROFILES = files("sdsl_sim") / "hardware_profiles"

# ---------------------------------------------------------------- hostile values

HOSTILE_WORDS = [
    "", " ", "\t", "-1", "0", "-0", "0.0", "1e400", "-1e400", "inf", "-inf", "nan", "NaN", "1e23", "1e-300",
    "9007199254740993", str(2**63), str(2**64), "99999999999999999999999999", "0x10", "1_000", "1.5", "2.5e0",
    "abc", "é", "\u0663", "🙂", "a\x00b", "70B", "70X", "true", "[]", ",", ",,", "1,", "None", "../../etc/passwd",
    str(units.MAX_BATCH + 1), str(units.MAX_TOKENS + 1), str(units.MAX_REQUESTS + 1), str(units.MAX_GAMMA + 1),
    str(units.MAX_TP + 1), str(units.MAX_WORKERS + 1), str(units.MAX_SEED + 1), "1e16", "1e19",
]
HELP = ("-h", "--help", "--version")


def _not_help(text: str) -> bool:
    """argparse answers -h, --help, --version and their abbreviations with usage text and exit 0."""
    return not any(word.startswith(text) and len(text) > 2 or text == word for word in HELP) and text != "-h"


HOSTILE_TEXT = st.one_of(
    st.sampled_from(HOSTILE_WORDS),
    st.integers(-(10**25), 10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
).filter(_not_help)


def ints(low, high):
    return st.integers(low, high).map(str)


def reals(low, high):
    return st.floats(low, high).map(lambda x: f"{x:.6g}")


def choice(*values):
    return st.sampled_from(values)


SMALL_MODELS = choice("llama-3.2-1b", "llama-3.1-8b", "qwen2.5-0.5b", "opt-125m", "vicuna-68m")
TARGETS = choice("llama-3.1-70b", "llama-3.1-8b", "qwen2.5-7b", "opt-13b", "synthetic-70B")
DRAFTS = choice("llama-3.2-1b", "qwen2.5-0.5b", "opt-125m", "vicuna-68m")
SIZES = choice("70B", "8B", "13e9", "1.5T", "400M")
DRAFT_SIZES = choice("1B", "277M", "68M", "30M")
GPUS = st.sampled_from(list_gpus())
RUNTIMES = st.sampled_from(list_runtimes())
DTYPES = choice("bf16", "fp16", "fp8", "int8", "int4")
TP = choice("1", "2", "4", "8")
TRAIN = choice("1e12", "1e13", "3e12")
SCALE = reals(0.01, 100)
GAMMA = st.one_of(ints(0, 6), choice("auto", "adaptive", "heuristic"))

# command -> (words before the flags, {flag: strategy of a valid value}, required flags, flags taking no value)
COMMANDS = {
    "latency": (["latency"], {
        "--model": SMALL_MODELS, "--hardware": GPUS, "--batch": ints(1, 256), "--tokens": ints(1, 4096),
        "--context": ints(0, 32768), "--tp": TP, "--dtype": DTYPES, "--kv-dtype": DTYPES, "--runtime": RUNTIMES,
        "--bandwidth-scale": SCALE, "--flops-scale": SCALE, "--memory-scale": SCALE, "--link-scale": SCALE,
    }, ("--model", "--hardware")),
    "list": (["list"], {}, ()),
    "throughput": (["analytic", "throughput"], {
        "--alpha": reals(0.01, 0.99), "--target-params": SIZES, "--draft-params": DRAFT_SIZES, "--gamma": ints(0, 12),
    }, ("--alpha", "--target-params", "--draft-params")),
    "analytic-nstar": (["analytic", "nstar"], {"--target-params": SIZES, "--train-tokens": TRAIN}, ("--target-params",)),
    "fit-nstar": (["analytic", "fit-nstar"], {
        "--train-tokens": TRAIN, "--targets": st.lists(SIZES, min_size=1, max_size=4).map(",".join),
    }, ()),
    "nstar": (["nstar"], {
        "--target": TARGETS, "--target-params": SIZES, "--hardware": GPUS, "--tp": TP, "--draft-tp": choice("1", "2"),
        "--batch": ints(1, 64), "--context": ints(0, 8192), "--train-tokens": TRAIN, "--runtime": RUNTIMES,
        "--dtype": DTYPES, "--kv-dtype": DTYPES, "--bandwidth-scale": SCALE, "--flops-scale": SCALE,
    }, ("--hardware",)),
    "simulate": (["simulate"], {
        "--target": TARGETS, "--target-params": SIZES, "--draft": DRAFTS, "--draft-params": DRAFT_SIZES,
        "--hardware": choice("ideal", "h200-sxm", "mi300x"), "--tp": TP, "--draft-tp": choice("1", "2"),
        "--alpha": reals(0.05, 0.95),
        "--gamma": GAMMA, "--max-gamma": ints(1, 8), "--batch": ints(1, 8), "--context": ints(1, 512),
        "--output-tokens": ints(1, 48), "--requests": ints(1, 12), "--seed": ints(0, units.MAX_SEED),
        "--train-tokens": TRAIN, "--runtime": RUNTIMES, "--weight-dtype": DTYPES, "--kv-dtype": DTYPES,
    }, ("--hardware",)),
    "infer-alpha": (["infer-alpha"], {
        "--target": TARGETS, "--draft": DRAFTS, "--hardware": choice("ideal", "h200-sxm", "mi300x"),
        "--tp": TP, "--runtime": RUNTIMES, "--weight-dtype": DTYPES, "--gamma": ints(1, 8),
        "--measured-speedup": reals(0.5, 4), "--batch": ints(1, 8), "--context": ints(1, 512),
        "--output-tokens": ints(2, 256),
    }, ("--target", "--draft", "--hardware", "--gamma", "--measured-speedup")),
    "run": (["run"], {"--seed": ints(0, units.MAX_SEED)}, ()),
    "validate": (["validate"], {
        "--alphas": st.lists(reals(0.3, 0.9), min_size=1, max_size=2).map(",".join),
        "--ratios": st.lists(reals(2, 1000), min_size=1, max_size=2).map(",".join),
        "--min-output-tokens": ints(1000, 1200), "--tolerance": reals(0.001, 0.5), "--seed": ints(0, 2**32),
    }, ("--alphas", "--ratios", "--min-output-tokens")),
}
# validate runs a simulated grid (a few hundred ms a point): fewer examples.
FEWER = {"validate": 4}
# Flags of which a command takes exactly one: usually one is given, sometimes both or neither.
ONE_OF = {"nstar": [("--target", "--target-params")],
          "simulate": [("--target", "--target-params"), ("--draft", "--draft-params")]}
# Positional words a command may take, valid or hostile.
POSITIONAL = {"list": choice("hardware", "models", "runtimes"), "run": choice("default", "poisson-serving")}


@st.composite
def argv_for(draw, command: str) -> list[str]:
    words, flags, required = COMMANDS[command]
    argv = list(words)
    if command == "list" or command in POSITIONAL and draw(st.booleans()):
        hostile_word = draw(st.integers(0, 3)) == 0
        argv.append(draw(HOSTILE_TEXT.filter(lambda t: not t.startswith("-")) if hostile_word else POSITIONAL[command]))
    required, omitted = set(required), set()
    for group in ONE_OF.get(command, []):
        if draw(st.integers(0, 4)):
            pick = draw(st.sampled_from(group))
            required.add(pick)
            omitted.update(set(group) - {pick})
    # Half the examples are hostile in one or two flags (always given); in the rest every value is valid.
    hostile = draw(st.sets(st.sampled_from(list(flags)), min_size=1, max_size=2)) if flags and draw(st.booleans()) \
        else set()
    for flag, valid in flags.items():
        # A required flag is given but one time in 20, an optional one half the time.
        if flag in hostile or flag not in omitted and draw(st.integers(0, 19)) < (19 if flag in required else 10):
            argv += [flag, draw(HOSTILE_TEXT if flag in hostile else valid)]
    if draw(st.integers(0, 9)) == 0:
        argv += [draw(choice("--bogus", "--batch-size", "extra", "--json=1"))]
    return [*argv, "--json"] if command != "list" or draw(st.booleans()) else argv


# ---------------------------------------------------------------- the promise


@pytest.fixture(autouse=True)
def _in_a_scratch_folder(tmp_path_factory, monkeypatch):
    """A hostile relative path is a real folder name: let whatever it creates land in a scratch folder."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        rc = main(argv)
    assert not caught, f"{argv}: warnings {[str(w.message) for w in caught]}"
    return rc, out.getvalue(), err.getvalue()


def _may_be_undefined(key: str) -> bool:
    """A key that metrics.UNDEFINED (with its baseline_ twin) or sim.infer.UNDEFINED lists as possibly NaN."""
    return metrics.may_be_undefined(key) or key in infer.UNDEFINED or key.endswith("_ci95")


TEXT_KEYS = ("out", "page", "scenario")  # paths a user names, which may read "inf"


def check_numbers(value, key: str = "", path: str = "") -> None:
    """Every number finite (JSON has no inf or NaN: the CLI writes them as "inf" and null), unless the key
    is one metrics.UNDEFINED allows; latencies, rates and counts non-negative; rates in [0, 1]."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_numbers(v, k, f"{path}.{k}")
        return
    if isinstance(value, list):
        if key.endswith("_ci95") and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            assert value[0] <= value[1], f"{path} = {value}: an interval with lo > hi"
        for v in value:
            check_numbers(v, key, path)
        return
    if value is None or value in ("inf", "-inf") and key not in TEXT_KEYS:
        assert _may_be_undefined(key) or key in ("fp8_tflops", "fp4_tflops"), f"{path} = {value!r}: not a finite number"
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    assert math.isfinite(value), path
    if key.endswith(("_ms", "_s", "_per_s", "_params", "_tokens", "speedup", "tflops", "_gb_s", "_gb")) \
            or "_ms_" in key or key.endswith("_ci95"):
        assert value >= 0, f"{path} = {value}: negative"
    if key == "spec_decode_acceptance_rate":  # a percentage, as vLLM's
        assert 0 <= value <= 100, f"{path} = {value}: outside [0, 100]"
    elif key.endswith(("acceptance_rate", "slo_attainment", "acceptance_rates")) or key.startswith("alpha"):
        assert 0 <= value <= 1, f"{path} = {value}: outside [0, 1]"


def check_promise(argv: list[str]) -> int:
    rc, out, err = run_cli(argv)
    if rc == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{argv}: stderr {err!r}"
        assert out == "", f"{argv}: exit 2 after printing {out[:200]!r}"
        return rc
    assert rc == 0, f"{argv}: exit status {rc}, stderr {err!r}"
    assert err == "", f"{argv}: exit 0 with stderr {err!r}"
    if "--json" in argv:
        check_numbers(json.loads(out))
    return rc


def assert_both_outcomes(what: str, outcomes: list) -> None:
    """The fuzz is not vacuous: at least one example in 20 runs (exit 0) and one in 20 fails (exit 2)."""
    ran, failed = outcomes.count(0), outcomes.count(2)
    print(f"{what}: {len(outcomes)} examples, {ran} ran, {failed} refused")
    assert min(ran, failed) >= len(outcomes) / 20, f"{what}: {ran} ran and {failed} refused of {len(outcomes)}"


def fuzz_settings(kind: str, slow: bool = False, divide: int = 1):
    n = EXAMPLES[kind] * (10 if slow else 1) // divide
    return settings(max_examples=n, deadline=None, database=None, derandomize=not slow, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much])


def fuzz_test(kind: str, draw_argv, slow: bool, divide: int = 1):
    """A test of `check_promise` on argument lists drawn by `draw_argv(data, folder)` (`folder`: a fresh
    temporary directory per example), with the `kind`'s example count, that also fails when the drawn
    lists hardly ever run or hardly ever fail (`assert_both_outcomes`)."""

    def test(tmp_path, label=kind):
        outcomes, folders = [], itertools.count()

        @fuzz_settings(kind, slow, divide)
        @given(data=st.data())
        def check(data):
            folder = tmp_path / str(next(folders))
            folder.mkdir()
            outcomes.append(check_promise(draw_argv(data, folder)))

        check()
        assert_both_outcomes(label, outcomes)

    return test


def _flags_test(slow: bool):
    @pytest.mark.parametrize("command", list(COMMANDS))
    def test(tmp_path, command):
        draw = lambda data, folder: data.draw(argv_for(command))  # noqa: E731
        fuzz_test("flags", draw, slow, FEWER.get(command, 1))(tmp_path, command)

    return test


test_every_command_keeps_its_promise_on_random_flags = _flags_test(slow=False)
test_every_command_keeps_its_promise_on_random_flags_many = pytest.mark.slow(_flags_test(slow=True))


# ---------------------------------------------------------------- scenario files


def toml_value(value) -> str:
    """One TOML value (tomllib only reads); strings as JSON strings, which TOML's basic strings accept."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan" if math.isnan(value) else repr(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(tables: dict) -> str:
    lines = []
    for table, keys in tables.items():
        lines.append(f"[{json.dumps(table)}]")
        lines += [f"{json.dumps(key)} = {toml_value(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


HOSTILE_VALUES = st.one_of(
    st.sampled_from([-1, 0, -0.0, 1.5, 2**63, 10**30, 1e308, math.inf, -math.inf, math.nan, "", " ", "é", "\u0663",
                     True, False, [], {}, [1, 2], {"dist": "lognormal"}, {"dist": "uniform", "low": 5, "high": 1},
                     "70B", "1e400", units.MAX_TOKENS + 1, units.MAX_BATCH + 1, units.MAX_REQUESTS + 1]),
    st.integers(), st.floats(), st.text(max_size=6),
)


def length(high):
    return st.one_of(
        st.integers(1, high),
        st.builds(lambda a, b: {"dist": "uniform", "low": min(a, b), "high": max(a, b)}, st.integers(1, high),
                  st.integers(1, high)),
        st.builds(lambda m, s: {"dist": "lognormal", "median": m, "sigma": s, "max": high},
                  st.floats(1, high), st.floats(0.01, 2)),
        st.lists(st.integers(1, high), min_size=1, max_size=5).map(lambda v: {"dist": "empirical", "values": v}),
    )


# Valid values of the keys whose range is wider than a fast run allows, or that are names.
SCENARIO_VALID = {
    ("model", "target"): TARGETS, ("model", "draft"): DRAFTS,
    ("model", "target_params"): st.one_of(SIZES, st.floats(1e9, 2e11)),
    ("model", "draft_params"): st.one_of(DRAFT_SIZES, st.floats(3e7, 2e9)),
    ("model", "train_tokens"): st.one_of(TRAIN, st.floats(1e11, 1e14)),
    ("model", "weight_dtype"): DTYPES, ("model", "kv_dtype"): DTYPES,
    ("hardware", "name"): GPUS, ("hardware", "runtime"): RUNTIMES,
    ("hardware", "tp"): st.sampled_from([1, 2, 4, 8]), ("hardware", "draft_tp"): st.sampled_from([1, 2]),
    ("workload", "requests"): st.integers(1, 12), ("workload", "batch"): st.integers(1, 8),
    ("workload", "concurrency"): st.integers(1, 8), ("workload", "prompt_tokens"): length(256),
    ("workload", "output_tokens"): length(48), ("workload", "rate_per_s"): st.floats(0.1, 100),
    ("workload", "trace"): st.sampled_from(["missing.csv", "trace.csv"]),
    ("scheduler", "max_num_batched_tokens"): st.integers(8, 4096), ("scheduler", "block_size"): st.integers(1, 64),
    ("decoding", "gamma"): st.one_of(st.integers(0, 6), choice("auto", "adaptive", "heuristic")),
    ("decoding", "max_gamma"): st.integers(1, 8), ("decoding", "adaptive_horizon"): st.integers(1, 64),
    ("decoding", "alpha_concentration"): st.floats(0.5, 1e4),
    ("decoding", "prefix_probs"): st.lists(st.floats(0.05, 0.95), min_size=1, max_size=6).map(
        lambda v: sorted(v, reverse=True)),
    ("decoding", "disable_above_batch"): st.integers(1, 8),
    ("decoding", "tree"): st.sampled_from([[-1, -1, 0, 0, 1, 2], [-1, 0, 1], [[0], [1], [0, 0]], [-1, 5], [0]]),
    ("decoding", "tree_accept"): st.lists(st.lists(st.floats(0.05, 0.95), min_size=1, max_size=3), min_size=1,
                                          max_size=4),
    ("decoding", "acceptance_length"): st.floats(1.05, 4.0),
    ("decoding", "draft_vocab"): st.sampled_from([32000, 128256]),
    ("slo", "ttft_ms"): st.floats(1, 1e4), ("slo", "tpot_ms"): st.floats(1, 1e3),
    ("decoding", "acceptance_from"): st.sampled_from(["missing.prom", "metrics.prom"]),
    ("run", "metric_percentiles"): st.lists(st.one_of(st.integers(0, 100), st.floats(0, 100)), min_size=1,
                                            max_size=5, unique=True),
}


def from_range(rule: units.Range):
    if rule.integer:
        return st.integers(int(rule.low), int(min(rule.high, 2**62)))
    low = rule.low if rule.low is not None else -1e6
    high = rule.high if rule.high is not None else 1e6
    return st.floats(low, high, exclude_min=rule.low_open, exclude_max=rule.high_open)


def valid_value(table: str, key: str):
    if (table, key) in SCENARIO_VALID:
        return SCENARIO_VALID[table, key]
    types, rule, _ = SCHEMA[table][key]
    if isinstance(rule, units.Range):
        return from_range(rule)
    if isinstance(rule, tuple):
        return st.sampled_from(rule)
    if types is bool:
        return st.booleans()
    raise AssertionError(f"no valid-value strategy for {table}.{key}: add one to SCENARIO_VALID")


@st.composite
def scenario_tables(draw) -> dict:
    every = [(table, key) for table, keys in SCHEMA.items() for key in keys]
    # Half the files are hostile in one or two keys; in the rest every value given is valid.
    hostile = draw(st.sets(st.sampled_from(every), min_size=1, max_size=2)) if draw(st.booleans()) else set()
    tables = {}
    for table, keys in SCHEMA.items():
        chosen = {}
        for key in keys:
            if (table, key) in hostile:
                chosen[key] = draw(HOSTILE_VALUES)
            elif draw(st.integers(0, 6)) == 0:
                chosen[key] = draw(valid_value(table, key))
        if chosen or draw(st.booleans()):
            tables[table] = chosen
    if draw(st.integers(0, 14)) == 0:
        tables.setdefault("workload", {})["batchsize"] = 4
    if draw(st.integers(0, 14)) == 0:
        tables["hardwares"] = {"name": "ideal"}
    return tables


def scenario_argv(data, folder: Path) -> list[str]:
    tables = data.draw(scenario_tables())
    tables.setdefault("run", {}).setdefault("method", data.draw(choice("simulated", "analytic")))
    (folder / "trace.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0,16,8\n0.5,32,4\n1.0,8,12\n")
    (folder / "metrics.prom").write_text('vllm:spec_decode_num_drafts_total 100\n'
                                         'vllm:spec_decode_num_accepted_tokens_per_pos_total{position="0"} 60\n'
                                         'vllm:spec_decode_num_accepted_tokens_per_pos_total{position="1"} 30\n')
    path = folder / "s.toml"
    path.write_text(toml_document(tables))
    return ["run", str(path), "--json"]


test_scenario_files_keep_the_promise = fuzz_test("scenario", scenario_argv, slow=False)
test_scenario_files_keep_the_promise_many = pytest.mark.slow(fuzz_test("scenario", scenario_argv, slow=True))


# ---------------------------------------------------------------- GPU and runtime profiles


def profile_value(rule: str, typ):
    if rule is None:
        return st.text(min_size=1, max_size=10) if typ is str else st.booleans()
    r = _RULES[rule]
    # A real GPU's numbers sit far inside the loader's bounds; near the ends pass times are still finite.
    return from_range(r) if r.integer else st.floats(r.low, r.high, exclude_min=r.low_open,
                                                     exclude_max=r.high_open)


@st.composite
def profile_document(draw, base: dict, keys: dict) -> str:
    table = dict(base)
    for key in draw(st.lists(st.sampled_from(list(keys)), min_size=1, max_size=3, unique=True)):
        typ, rule, _, _ = keys[key]
        roll = draw(st.integers(0, 4))
        if roll == 0:
            table.pop(key, None)
        elif roll == 1:
            table[key] = draw(HOSTILE_VALUES)
        else:
            table[key] = draw(profile_value(rule, typ))
    if draw(st.integers(0, 9)) == 0:
        table["hbm_bw"] = 3.0
    return "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()) + "\n"


GPU_PROFILE = tomllib.loads((PROFILES / "h100-sxm.toml").read_text())
RUNTIME_PROFILE = tomllib.loads((PROFILES / "runtimes" / "default.toml").read_text())


def profile_argv(data, folder: Path) -> list[str]:
    which = data.draw(choice("gpu", "runtime"))
    keys, base = (_GPU_KEYS, GPU_PROFILE) if which == "gpu" else (_RUNTIME_KEYS, RUNTIME_PROFILE)
    path = folder / f"{which}.toml"
    path.write_text(data.draw(profile_document(base, keys)))
    argv = ["latency", "--model", "llama-3.1-8b", "--batch", data.draw(ints(1, 64)), "--context",
            data.draw(ints(0, 8192)), "--json"]
    return argv + (["--hardware", str(path)] if which == "gpu" else ["--runtime", str(path), "--hardware", "h100-sxm"])


test_profiles_keep_the_promise = fuzz_test("profile", profile_argv, slow=False)
test_profiles_keep_the_promise_many = pytest.mark.slow(fuzz_test("profile", profile_argv, slow=True))


# ---------------------------------------------------------------- sweeps




def sweep_argv(data, folder: Path) -> list[str]:
    path = folder / "two-points.toml"
    path.write_text(ANALYTIC_SWEEP)
    # The file, --out, --workers, --executor; --scheduler only ever hostile (a valid one needs a cluster).
    parts = {"FILE": st.just(str(path)), "--out": st.just(str(folder / "out")), "--workers": choice("1", "2"),
             "--executor": st.just("local")}
    hostile = data.draw(st.sets(st.sampled_from([*parts, "--scheduler"]), min_size=1, max_size=2)) \
        if data.draw(st.booleans()) else set()
    argv = ["sweep", data.draw(HOSTILE_TEXT if "FILE" in hostile else parts["FILE"]), "--no-progress", "--json"]
    for flag in ["--out", "--workers", "--executor", "--scheduler"]:
        if flag == "--out" and flag in hostile:  # inside the example's folder: a hostile name is a folder it makes
            argv += [flag, f"{folder}/{data.draw(HOSTILE_TEXT)}"]
        elif flag in hostile:
            argv += [flag, data.draw(HOSTILE_TEXT)]
        elif flag == "--out" or flag != "--scheduler" and data.draw(st.booleans()):
            argv += [flag, data.draw(parts[flag])]
    return argv


test_sweep_keeps_the_promise = fuzz_test("sweep", sweep_argv, slow=False)
test_sweep_keeps_the_promise_many = pytest.mark.slow(fuzz_test("sweep", sweep_argv, slow=True))


def test_report_with_hostile_names_and_flags_keeps_the_promise(tmp_path):
    """Only hostile page names: a valid one would run a whole study."""

    @fuzz_settings("sweep")
    @given(name=HOSTILE_TEXT, workers=st.one_of(st.just("1"), HOSTILE_TEXT), out=st.one_of(st.just("rep"), HOSTILE_TEXT))
    def check(name, workers, out):
        assert check_promise(["report", name, "--workers", workers, "--out", f"{tmp_path}/{out}", "--json"]) == 2

    check()
