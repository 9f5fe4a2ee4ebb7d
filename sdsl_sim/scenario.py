"""Scenario files: schema and validation (nothing here loads models or runs anything; `sim.setup`
turns a validated scenario into a runnable one and `sim.run.evaluate` evaluates it into one row).

A scenario is a TOML file of up to seven tables; every key is optional and has the default shown. A sweep axis
names a key as "table.key" (e.g. "workload.batch"); `sweep.prepare_scenario_point` applies such keys.

    [run]
    method = "simulated"      # "simulated" (simpy run + its autoregressive baseline) or "analytic"
                              #   (expected-value prediction from the same pass costs, no randomness)
    seed = 0                  # used by `sdsl-sim run` when --seed is not given
    [model]
    target = "llama-3.1-70b"  # catalog name (or "synthetic-70B"); or target_params = 70e9 / "70B" (synthetic)
    draft = "llama-3.2-1b"    # catalog name; or draft_params = 277e6 / "277M" (synthetic)
    train_tokens = 1e13       # D of the SDSL alpha law, used when [decoding] alpha is absent
    weight_dtype = "bf16"     # bf16 | fp16 | fp8 | int8 | int4
    kv_dtype = "bf16"
    [hardware]
    name = "h100-sxm"         # a profile in hardware_profiles/ ("ideal": weight bytes / bandwidth) or a path
    tp = 4                    # GPUs of the target (tensor parallel); the draft shares them
    draft_tp = 1              # GPUs of the draft: a small draft runs unsharded on one of them (vLLM's
                              #   speculative_draft_tensor_parallel_size = 1); all-reduces would dominate it
    runtime = GPU default     # host-side runtime profile: "default", "eager", "none" or a path
    bandwidth_scale = 1.0     # what-if factors on the GPU's peaks (> 0)
    flops_scale = 1.0
    memory_scale = 1.0
    link_scale = 1.0
    memory_reserve_fraction = (profile)  # memory kept free per GPU, in [0, 1): vLLM's
                              #   gpu_memory_utilization 0.9 = reserve 0.1 (of the driver-reported total)
    [workload]
    arrival = "static"        # "static" (all at t = 0), "poisson" (rate_per_s), "closed" (concurrency),
                              #   "trace" (instants and lengths from `trace`)
    requests = 16             # requests in the run (with a trace: default its length, at most its length)
    batch = 8                 # maximum running batch (continuous batching; KV memory may admit fewer)
    prompt_tokens = 1024      # prompt length (alias: context): an integer or a distribution table,
                              #   {dist = "uniform", low = L, high = H}, {dist = "lognormal", median = M,
                              #   sigma = S, max = X}, {dist = "empirical", values = [...]}
    output_tokens = 256       # tokens generated per request (the first comes from the prefill); same forms
    rate_per_s = 1.0          # poisson arrival rate, requests per second
    concurrency = batch       # closed loop: requests in flight
    trace = (none)            # CSV or JSONL, relative to this file: arrival_s, prompt_tokens, output_tokens
                              #   (or the Azure trace's TIMESTAMP, ContextTokens, GeneratedTokens)
    [scheduler]
    chunked_prefill = true    # prefill in chunks mixed into decode steps (vLLM V1); false: a prefill
                              #   step of its own stalls the running batch
    max_num_batched_tokens = 2048  # token budget of one step (chunked prefill); a speculating sequence
                              #   counts gamma + 1 tokens; at least workload.batch
    kv_allocation = "paged"   # "paged": blocks as sequences grow, recompute preemption when none is free;
                              #   "reserve": a request's full prompt + output reserved at admission
    block_size = 16           # tokens per KV block (paged)
    [decoding]
    gamma = "auto"            # draft tokens per iteration: an integer >= 0 (0 = plain decoding),
                              #   "auto" (analytic optimum for the current pass costs) or "adaptive"
    max_gamma = 16            # upper bound for "auto" and "adaptive"
    alpha = (SDSL law)        # per-token acceptance in (0, 1); absent: alpha_from_sizes(N, M, train_tokens)
    acceptance = "iid"        # "iid", "beta" (per-request alpha ~ Beta around alpha) or "profile"
    alpha_concentration = 20.0  # Beta concentration k (variance alpha (1 - alpha) / (k + 1))
    prefix_probs = []         # profile: r_i = P(first i drafts accepted), non-increasing, each in (0, 1)
    adaptive_weight = 0.1     # EWMA weight of each block's observed acceptance ("adaptive")
    adaptive_horizon = 16     # iterations between "adaptive" decisions
    disable_above_batch = (none)  # plain decoding while more sequences than this decode (vLLM V0's
                              #   speculative_disable_by_batch_size)
    [slo]                     # service-level objectives for goodput (DistServe): requests/s meeting both
    ttft_ms = (none)          # time to first token, ms
    tpot_ms = (none)          # time per output token, ms

"""

