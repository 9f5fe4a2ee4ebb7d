"""Scenario files: schema and validation (nothing here loads models or runs anything; `sim.setup`
turns a validated scenario into a runnable one and `sim.run.evaluate` evaluates it into one row).

A scenario is a TOML file of up to seven tables; every key is optional and has the default shown. A sweep axis
names a key as "table.key" (e.g. "workload.batch"); `sweep.prepare_scenario_point` applies such keys.

    [run]
    method = "simulated"      # "simulated" (simpy run + its autoregressive baseline) or "analytic"
                              #   (expected-value prediction from the same pass costs, no randomness)
    seed = 0                  # used by `sdsl-sim run` when --seed is not given; in [0, MAX_SEED = 2**63 - 1]
    metric_percentiles = [50, 90, 99]  # the pNN_ latency keys of the result (vLLM's --metric-percentiles);
                              #   at most 20 distinct values in [0, 100]
    [model]
    target = "llama-3.1-70b"  # catalog name (or "synthetic-70B"), or a model file: a Hugging Face config.json
                              #   (or a folder holding one, written with a slash: "./Llama-3.1-8B")
                              #   or a .toml of one catalog entry's keys, relative to this file; or
                              #   target_params = 70e9 / "70B" (synthetic, in [1, MAX_PARAMS = 1e15])
    draft = "llama-3.2-1b"    # the same forms; or draft_params = 277e6 / "277M" (synthetic)
    train_tokens = 1e13       # D of the SDSL alpha law, used when [decoding] alpha is absent; in
                              #   [1, MAX_TRAIN_TOKENS = 1e18]
    weight_dtype = "bf16"     # bf16 | fp16 | fp8 | int8 | int4 | fp4 (NVFP4) | mxfp4
    kv_dtype = "bf16"
    [hardware]
    name = "h100-sxm"         # a profile in hardware_profiles/ ("ideal": weight bytes / bandwidth) or a path
    tp = fewest that fit      # GPUs of the target (tensor parallel), in [1, MAX_TP = 1024]; default: the fewest
                              #   (a power of two) whose memory holds the weights and a full batch at its
                              #   longest (`costs.fewest_tp`; 2 for the default 70B pair, batch 8, on H100s)
    draft_tp = runtime's      # GPUs of the draft; default: the runtime profile's `draft_tp` policy, 1 for
                              #   every engine but vllm-v0 (a small draft runs unsharded on one GPU, vLLM's
                              #   speculative_draft_tensor_parallel_size = 1; all-reduces would dominate it)
    runtime = GPU default     # engine runtime profile: "vllm", "vllm-v0", "sglang", "trtllm",
                              #   "hf-transformers", "gpt-fast", "default", "eager", "none" or a path
    bandwidth_scale = 1.0     # what-if factors on the GPU's peaks, in [0.001, 1000]
    flops_scale = 1.0
    memory_scale = 1.0
    link_scale = 1.0
    memory_reserve_fraction = (profile)  # memory kept free per GPU, in [0, 1): vLLM's
                              #   gpu_memory_utilization 0.9 = reserve 0.1 (of the driver-reported total);
                              #   unset, the runtime's KV pool (kv_memory_fraction) or else the GPU profile's
    [workload]
    arrival = "static"        # "static" (all at t = 0), "poisson" (rate_per_s), "closed" (concurrency),
                              #   "trace" (instants and lengths from `trace`)
    requests = 16             # requests in the run (with a trace: default its length, at most its length),
                              #   in [1, MAX_REQUESTS = 10,000,000]
    batch = 8                 # maximum running batch (continuous batching; KV memory may admit fewer), in
                              #   [1, MAX_BATCH = 65,536]
    prompt_tokens = 1024      # prompt length (alias: context): an integer or a distribution table,
                              #   {dist = "uniform", low = L, high = H}, {dist = "lognormal", median = M,
                              #   sigma = S, max = X}, {dist = "empirical", values = [...]}
    output_tokens = 256       # tokens generated per request (the first comes from the prefill); same forms;
                              #   every length in [1, MAX_TOKENS = 10,000,000]
    rate_per_s = 1.0          # poisson arrival rate, requests per second, in [1e-6, MAX_RATE_PER_S = 1e9]
    concurrency = batch       # closed loop: requests in flight, in [1, MAX_REQUESTS]
    trace = (none)            # CSV or JSONL, relative to this file: arrival_s, prompt_tokens, output_tokens
                              #   (or the Azure trace's TIMESTAMP, ContextTokens, GeneratedTokens)
    [scheduler]               # each key absent: the runtime profile's value (engine defaults; the
                              #   generic profiles: true, 2048, "paged", 16)
    chunked_prefill = true    # prefill in chunks mixed into decode steps (vLLM V1); false: a prefill
                              #   step of its own stalls the running batch
    max_num_batched_tokens = 2048  # token budget of one step (chunked prefill); a speculating sequence
                              #   counts gamma + 1 tokens; at least workload.batch, at most MAX_TOKENS
    kv_allocation = "paged"   # "paged": blocks as sequences grow, recompute preemption when none is free;
                              #   "reserve": a request's full prompt + output reserved at admission
    block_size = 16           # tokens per KV block (paged), in [1, MAX_TOKENS]
    [decoding]
    gamma = "auto"            # draft tokens per iteration: an integer >= 0 (0 = plain decoding),
                              #   "auto" (analytic optimum for the current pass costs), "adaptive" or
                              #   "heuristic" (HF transformers: start at 5, +2 after a fully accepted
                              #   iteration, -1 otherwise); an integer is at most MAX_GAMMA = 64
    max_gamma = 16            # upper bound for the policies, in [1, MAX_GAMMA]
    alpha = (SDSL law)        # per-token acceptance in (0, 1); absent: alpha_from_sizes(N, M, train_tokens)
    acceptance = "iid"        # "iid", "beta" (per-request alpha ~ Beta around alpha) or "profile"
    alpha_concentration = 20.0  # Beta concentration k (variance alpha (1 - alpha) / (k + 1)), in [1e-6, 1e12]
    prefix_probs = []         # profile: r_i = P(first i drafts accepted), non-increasing, each in (0, 1);
                              #   at most MAX_GAMMA entries
    acceptance_from = (none)  # a vLLM or SGLang Prometheus /metrics dump, relative to this file, read into
                              #   acceptance = "profile" and its prefix_probs (`engine_metrics.py`); not with
                              #   acceptance, prefix_probs, alpha, acceptance_length or a tree. Its k positions
                              #   bound the lookahead: an integer gamma and max_gamma at most k, max_gamma
                              #   default k. The config then holds the profile, not the path
    adaptive_weight = 0.1     # EWMA weight of each block's observed acceptance ("adaptive")
    adaptive_horizon = 16     # iterations between "adaptive" decisions, in [1, MAX_ITERATIONS = 1,000,000]
    disable_above_batch = (none)  # plain decoding while more sequences than this decode (vLLM V0's
                              #   speculative_disable_by_batch_size), in [1, MAX_BATCH]
    method = "draft-model"    # what drafts (`speculation.py`): "draft-model" (model.draft), "eagle"
                              #   (an EAGLE-3 head), "medusa" (heads), "mtp" (DeepSeek-V3 modules) or
                              #   "ngram" (prompt lookup on the host); all but draft-model need the
                              #   acceptance given (alpha, a profile, tree_accept or acceptance_length):
                              #   the SDSL law sizes draft models only
    tree = (none)             # a token tree: parent indices ([-1, -1, 0, ...], -1 a child of the root),
                              #   Medusa/EAGLE choices ([[0], [1], [0, 0], ...]) or {branching = [b1, ...]}
                              #   (depth = its length); at most MAX_TREE_NODES nodes and MAX_GAMMA deep.
                              #   gamma is then the depth the tree is cut at: "auto" or an integer <= its
                              #   depth (max_gamma = the depth); not with "ngram"
    tree_accept = (none)      # per depth, per sibling rank: [[q(d1, r1), q(d1, r2), ...], [...], ...]
    tree_accept_kind = "conditional"  # "conditional" (q: given the parent accepted and the better-ranked
                              #   siblings rejected) or "marginal" (Sequoia's p = q prod_{j<r} (1 - q_j))
    acceptance_length = (none)  # mean tokens per iteration an engine reported (bonus token included,
                              #   vLLM's mean acceptance length): a chain converts it to the i.i.d. alpha
                              #   giving it at decoding.gamma (an integer: the k it was measured at); a
                              #   tree to the conditional profile q(d, r) = a / r scaled to give it
    draft_vocab = (none)      # eagle: the head's reduced LM-head vocabulary (EAGLE-3: 32000); default the
                              #   target's, in [1, MAX_DIM]
    trigger_rate = 1.0        # ngram: the share of iterations whose context holds a match, in (0, 1]
    [slo]                     # service-level objectives for goodput (DistServe): requests/s meeting both
    ttft_ms = (none)          # time to first token, ms
    tpot_ms = (none)          # time per output token, ms

Every number must be finite (inf and NaN are refused) and every string non-empty. The bounds are those of
`sdsl_sim.units` (one place per kind). A key and its alias (`workload.context` for `prompt_tokens`), or a
catalog name and a size for the same model, are refused together.
"""

