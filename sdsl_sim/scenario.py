"""Scenario files: schema, validation, overrides, and evaluating a scenario into one flat row of metrics.

A scenario is a TOML file of five tables; every key is optional and has the default shown. A sweep axis
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
    [workload]
    arrival = "static"        # "static" (all at t = 0), "poisson" (rate_per_s), "closed" (concurrency)
    requests = 16             # requests in the run
    batch = 8                 # maximum running batch (continuous batching; KV memory may admit fewer)
    prompt_tokens = 1024      # prompt length = context at the start of decoding (alias: context)
    output_tokens = 256       # tokens generated per request (the first comes from the prefill)
    rate_per_s = 1.0          # poisson arrival rate, requests per second
    concurrency = batch       # closed loop: requests in flight
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

`evaluate(scenario, seed)` returns one flat dict of scalars; see `evaluate`'s docstring.
"""

import copy
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from .analytic import DEFAULT_TRAIN_TOKENS
from .errors import InputError
from .tomlfile import read_toml
from .units import parse_count

DEFAULT_SCENARIO = "default"
_NUM = (int, float)
_POS = ("> 0", lambda v: v > 0)
_COUNT = ("an integer >= 1", lambda v: v >= 1)
_UNIT = ("in the open interval (0, 1)", lambda v: 0 < v < 1)

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
    },
    "workload": {
        "arrival": (str, ("static", "poisson", "closed"), "static"),
        "requests": (int, _COUNT, 16),
        "batch": (int, _COUNT, 8),
        "prompt_tokens": (int, _COUNT, 1024),
        "output_tokens": (int, _COUNT, 256),
        "rate_per_s": (_NUM, _POS, 1.0),
        "concurrency": (int, _COUNT, None),
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
    names = {int: "an integer", float: "a number", str: "a string", list: "a list"}
    return " or ".join(names[t] for t in types)


def _check_value(source, table, key, value):
    types, rule, _ = SCHEMA[table][key]
    where = f"{source}: key '{table}.{key}'"
    ok_types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) or not isinstance(value, ok_types):
        raise InputError(f"{where} = {value!r}; expected {_type_name(types)}")
    if isinstance(rule, tuple) and isinstance(rule[0], str) and callable(rule[1]):
        if not rule[1](value):
            raise InputError(f"{where} = {value!r}; expected {rule[0]}")
    elif isinstance(rule, tuple) and value not in rule:
        raise InputError(f"{where} = {value!r}; expected one of {', '.join(map(repr, rule))}")


def scenario_from_dict(data: dict, source: str = "<dict>") -> Scenario:
    """Validate a nested scenario dict (as read from TOML); errors name `source` and the key."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a table of {', '.join(SCHEMA)}")
    config = {table: {key: copy.deepcopy(spec[2]) for key, spec in keys.items()} for table, keys in SCHEMA.items()}
    for table, values in data.items():
        if table not in SCHEMA:
            raise InputError(f"{source}: table '{table}' unknown; expected one of {', '.join(SCHEMA)}")
        if not isinstance(values, dict):
            raise InputError(f"{source}: '{table}' must be a table of keys; got {values!r}")
        for key, value in values.items():
            key = _ALIASES.get((table, key), key)
            if key not in SCHEMA[table]:
                raise InputError(f"{source}: key '{table}.{key}' unknown; expected one of "
                                 f"{', '.join(SCHEMA[table])}")
            _check_value(source, table, key, value)
            config[table][key] = value
    _check_relations(config, data, source)
    return Scenario(config=config, source=source)


def _check_relations(config, data, source):
    model, dec = config["model"], config["decoding"]
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


@dataclass(frozen=True)
class Resolved:
    """What a scenario names, loaded: models.Model target and draft (None when not asked for), the
    hardware.GPU with the what-if scales applied, and the hardware.Runtime."""

    target: object
    draft: object
    gpu: object
    runtime: object


def resolve(scenario: Scenario, draft: bool = True) -> Resolved:
    """Load the scenario's models, GPU and runtime and check that one request fits in memory, so that a
    bad name, dtype or tp is reported before anything runs, naming the source and the key."""
    from .costs import check_memory, check_tp
    from .hardware import load_gpu, load_runtime, scale_gpu
    from .models import dtype_bytes, load_model, synthetic_model

    cfg, source = scenario.config, scenario.source

    def load(key, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            raise InputError(f"{source}: key '{key}': {exc}") from None

    m, hw, wl = cfg["model"], cfg["hardware"], cfg["workload"]
    models = {}
    for role in ("target", "draft") if draft else ("target",):
        params = m[f"{role}_params"]
        models[role] = (load(f"model.{role}_params", synthetic_model, params) if params is not None
                        else load(f"model.{role}", load_model, m[role]))
    if draft and models["draft"].params >= models["target"].params:
        raise InputError(f"{source}: draft {models['draft'].name} ({models['draft'].params:.3g} params) must be "
                         f"smaller than target {models['target'].name} ({models['target'].params:.3g} params)")
    for key in ("weight_dtype", "kv_dtype"):
        load(f"model.{key}", dtype_bytes, m[key], key.replace("_", " "))
    gpu = scale_gpu(load("hardware.name", load_gpu, hw["name"]), bandwidth=hw["bandwidth_scale"],
                    flops=hw["flops_scale"], memory=hw["memory_scale"], link=hw["link_scale"])
    runtime = load("hardware.runtime", load_runtime, hw["runtime"] or gpu.default_runtime)
    if draft:
        load("hardware.draft_tp", check_tp, models["draft"], hw["draft_tp"])
    load("hardware.tp", check_memory, list(models.values()), gpu, batch=1,
         context=wl["prompt_tokens"] + wl["output_tokens"], tp=hw["tp"], weight_dtype=m["weight_dtype"],
         kv_dtype=m["kv_dtype"])
    return Resolved(models["target"], models.get("draft"), gpu, runtime)


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
    return scenario_from_dict(read_toml(path, label), source=label)


def evaluate(scenario: Scenario, seed: int) -> dict:
    """Evaluate a scenario into one flat dict of scalar metrics.

    Keys: method ("simulated" or "analytic"), alpha, gamma (the most used), mean_gamma, cost_ratio,
    tpot_ms, tpot_ms_ci95_lo/hi, throughput_tokens_per_s, speedup_vs_autoregressive (+ _ci95_lo/hi),
    mean_tokens_per_iteration, acceptance_rate, draft_acceptance_rate, ttft_ms, e2e_ms, itl_ms and their
    _p50/_p90/_p99, output_tokens, iterations, baseline_iterations, baseline_tpot_ms,
    baseline_throughput_tokens_per_s, time_draft_s, time_verify_s, time_prefill_s, predicted_tpot_ms
    (the expected-value prediction), sim_wall_s. Analytic rows carry NaN where only a simulation knows.
    """
    from .sim.run import run_scenario

    return run_scenario(scenario, seed).row()