import copy
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from .analytic import DEFAULT_TRAIN_TOKENS
from .errors import InputError
from .tomlfile import read_toml
from .units import parse_count
from .workload import parse_length

DEFAULT_SCENARIO = "default"
_NUM = (int, float)
_POS = ("> 0", lambda v: v > 0)
_COUNT = ("an integer >= 1", lambda v: v >= 1)
_UNIT = ("in the open interval (0, 1)", lambda v: 0 < v < 1)
_RESERVE = ("a fraction in [0, 1)", lambda v: 0 <= v < 1)
_LENGTH = (int, dict)  # an integer or a distribution table, checked by workload.parse_length

# table -> key -> (accepted types, (description of range, check) or allowed strings, default)
SCHEMA = {
    "run": {
        "method": (str, ("simulated", "analytic"), "simulated"),
        "seed": (int, ("an integer >= 0", lambda v: v >= 0), 0),
    },
    "model": {
        "target": (str, None, "llama-3.1-70b"),
        "target_params": ((int, float, str), None, None),
        "draft": (str, None, "llama-3.2-1b"),
        "draft_params": ((int, float, str), None, None),
        "train_tokens": ((int, float, str), None, DEFAULT_TRAIN_TOKENS),
        "weight_dtype": (str, None, "bf16"),
        "kv_dtype": (str, None, "bf16"),
    },
    "hardware": {
        "name": (str, None, "h100-sxm"),
        "tp": (int, _COUNT, 4),
        "draft_tp": (int, _COUNT, 1),
        "runtime": (str, None, None),
        "bandwidth_scale": (_NUM, _POS, 1.0),
        "flops_scale": (_NUM, _POS, 1.0),
        "memory_scale": (_NUM, _POS, 1.0),
        "link_scale": (_NUM, _POS, 1.0),
        "memory_reserve_fraction": (_NUM, _RESERVE, None),
    },
    "workload": {
        "arrival": (str, ("static", "poisson", "closed", "trace"), "static"),
        "requests": (int, _COUNT, None),
        "batch": (int, _COUNT, 8),
        "prompt_tokens": (_LENGTH, None, 1024),
        "output_tokens": (_LENGTH, None, 256),
        "rate_per_s": (_NUM, _POS, 1.0),
        "concurrency": (int, _COUNT, None),
        "trace": (str, None, None),
    },
    "scheduler": {
        "chunked_prefill": (bool, None, True),
        "max_num_batched_tokens": (int, _COUNT, 2048),
        "kv_allocation": (str, ("paged", "reserve"), "paged"),
        "block_size": (int, _COUNT, 16),
    },
    "decoding": {
        "gamma": ((int, str), None, "auto"),
        "max_gamma": (int, _COUNT, 16),
        "alpha": (_NUM, _UNIT, None),
        "acceptance": (str, ("iid", "beta", "profile"), "iid"),
        "alpha_concentration": (_NUM, _POS, 20.0),
        "prefix_probs": (list, None, []),
        "adaptive_weight": (_NUM, ("in (0, 1]", lambda v: 0 < v <= 1), 0.1),
        "adaptive_horizon": (int, _COUNT, 16),
        "disable_above_batch": (int, _COUNT, None),
    },
    "slo": {
        "ttft_ms": (_NUM, _POS, None),
        "tpot_ms": (_NUM, _POS, None),
    },
}
_ALIASES = {("workload", "context"): "prompt_tokens"}


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: `config` is the full nested dict (every key, defaults filled in)."""

    config: dict
    source: str = "<dict>"


def _type_name(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", bool: "true or false",
             dict: "a table"}
    return " or ".join(names[t] for t in types)


def _check_value(source, table, key, value):
    types, rule, _ = SCHEMA[table][key]
    where = f"{source}: key '{table}.{key}'"
    ok_types = types if isinstance(types, tuple) else (types,)
    if (isinstance(value, bool) and bool not in ok_types) or not isinstance(value, ok_types):
        raise InputError(f"{where} = {value!r}; expected {_type_name(types)}")
    if isinstance(rule, tuple) and isinstance(rule[0], str) and callable(rule[1]):
        if not rule[1](value):
            raise InputError(f"{where} = {value!r}; expected {rule[0]}")
    elif isinstance(rule, tuple) and value not in rule:
        raise InputError(f"{where} = {value!r}; expected one of {', '.join(map(repr, rule))}")


def scenario_from_dict(data: dict, source: str = "<dict>", base_dir=None) -> Scenario:
    """Validate a nested scenario dict (as read from TOML); errors name `source` and the key.
    base_dir: the folder a relative `workload.trace` path is read from (default: the working folder);
    the config holds the trace's absolute path."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a table of {', '.join(SCHEMA)}")
    config = {table: {key: copy.deepcopy(spec[2]) for key, spec in keys.items()} for table, keys in SCHEMA.items()}
    for table, values in data.items():
        if table not in SCHEMA:
            raise InputError(f"{source}: table '{table}' unknown; expected one of {', '.join(SCHEMA)}")
        if not isinstance(values, dict):
            raise InputError(f"{source}: '{table}' must be a table of keys; got {values!r}")
        for key, value in values.items():
            alias = key
            key = _ALIASES.get((table, key), key)
            if alias != key and key in values:
                raise InputError(f"{source}: keys '{table}.{alias}' and '{table}.{key}' both given; "
                                 "expected one (they are the same key)")
            if key not in SCHEMA[table]:
                raise InputError(f"{source}: key '{table}.{key}' unknown; expected one of "
                                 f"{', '.join(SCHEMA[table])}")
            _check_value(source, table, key, value)
            config[table][key] = value
    _check_relations(config, data, source, base_dir)
    return Scenario(config=config, source=source)