import copy
import math
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from .analytic.trees import (
    ACCEPT_KINDS,
    check_tree,
    node_depths,
    path_probabilities,
    tree_from_choices,
    tree_from_shape,
)
from .engine_metrics import read_engine_profile
from .errors import InputError
from .models import is_model_path
from .speculation import METHODS
from .tomlfile import read_toml
from .units import (
    DEFAULT_TRAIN_TOKENS,
    BATCH,
    GAMMA,
    MAX_GAMMA,
    ITERATIONS,
    MAX_DIM,
    MAX_GAMMA_RANGE,
    TREE_NODES,
    REQUESTS,
    SCALE,
    SEED,
    TOKENS,
    TP,
    TRAIN_TOKENS,
    PARAMS,
    PERCENTILES,
    Range,
    count_range,
    parse_count,
)
from .workload import parse_length

DEFAULT_SCENARIO = "default"
GAMMA_POLICIES = ("auto", "adaptive", "heuristic")
DEFAULT_MAX_GAMMA = 16  # decoding.max_gamma: the policies' bound (the heuristic schedule's cap)
_NUM = (int, float)
_POS = Range(0.0, None, low_open=True)
_UNIT = Range(0.0, 1.0, low_open=True, high_open=True)
_RESERVE = Range(0.0, 1.0, high_open=True)
_WEIGHT = Range(0.0, 1.0, low_open=True)
_LENGTH = (int, dict)  # an integer or a distribution table, checked by workload.parse_length
# The few ranges only scenarios take; every count's bound is in units.py.
MIN_RATE_PER_S, MAX_RATE_PER_S = 1e-6, 1e9  # arrivals from one per 11 days to one per nanosecond
RATE_PER_S = Range(MIN_RATE_PER_S, MAX_RATE_PER_S, high_name="MAX_RATE_PER_S")
MIN_CONCENTRATION, MAX_CONCENTRATION = 1e-6, 1e12  # Beta concentration: from 0/1 alphas to i.i.d.
CONCENTRATION = Range(MIN_CONCENTRATION, MAX_CONCENTRATION, high_name="MAX_CONCENTRATION")