def _check_relations(config, data, source, base_dir):
    model, dec, wl = config["model"], config["decoding"], config["workload"]
    for role in ("target", "draft"):
        if role in data.get("model", {}) and f"{role}_params" in data.get("model", {}):
            raise InputError(f"{source}: keys 'model.{role}' and 'model.{role}_params' both given; "
                             f"expected one (a catalog name or a synthetic size)")
        if model[f"{role}_params"] is not None:
            model[f"{role}_params"] = parse_count(model[f"{role}_params"], f"{source}: key 'model.{role}_params'")
            if role not in data.get("model", {}):
                model[role] = None  # the size overrides the default catalog model
    model["train_tokens"] = parse_count(model["train_tokens"], f"{source}: key 'model.train_tokens'")
    gamma = dec["gamma"]
    if isinstance(gamma, str) and gamma not in ("auto", "adaptive") or isinstance(gamma, int) and gamma < 0:
        raise InputError(f"{source}: key 'decoding.gamma' = {gamma!r}; expected an integer >= 0, 'auto' or 'adaptive'")
    if dec["acceptance"] == "profile":
        r = dec["prefix_probs"]
        if not r or not all(isinstance(v, _NUM) and not isinstance(v, bool) and 0 < v < 1 for v in r) \
                or any(b > a for a, b in zip(r, r[1:])):
            raise InputError(f"{source}: key 'decoding.prefix_probs' = {r!r}; expected a non-empty, "
                             "non-increasing list of probabilities in (0, 1)")
        dec["prefix_probs"] = list(map(float, r))
    for key in ("prompt_tokens", "output_tokens"):
        parse_length(wl[key], f"{source}: key 'workload.{key}'")
    given = data.get("workload", {})
    if (wl["arrival"] == "trace") != (wl["trace"] is not None):
        raise InputError(f"{source}: key 'workload.trace' = {wl['trace']!r} with workload.arrival = "
                         f"{wl['arrival']!r}; expected a trace path exactly when arrival = 'trace'")
    if wl["trace"] is not None:
        if not wl["trace"].strip():
            raise InputError(f"{source}: key 'workload.trace' = ''; expected a CSV or JSONL path")
        for key in ("prompt_tokens", "output_tokens", "rate_per_s", "concurrency"):
            # A sweep point repeats every default, so only a value other than the default conflicts.
            if key in given and given[key] != SCHEMA["workload"][key][2]:
                raise InputError(f"{source}: key 'workload.{key}' given with a trace; expected the trace's own "
                                 "lengths and instants (remove the key)")
        wl["trace"] = str((Path(base_dir) if base_dir is not None else Path.cwd()).joinpath(wl["trace"]).resolve())
    elif wl["requests"] is None:
        wl["requests"] = 16
    sched = config["scheduler"]
    if sched["chunked_prefill"] and sched["max_num_batched_tokens"] < wl["batch"]:
        raise InputError(f"{source}: key 'scheduler.max_num_batched_tokens' = {sched['max_num_batched_tokens']}; "
                         f"expected at least workload.batch = {wl['batch']} (every running sequence needs a "
                         "token of the step's budget, as vLLM requires)")


def scenarios_dir() -> Path:
    """The embedded scenarios/ folder (scenario and sweep files shipped with the package)."""
    return Path(str(files("sdsl_sim") / "scenarios"))


def load_scenario(path_or_name: str | None = None) -> Scenario:
    """Read and validate a scenario: a TOML path, the name of an embedded one, or None for the default."""
    text = DEFAULT_SCENARIO if path_or_name is None else str(path_or_name)
    path = Path(text)
    if not (text.endswith(".toml") or "/" in text) or not path.is_file():
        embedded = scenarios_dir() / f"{text.removesuffix('.toml')}.toml"
        if not embedded.is_file():
            names = sorted(p.stem for p in scenarios_dir().glob("*.toml"))
            raise InputError(f"scenario {text!r} not found; expected a TOML file or one of {', '.join(names)}")
        path, label = embedded, f"scenarios/{embedded.name}"
    else:
        label = text
    return scenario_from_dict(read_toml(path, label), source=label, base_dir=path.parent)