# table -> key -> (accepted types, rule, default). rule: a units.Range the value must lie in, a tuple of
# the allowed strings, or None (strings must still be non-empty; sizes and lengths are checked by
# units.parse_count and workload.parse_length). Every number must be finite.
SCHEMA = {
    "run": {
        "method": (str, ("simulated", "analytic"), "simulated"),
        "seed": (int, SEED, 0),
        "metric_percentiles": (list, None, list(PERCENTILES)),
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
        "tp": (int, TP, None),
        "draft_tp": (int, TP, None),
        "runtime": (str, None, None),
        "bandwidth_scale": (_NUM, SCALE, 1.0),
        "flops_scale": (_NUM, SCALE, 1.0),
        "memory_scale": (_NUM, SCALE, 1.0),
        "link_scale": (_NUM, SCALE, 1.0),
        "memory_reserve_fraction": (_NUM, _RESERVE, None),
    },
    "workload": {
        "arrival": (str, ("static", "poisson", "closed", "trace"), "static"),
        "requests": (int, REQUESTS, None),
        "batch": (int, BATCH, 8),
        "prompt_tokens": (_LENGTH, None, 1024),
        "output_tokens": (_LENGTH, None, 256),
        "rate_per_s": (_NUM, RATE_PER_S, 1.0),
        "concurrency": (int, REQUESTS, None),
        "trace": (str, None, None),
    },
    "scheduler": {  # None: the runtime profile's default (hardware.Runtime)
        "chunked_prefill": (bool, None, None),
        "max_num_batched_tokens": (int, TOKENS, None),
        "kv_allocation": (str, ("paged", "reserve"), None),
        "block_size": (int, TOKENS, None),
    },
    "decoding": {
        "gamma": ((int, str), None, "auto"),
        "max_gamma": (int, MAX_GAMMA_RANGE, DEFAULT_MAX_GAMMA),
        "alpha": (_NUM, _UNIT, None),
        "acceptance": (str, ("iid", "beta", "profile"), "iid"),
        "alpha_concentration": (_NUM, CONCENTRATION, 20.0),
        "prefix_probs": (list, None, []),
        "adaptive_weight": (_NUM, _WEIGHT, 0.1),
        "adaptive_horizon": (int, ITERATIONS, 16),
        "disable_above_batch": (int, BATCH, None),
        "method": (str, METHODS, "draft-model"),
        "tree": ((list, dict), None, None),
        "tree_accept": (list, None, None),
        "tree_accept_kind": (str, ACCEPT_KINDS, "conditional"),
        "acceptance_length": (_NUM, Range(1.0, MAX_GAMMA + 1.0, low_open=True, high_open=True), None),
        "draft_vocab": (int, count_range(MAX_DIM, "MAX_DIM"), None),
        "trigger_rate": (_NUM, Range(0.0, 1.0, low_open=True), None),
        "acceptance_from": (str, None, None),
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


def check_text(value: str, where: str, expected: str = "a non-empty string") -> str:
    """`value` unless it is empty, blank or holds a NUL (which no name or path may): InputError naming `where`."""
    if not value.strip():
        raise InputError(f"{where} = {value!r} is empty; expected {expected}")
    if "\0" in value:
        raise InputError(f"{where} = {value!r} holds a NUL character; expected {expected}")
    return value


def _check_value(source, table, key, value):
    types, rule, _ = SCHEMA[table][key]
    where = f"{source}: key '{table}.{key}'"
    ok_types = types if isinstance(types, tuple) else (types,)
    if (isinstance(value, bool) and bool not in ok_types) or not isinstance(value, ok_types):
        raise InputError(f"{where} = {value!r}; expected {_type_name(types)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{where} = {value!r} is not finite; expected a finite number")
    if isinstance(value, str):
        check_text(value, where)
    if isinstance(rule, Range) and not rule.contains(value):
        raise InputError(f"{where} = {value!r} {rule.problem(value)}")
    elif isinstance(rule, tuple) and value not in rule:
        raise InputError(f"{where} = {value!r}; expected one of {', '.join(map(repr, rule))}")


MAX_PERCENTILES = 20


def check_percentiles(values: list, where: str) -> list[float]:
    """Distinct percentiles in [0, 100], as vLLM's --metric-percentiles takes them; ints stay ints (p99, not
    p99.0, in the keys)."""
    ok = (isinstance(values, list) and 0 < len(values) <= MAX_PERCENTILES
          and all(isinstance(v, _NUM) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 100
                  for v in values) and len(set(values)) == len(values))
    if not ok:
        raise InputError(f"{where} = {values!r}; expected 1 to MAX_PERCENTILES = {MAX_PERCENTILES} distinct "
                         "numbers in [0, 100]")
    return [int(v) if float(v).is_integer() else float(v) for v in values]


SWEEP_TABLES = ("base", "axes", "zip")  # tables only a sweep file has (sweep.py)


def scenario_from_dict(data: dict, source: str = "<dict>", base_dir=None) -> Scenario:
    """Validate a nested scenario dict (as read from TOML); errors name `source` and the key.
    base_dir: the folder a relative `workload.trace` or model file path (model.target, model.draft ending
    in .json or .toml) is read from (default: the working folder); the config holds the absolute path."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a table of {', '.join(SCHEMA)}")
    config = {table: {key: copy.deepcopy(spec[2]) for key, spec in keys.items()} for table, keys in SCHEMA.items()}
    for table, values in data.items():
        if table in SWEEP_TABLES:
            raise InputError(f"{source}: has a '{table}' table, so it is a sweep file, not a scenario; run it "
                             f"with `sdsl-sim sweep {Path(str(source)).stem} --out DIR`")
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
            model[f"{role}_params"] = parse_count(model[f"{role}_params"], f"{source}: key 'model.{role}_params'",
                                                  PARAMS)
            if role not in data.get("model", {}):
                model[role] = None  # the size overrides the default catalog model
        if isinstance(model[role], str) and is_model_path(model[role]):
            model[role] = _absolute(model[role], base_dir)
    model["train_tokens"] = parse_count(model["train_tokens"], f"{source}: key 'model.train_tokens'", TRAIN_TOKENS)
    gamma = dec["gamma"]
    if isinstance(gamma, str) and gamma not in GAMMA_POLICIES or isinstance(gamma, int) and not GAMMA.contains(gamma):
        raise InputError(f"{source}: key 'decoding.gamma' = {gamma!r}; expected {GAMMA.expected} or one of "
                             f"{', '.join(map(repr, GAMMA_POLICIES))}")
    if dec["acceptance_from"] is not None:
        _read_acceptance_from(dec, data.get("decoding", {}), source, base_dir)
    if dec["acceptance"] == "profile":
        r = dec["prefix_probs"]
        if not r or len(r) > MAX_GAMMA or \
                not all(isinstance(v, _NUM) and not isinstance(v, bool) and _UNIT.contains(v) for v in r) \
                or any(b > a for a, b in zip(r, r[1:])):
            raise InputError(f"{source}: key 'decoding.prefix_probs' = {r!r}; expected a non-empty, "
                             f"non-increasing list of at most MAX_GAMMA = {MAX_GAMMA} probabilities in (0, 1)")
        dec["prefix_probs"] = list(map(float, r))
    config["run"]["metric_percentiles"] = check_percentiles(config["run"]["metric_percentiles"],
                                                            f"{source}: key 'run.metric_percentiles'")
    _check_speculation(dec, data, source)
    if dec["method"] != "draft-model":  # a head or n-gram lookup drafts: no draft checkpoint, not the default's
        model["draft"] = model["draft_params"] = None
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
        wl["trace"] = _absolute(wl["trace"], base_dir)
    elif wl["requests"] is None:
        wl["requests"] = 16


def _read_acceptance_from(dec: dict, given: dict, source: str, base_dir) -> None:
    """decoding.acceptance_from: the engine's dump read into acceptance = "profile" (engine_metrics.py), the
    lookahead held to the k positions it measured (a profile is not extended past what the engine drafted)."""
    where = f"{source}: key 'decoding.acceptance_from' = {dec['acceptance_from']!r}"
    for key in ("acceptance", "prefix_probs", "alpha", "acceptance_length", "tree", "tree_accept"):
        if key in given:
            raise InputError(f"{where} with decoding.{key}; expected one source of acceptance (remove one)")
    path = _absolute(dec["acceptance_from"], base_dir)
    probs = read_engine_profile(path, f"{source}: decoding.acceptance_from {path}").prefix_probs
    k = len(probs)
    for key in ("gamma", "max_gamma"):
        if isinstance(given.get(key), int) and given[key] > k:
            raise InputError(f"{source}: key 'decoding.{key}' = {given[key]} with a dump of {k} draft positions "
                             f"({path}); expected at most {k}: positions the engine did not draft are not measured")
    dec["max_gamma"] = given.get("max_gamma", k)
    dec["acceptance"], dec["prefix_probs"], dec["acceptance_from"] = "profile", list(probs), None


def absolute_paths(data: dict, base_dir) -> dict:
    """Scenario tables `data` with their relative file paths (a model file as model.target or model.draft,
    workload.trace, decoding.acceptance_from) read from `base_dir`: a sweep's base, whose points are
    validated away from the file that named them. Anything else is left as it is, for validation to judge."""
    out = {table: dict(values) if isinstance(values, dict) else values for table, values in data.items()}
    keys = [("model", "target"), ("model", "draft"), ("workload", "trace"), ("decoding", "acceptance_from")]
    for table, key in keys:
        value = out.get(table, {}).get(key) if isinstance(out.get(table), dict) else None
        is_path = isinstance(value, str) and value.strip() and "\0" not in value and (
            table != "model" or is_model_path(value))
        if is_path:
            out[table][key] = _absolute(value, base_dir)
    return out


def _absolute(path: str, base_dir) -> str:
    """`path` read from `base_dir` (a scenario file's folder; default the working folder), made absolute."""
    return str((Path(base_dir) if base_dir is not None else Path.cwd()).joinpath(path).resolve())


def parse_tree(value, where: str) -> list:
    """A `decoding.tree` value (parent list, choices or {branching = [...]}) as a parent list, checked
    against MAX_TREE_NODES and MAX_GAMMA; InputError naming `where`."""
    try:
        if isinstance(value, dict):
            if set(value) - {"branching", "depth"} or "branching" not in value:
                raise InputError(f"{value!r}; expected a table {{branching = [b1, b2, ...]}} (depth optional)")
            branching = value["branching"]
            if not isinstance(branching, list) or value.get("depth", len(branching)) != len(branching):
                raise InputError(f"{value!r}: depth must equal the length of the branching list")
            if isinstance(branching, list) and all(isinstance(b, int) for b in branching) and \
                    math.prod(branching) > TREE_NODES.high:
                raise InputError(f"{value!r}: more than MAX_TREE_NODES = {TREE_NODES.high:,} nodes")
            tree = tree_from_shape(branching)
        elif value and all(isinstance(v, list) for v in value):
            tree = tree_from_choices(value)
        else:
            tree = check_tree(value)
        if not TREE_NODES.contains(len(tree)):
            raise InputError(f"{len(tree)} nodes {TREE_NODES.problem(len(tree))}")
        depth = int(node_depths(tree).max())
        if depth > MAX_GAMMA:
            raise InputError(f"depth {depth}; expected at most MAX_GAMMA = {MAX_GAMMA}")
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    return list(tree)


def _check_speculation(dec: dict, data: dict, source: str) -> None:
    """The [decoding] keys of speculation methods and trees, against each other (see the schema)."""
    given = data.get("decoding", {})
    method, where = dec["method"], f"{source}: key 'decoding."

    def refuse(key, why):
        raise InputError(f"{where}{key}' = {dec[key]!r} {why}")

    if method != "draft-model":
        for key in ("draft", "draft_params"):
            if key in data.get("model", {}):
                raise InputError(f"{source}: key 'model.{key}' names a draft checkpoint, but decoding.method = "
                                 f"{method!r} drafts without one; expected no model.{key}")
        explicit = any(given.get(k) is not None for k in ("alpha", "tree_accept", "acceptance_length")) \
            or dec["acceptance"] == "profile"
        if not explicit:
            raise InputError(f"{where}method' = {method!r} needs its acceptance given (decoding.alpha, a profile, "
                             "tree_accept or acceptance_length): the SDSL law sizes separate draft models only")
    if method != "draft-model" and "draft_tp" in data.get("hardware", {}):
        raise InputError(f"{source}: key 'hardware.draft_tp' with decoding.method = {method!r}; a head runs at the "
                         "target's tp and n-gram lookup on the host (remove the key)")
    if dec["draft_vocab"] is not None and method != "eagle":
        refuse("draft_vocab", "applies to method 'eagle' only")
    if dec["trigger_rate"] is not None and method != "ngram":
        refuse("trigger_rate", "applies to method 'ngram' only")
    if method == "ngram" and dec["gamma"] == "adaptive":
        refuse("gamma", "with method 'ngram'; the adaptive policy models a draft model's i.i.d. acceptance")
    if dec["tree"] is None:
        if dec["tree_accept"] is not None:
            refuse("tree_accept", "without decoding.tree; expected a tree to go with it")
        if dec["acceptance_length"] is not None:
            if not isinstance(dec["gamma"], int) or dec["gamma"] < 1:
                refuse("acceptance_length", f"with decoding.gamma = {dec['gamma']!r}; a chain's acceptance length "
                       "holds at the lookahead it was measured at: expected an integer gamma >= 1")
            if not dec["acceptance_length"] < dec["gamma"] + 1:
                refuse("acceptance_length", f"at gamma {dec['gamma']}; expected below gamma + 1 = {dec['gamma'] + 1}")
        return
    dec["tree"] = tree = parse_tree(dec["tree"], f"{where}tree'")
    depth = int(node_depths(tree).max())
    if method == "ngram":
        refuse("tree", "with method 'ngram'; n-gram lookup proposes a chain (expected no tree)")
    if isinstance(dec["gamma"], str) and dec["gamma"] != "auto" or isinstance(dec["gamma"], int) and dec["gamma"] > depth:
        refuse("gamma", f"with a tree of depth {depth}; expected 'auto' or an integer depth cut <= {depth}")
    for key in ("alpha", "prefix_probs"):
        if given.get(key):
            refuse(key, "with decoding.tree; a tree's acceptance is tree_accept or acceptance_length")
    if dec["acceptance"] != "iid":
        refuse("acceptance", "with decoding.tree; a tree's acceptance is tree_accept or acceptance_length")
    if (dec["tree_accept"] is None) == (dec["acceptance_length"] is None):
        raise InputError(f"{where}tree' needs exactly one of decoding.tree_accept and decoding.acceptance_length")
    if dec["acceptance_length"] is not None and not dec["acceptance_length"] < depth + 1:
        refuse("acceptance_length", f"for a tree of depth {depth}; expected below {depth + 1}")
    if "max_gamma" in given and given["max_gamma"] != depth:
        refuse("max_gamma", f"with a tree of depth {depth}; a tree's largest lookahead is its depth (remove the key)")
    dec["max_gamma"] = depth
    if dec["tree_accept"] is not None:
        try:
            path_probabilities(tree, dec["tree_accept"], dec["tree_accept_kind"])
        except InputError as exc:
            raise InputError(f"{where}tree_accept': {exc}") from None


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
