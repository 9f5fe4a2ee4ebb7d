"""GPU and runtime profiles: loading, validation and what-if scaling.

A GPU profile is one TOML file in `hardware_profiles/` (datasheet peaks plus the achieved-fraction
parameters of the roofline in `costs.py`); a runtime profile is one TOML file in
`hardware_profiles/runtimes/` (host-side engine costs: CUDA graphs or not, kernel launch cost,
per-step and per-sequence scheduling cost; the engine's scheduler and KV-pool defaults). Files use
human units named in their keys (`_gb_s`, `_tflops`, `_us`, `_mb`); the loader converts them once to
SI (bytes, seconds, FLOP/s). Memory is given as exactly one of `memory_gb` (decimal, 1e9 bytes) and
`memory_mib` (binary, 1048576 bytes: the total nvidia-smi / rocm-smi report, which is what the built-in
profiles use; see SOURCES.md there).
To add a GPU, copy a file, edit the numbers and their source comments, and load it by path or name.

Every number in a profile must be finite and within the range `_RULES` states for its key (peaks and
memory in [1e-6, 1e9] of the key's unit, times in [0, 1e9] us, achieved fractions in [0.001, 1], ...):
the ends lie far outside any real GPU and keep every derived pass time finite. A `weights-only` profile
(the `ideal` machine) reads only `hbm_bandwidth_gb_s`; its other numbers must still be valid.
"""

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from .errors import InputError
from .units import SCALE, TOKENS, TP, Range

PASS_MODELS = ("roofline", "weights-only")

# The values a profile number may take, in the file's units (every one finite: inf and NaN are refused).
# The ends are far outside any real GPU, so that every pass time the cost model derives stays a finite
# number of seconds: a rate of 1e-6 (TFLOP/s, GB/s, GB, MiB) is a kilobyte or a megaflop per second.
MIN_RATE, MAX_RATE = 1e-6, 1e9
MAX_TIME_US = 1e9  # 1000 s per kernel, step or sequence
MAX_HALF = 1e9  # half-saturation points: MB moved, GEMM rows
MAX_EXPONENT = 16.0
MIN_EFFICIENCY = 1e-3  # achieved fractions of a peak: at least 0.1%
MAX_SMALL_KERNELS = 1_000
MAX_UNITS = 100_000  # SMs / compute units
MAX_TILE = 4_096  # GEMM tile rows or columns
_RULES = {
    "pos": Range(MIN_RATE, MAX_RATE),
    "time": Range(0.0, MAX_TIME_US),
    "half": Range(0.0, MAX_HALF),
    "exp": Range(0.0, MAX_EXPONENT, low_open=True),
    "frac": Range(MIN_EFFICIENCY, 1.0),
    "frac0": Range(0.0, 1.0, high_open=True),
    "kernels": Range(0, MAX_SMALL_KERNELS, integer=True),
    "units": Range(1, MAX_UNITS, integer=True),
    "tile": Range(1, MAX_TILE, integer=True),
    "overlap": Range(1.0, MAX_EXPONENT),
    "tokens": TOKENS,
    "tp": TP,
}

# key -> (type, rule (a key of _RULES), SI field, factor to SI).
_GPU_KEYS = {
    "description": (str, None, "description", None),
    "default_runtime": (str, None, "default_runtime", None),
    "pass_model": (str, None, "pass_model", None),
    "bf16_tflops": (float, "pos", "bf16_flop_per_s", 1e12),
    "fp8_tflops": (float, "pos", "fp8_flop_per_s", 1e12),
    "fp4_tflops": (float, "pos", "fp4_flop_per_s", 1e12),
    "hbm_bandwidth_gb_s": (float, "pos", "hbm_bandwidth_bytes_per_s", 1e9),
    "memory_gb": (float, "pos", "memory_bytes", 1e9),  # decimal GB (datasheet style)
    "memory_mib": (float, "pos", "memory_bytes", 1048576.0),  # binary MiB (the total nvidia-smi reports)
    "memory_reserve_fraction": (float, "frac0", "memory_reserve_fraction", 1.0),
    "bw_eff_max": (float, "frac", "bw_eff_max", 1.0),
    "bw_eff_half_mb": (float, "half", "bw_eff_half_bytes", 1e6),
    "bw_eff_exponent": (float, "exp", "bw_eff_exponent", 1.0),
    "flops_eff_max": (float, "frac", "flops_eff_max", 1.0),
    "fp8_flops_eff_max": (float, "frac", "fp8_flops_eff_max", 1.0),
    "fp8_gemm_bw_factor": (float, "frac", "fp8_gemm_bw_factor", 1.0),
    "fp4_flops_eff_max": (float, "frac", "fp4_flops_eff_max", 1.0),
    "sm_count": (int, "units", "sm_count", None),
    "gemm_tile_rows": (int, "tile", "gemm_tile_rows", None),
    "gemm_tile_cols": (int, "tile", "gemm_tile_cols", None),
    "overlap_exponent": (float, "overlap", "overlap_exponent", 1.0),
    "kernel_floor_us": (float, "time", "kernel_floor_s", 1e-6),
    "link_bandwidth_gb_s": (float, "pos", "link_bandwidth_bytes_per_s", 1e9),
    "link_eff": (float, "frac", "link_eff", 1.0),
    "allreduce_latency_us": (float, "time", "allreduce_latency_s", 1e-6),
    "allreduce_latency_per_peer_us": (float, "time", "allreduce_latency_per_peer_s", 1e-6),
    "link_max_tp": (int, "tp", "link_max_tp", None),
    "fallback_link_bandwidth_gb_s": (float, "pos", "fallback_link_bandwidth_bytes_per_s", 1e9),
    "fallback_link_eff": (float, "frac", "fallback_link_eff", 1.0),
    "fallback_allreduce_latency_us": (float, "time", "fallback_allreduce_latency_s", 1e-6),
    "fallback_allreduce_latency_per_peer_us": (float, "time", "fallback_allreduce_latency_per_peer_s", 1e-6),
}
_FALLBACK_KEYS = ("fallback_link_bandwidth_gb_s", "fallback_link_eff", "fallback_allreduce_latency_us",
                  "fallback_allreduce_latency_per_peer_us")
_GPU_OPTIONAL = {"fp8_tflops": None, "description": "", "pass_model": "roofline", "fp8_flops_eff_max": None,
                 "fp8_gemm_bw_factor": 1.0, "fp4_tflops": None, "fp4_flops_eff_max": None, "link_max_tp": None, **{key: None for key in _FALLBACK_KEYS}}
# Keys of which a GPU profile gives exactly one (they set the same SI field).
_GPU_ONE_OF = (("memory_gb", "memory_mib"),)

_RUNTIME_KEYS = {
    "description": (str, None, "description", None),
    "cuda_graphs": (bool, None, "cuda_graphs", None),
    "kernel_launch_us": (float, "time", "kernel_launch_s", 1e-6),
    "step_us": (float, "time", "step_s", 1e-6),
    "per_sequence_us": (float, "time", "per_sequence_s", 1e-6),
    "small_kernels_per_layer": (int, "kernels", "small_kernels_per_layer", None),
    "sampling_kernels": (int, "kernels", "sampling_kernels", None),
    "draft_cuda_graphs": (bool, None, "draft_cuda_graphs", None),
    "shard_lm_head": (bool, None, "shard_lm_head", None),
    "draft_tp": (str, None, "draft_tp", None),
    "spec_iteration_us": (float, "time", "spec_iteration_s", 1e-6),
    "spec_per_sequence_us": (float, "time", "spec_per_sequence_s", 1e-6),
    "spec_per_draft_pass_us": (float, "time", "spec_per_draft_pass_s", 1e-6),
    "chunked_prefill": (bool, None, "chunked_prefill", None),
    "max_num_batched_tokens": (int, "tokens", "max_num_batched_tokens", None),
    "kv_allocation": (str, None, "kv_allocation", None),
    "block_size": (int, "tokens", "block_size", None),
    "allreduce_latency_us": (float, "time", "allreduce_latency_s", 1e-6),
    "allreduce_latency_per_peer_us": (float, "time", "allreduce_latency_per_peer_s", 1e-6),
    "ngram_ns_per_context_token": (float, "time", "ngram_s_per_context_token", 1e-9),
}
# An optional key absent from a file takes this value; None for draft_cuda_graphs means "as cuda_graphs".
# sampling_kernels 2 (estimate): the fp32 cast with temperature and one softmax / argmax / top-p kernel
# (vLLM V1 Sampler with FlashInfer sampling); penalties, logprobs and unfused top-k/top-p add more.
_RUNTIME_OPTIONAL = {"description": "", "sampling_kernels": 2, "draft_cuda_graphs": None, "shard_lm_head": True, "draft_tp": "own",
                     "spec_iteration_us": 0.0, "spec_per_sequence_us": 0.0, "spec_per_draft_pass_us": 0.0,
                     "chunked_prefill": True, "max_num_batched_tokens": 2048, "kv_allocation": "paged",
                     "block_size": 16, "allreduce_latency_us": None, "allreduce_latency_per_peer_us": None,
                     "ngram_ns_per_context_token": 1.06}
# ngram_ns_per_context_token 1.06: vLLM's numba n-gram matcher on one CPU thread scans 66.3M context tokens
# (batch 512 x 129536) in 70.28 ms (vllm-project/vllm PR #56732, microbenchmark "main" arm, 4x H100 host).
DRAFT_TP_POLICIES = ("own", "target")
KV_ALLOCATIONS = ("paged", "reserve")
KV_MEMORY_BASES = ("total", "free")


def kv_pool_reserve(fraction: float, basis: str, memory_bytes: float, weight_bytes_per_gpu: float) -> float:
    """The share of a GPU's memory kept out of weights and KV cache when an engine sizes its KV pool by
    `fraction` on `basis`: "total", weights and KV together take that share of the whole memory (vLLM's
    gpu_memory_utilization, SGLang's mem_fraction_static); "free", the KV pool takes that share of what
    the weights leave (TensorRT-LLM's free_gpu_memory_fraction), i.e. a reserve of
    (1 - fraction)(1 - weights / memory)."""
    if basis == "total":
        return 1.0 - fraction
    return (1.0 - fraction) * max(0.0, 1.0 - weight_bytes_per_gpu / memory_bytes)


@dataclass(frozen=True)
class GPU:
    """One accelerator, SI units. Efficiencies are achieved fractions of the datasheet peaks.

    Bandwidth efficiency of a transfer of B bytes: bw_eff_max / (1 + (bw_eff_half_bytes / B)^bw_eff_exponent).
    A weight GEMM computes at peak x flops_eff_max x its wave fill over `sm_count` SMs of output tiles
    gemm_tile_rows x gemm_tile_cols; its time is the `overlap_exponent`-norm of its memory and compute
    times (see `costs.gemm_time_s`).
    `fp8_flop_per_s` is None on GPUs without FP8 tensor cores (fp8 weights then compute at the BF16 rate).
    On FP8 tensor cores a GEMM reaches `fp8_flops_eff_max` (None: as BF16) and reads its fp8 weights at
    `fp8_gemm_bw_factor` x the bandwidth the curve gives for that many bytes.
    `fp4_flop_per_s` likewise for FP4 tensor cores (Blackwell NVFP4, CDNA4 MXFP4); without them fp4 and
    mxfp4 weights are weight-only (dequantised, computed at the BF16 rate, as int4 is).
    The GPU-GPU link reaches `link_max_tp` GPUs (None: any tp), as an NVLink bridge joins pairs of
    H100 NVL cards; a larger tp runs its all-reduces over the `fallback_*` link (PCIe), where engines'
    custom all-reduce kernels do not run (vLLM disables its own beyond two PCIe-only GPUs), so a
    runtime's all-reduce latency override applies only on the main link.
    """

    name: str
    description: str
    default_runtime: str
    pass_model: str  # "roofline" or "weights-only" (the `ideal` machine: time = weight bytes / bandwidth)
    bf16_flop_per_s: float
    fp8_flop_per_s: float | None
    hbm_bandwidth_bytes_per_s: float
    memory_bytes: float
    memory_reserve_fraction: float
    bw_eff_max: float
    bw_eff_half_bytes: float
    bw_eff_exponent: float
    flops_eff_max: float
    fp8_flops_eff_max: float | None
    fp8_gemm_bw_factor: float
    fp4_flop_per_s: float | None
    fp4_flops_eff_max: float | None
    sm_count: int
    gemm_tile_rows: int
    gemm_tile_cols: int
    overlap_exponent: float
    kernel_floor_s: float
    link_bandwidth_bytes_per_s: float
    link_eff: float
    allreduce_latency_s: float
    allreduce_latency_per_peer_s: float
    link_max_tp: int | None = None
    fallback_link_bandwidth_bytes_per_s: float | None = None
    fallback_link_eff: float | None = None
    fallback_allreduce_latency_s: float | None = None
    fallback_allreduce_latency_per_peer_s: float | None = None
    source: str = ""

    @property
    def usable_memory_bytes(self) -> float:
        return self.memory_bytes * (1.0 - self.memory_reserve_fraction)


@dataclass(frozen=True)
class Runtime:
    """How an engine runs passes and speculative iterations (seconds).

    `small_kernels_per_layer`: norm/rotary/activation/residual kernels left after the engine's fusion;
    `sampling_kernels`: kernels per step that each read the fp32 logits (cast, softmax / sampling);
    `kernel_launch_s` is paid per kernel only without CUDA graphs (`cuda_graphs` for the target and plain
    decoding, `draft_cuda_graphs` for the draft model, None meaning the same as the target).
    `step_s + per_sequence_s x sequences`: host work of every pass (scheduling, input preparation,
    sampling). `shard_lm_head`: the output matrix is split over the tensor-parallel GPUs (vocab-parallel);
    else every GPU reads all of it and computes every logit. `draft_tp`: the draft's tensor parallelism
    when a scenario does not set it, "own" (1 GPU) or "target" (the target's tp, with its all-reduces).
    A speculative iteration (a step in which sequences draft) also costs `spec_iteration_s` +
    `spec_per_sequence_s x decoders` + `spec_per_draft_pass_s x gamma` of host work beyond its passes:
    proposer/scorer hand-off, rejection sampling bookkeeping, host syncs, cache cropping.
    `chunked_prefill`, `max_num_batched_tokens`, `kv_allocation`, `block_size`: the engine's scheduler
    defaults, used where a scenario's [scheduler] table does not set them. `allreduce_latency_s` and
    `allreduce_latency_per_peer_s`: the latency of the engine's own all-reduce kernel (custom one-shot,
    PyTorch intra-node) where it replaces the GPU profile's eager NCCL figures; None keeps the GPU's.
    `ngram_s_per_context_token`: the host time n-gram drafting spends scanning each context token of
    each sequence per step (CPU prompt lookup; `speculation.py`).
    `kv_memory_fractions`: the engine's default KV-pool size as ((tp at least, fraction), ...) on
    `kv_memory_basis` (see `kv_pool_reserve`); None leaves the GPU profile's memory_reserve_fraction.
    """

    name: str
    description: str
    cuda_graphs: bool
    kernel_launch_s: float
    step_s: float
    per_sequence_s: float
    small_kernels_per_layer: int
    sampling_kernels: int = 2
    draft_cuda_graphs: bool | None = None
    shard_lm_head: bool = True
    draft_tp: str = "own"
    spec_iteration_s: float = 0.0
    spec_per_sequence_s: float = 0.0
    spec_per_draft_pass_s: float = 0.0
    chunked_prefill: bool = True
    max_num_batched_tokens: int = 2048
    kv_allocation: str = "paged"
    block_size: int = 16
    allreduce_latency_s: float | None = None
    allreduce_latency_per_peer_s: float | None = None
    ngram_s_per_context_token: float = 1.06e-9
    kv_memory_fractions: tuple | None = None
    kv_memory_basis: str = "total"
    source: str = ""

    def memory_reserve(self, memory_bytes: float, weight_bytes_per_gpu: float, tp: int) -> float | None:
        """The share of each GPU's memory this engine keeps out of weights and KV cache at `tp` by default
        (`kv_pool_reserve` at the fraction its profile gives for that tp); None when it states no policy."""
        if self.kv_memory_fractions is None:
            return None
        fraction = [f for least, f in self.kv_memory_fractions if least <= tp][-1]
        return kv_pool_reserve(fraction, self.kv_memory_basis, memory_bytes, weight_bytes_per_gpu)

    def for_draft(self) -> "Runtime":
        """The runtime the draft model's passes run under (its own CUDA-graph setting)."""
        if self.draft_cuda_graphs is None or self.draft_cuda_graphs == self.cuda_graphs:
            return self
        return dataclasses.replace(self, cuda_graphs=self.draft_cuda_graphs)


def _profiles_dir():
    return files("sdsl_sim") / "hardware_profiles"


def _builtin_names(directory) -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in directory.iterdir() if p.name.endswith(".toml"))


def list_gpus() -> list[str]:
    """Names of the built-in GPU profiles."""
    return _builtin_names(_profiles_dir())


def list_runtimes() -> list[str]:
    """Names of the built-in runtime profiles."""
    return _builtin_names(_profiles_dir() / "runtimes")


def _read_profile(name_or_path: str, directory, names: list[str], what: str) -> tuple[str, str, bytes]:
    """Find a built-in profile by name or a file by path; return (name, label for messages, its bytes)."""
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text)
        if not path.is_file():
            raise InputError(f"{what} file {text!r} not found")
        try:
            return path.stem, text, path.read_bytes()
        except OSError as exc:
            raise InputError(f"{text}: cannot be read ({exc.strerror})") from None
    if text in names:
        subdir = "runtimes/" if what == "runtime" else ""
        return text, f"hardware_profiles/{subdir}{text}.toml", (directory / f"{text}.toml").read_bytes()
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.4) or [
        n for n in names if n.startswith(text.split("-")[0])
    ][:3]
    hint = f"did you mean {', '.join(close)}?" if close else f"expected one of {', '.join(names)}"
    raise InputError(f"unknown {what} {text!r}; {hint}")


def _parse(raw: bytes, label: str) -> dict:
    try:
        return tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{label}: not valid TOML ({exc})") from None


def _convert(table: dict, keys: dict, optional: dict, label: str) -> dict:
    """Validate a flat TOML table against `keys` and return SI field values (see _GPU_KEYS)."""
    out = {}
    for key in table:
        if key not in keys:
            raise InputError(f"{label}: key {key!r} unknown; expected one of {', '.join(keys)}")
    for key, (typ, rule, field, factor) in keys.items():
        if key not in table:
            if key in optional:
                out[field] = optional[key]
                continue
            raise InputError(f"{label}: key {key!r} missing")
        value = table[key]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:  # an integer beyond any float
                value = float("inf")
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise InputError(f"{label}: key {key!r} must be a {typ.__name__}, got {value!r}")
        if typ is str and not value.strip() and key not in optional:
            raise InputError(f"{label}: key {key!r} is empty; expected a non-empty string")
        if rule is not None and not _RULES[rule].contains(value):
            raise InputError(f"{label}: key {key!r} = {value!r}; expected {_RULES[rule].expected}")
        out[field] = value * factor if factor is not None else value
    return out


def load_gpu(name_or_path: str) -> GPU:
    """Load a built-in GPU profile by name (see `list_gpus()`) or a TOML file by path."""
    return _gpu(*_read_profile(name_or_path, _profiles_dir(), list_gpus(), "hardware"))


# Profiles are cached by their bytes (read afresh on every load, so an edited file is never served stale):
# a sweep resolves every point's scenario, and parsing the TOML again was most of an analytic point's time.
@lru_cache(maxsize=256)
def _gpu(name: str, label: str, raw: bytes) -> GPU:
    table = _parse(raw, label)
    keys = dict(_GPU_KEYS)
    for group in _GPU_ONE_OF:
        given = [key for key in group if key in table]
        if len(given) != 1:
            found = "both" if given else "neither"
            names = " and ".join(repr(key) for key in group)
            raise InputError(f"{label}: give exactly one of the keys {names}; found {found}")
        for key in group:
            if key not in given:
                del keys[key]
    fields = _convert(table, keys, _GPU_OPTIONAL, label)
    given = [key for key in _FALLBACK_KEYS if key in table]
    if ("link_max_tp" in table) != bool(given) or (given and len(given) != len(_FALLBACK_KEYS)):
        raise InputError(f"{label}: 'link_max_tp' needs all of {', '.join(_FALLBACK_KEYS)} and they need it; "
                         f"found {', '.join(['link_max_tp'] * ('link_max_tp' in table) + given) or 'none'}")
    if fields["pass_model"] not in PASS_MODELS:
        raise InputError(f"{label}: key 'pass_model' = {fields['pass_model']!r}; expected one of {', '.join(PASS_MODELS)}")
    if fields["default_runtime"] not in list_runtimes() and not fields["default_runtime"].endswith(".toml"):
        raise InputError(
            f"{label}: key 'default_runtime' = {fields['default_runtime']!r}; expected one of {', '.join(list_runtimes())}"
        )
    return GPU(name=name, source=label, **fields)


def load_runtime(name_or_path: str) -> Runtime:
    """Load a built-in runtime profile ("default", "eager", "none") or a TOML file by path."""
    return _runtime(*_read_profile(name_or_path, _profiles_dir() / "runtimes", list_runtimes(), "runtime"))


@lru_cache(maxsize=256)
def _runtime(name: str, label: str, raw: bytes) -> Runtime:
    table = _parse(raw, label)
    fractions = _kv_memory_fractions(table.pop("kv_memory_fraction", None), label)
    basis = table.pop("kv_memory_basis", None)
    if basis is not None and fractions is None:
        raise InputError(f"{label}: key 'kv_memory_basis' without 'kv_memory_fraction'; expected both or neither")
    fields = _convert(table, _RUNTIME_KEYS, _RUNTIME_OPTIONAL, label)
    fields.update(kv_memory_fractions=fractions, kv_memory_basis="total" if basis is None else basis)
    for key, allowed in (("draft_tp", DRAFT_TP_POLICIES), ("kv_allocation", KV_ALLOCATIONS),
                         ("kv_memory_basis", KV_MEMORY_BASES)):
        if fields[key] not in allowed:
            raise InputError(f"{label}: key {key!r} = {fields[key]!r}; expected one of {', '.join(map(repr, allowed))}")
    return Runtime(name=name, source=label, **fields)


_KV_FRACTION = Range(0.0, 1.0, low_open=True)


def _kv_memory_fractions(value, label: str) -> tuple | None:
    """`kv_memory_fraction`: one fraction in (0, 1], or [[tp at least, fraction], ...] from tp 1 up, as
    ((1, f1), (tp2, f2), ...)."""
    if value is None:
        return None
    expected = (f"{_KV_FRACTION.expected}, or [[tp, fraction], ...] pairs of increasing tp from 1 (each tp "
                f"{TP.expected}, each fraction in (0, 1])")
    pairs = [[1, value]] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    ok = isinstance(pairs, list) and pairs and all(
        isinstance(p, list) and len(p) == 2 and TP.contains(p[0])
        and isinstance(p[1], (int, float)) and not isinstance(p[1], bool) and _KV_FRACTION.contains(float(p[1]))
        for p in pairs)
    if not ok or pairs[0][0] != 1 or any(a[0] >= b[0] for a, b in zip(pairs, pairs[1:])):
        raise InputError(f"{label}: key 'kv_memory_fraction' = {value!r}; expected {expected}")
    return tuple((int(tp), float(f)) for tp, f in pairs)


def scale_gpu(gpu: GPU, *, bandwidth=1.0, flops=1.0, memory=1.0, link=1.0) -> GPU:
    """A what-if profile: peaks multiplied by the given factors (efficiencies unchanged), each a finite
    number in [MIN_SCALE, MAX_SCALE] = [0.001, 1000] (`units.SCALE`).

    The name records the scaling, e.g. `a100-80gb-sxm[bandwidth x2, flops x0.5]`.
    """
    factors = {"bandwidth": bandwidth, "flops": flops, "memory": memory, "link": link}
    for what, factor in factors.items():
        if not SCALE.contains(factor):
            raise InputError(f"{what} scale {factor!r} is not {SCALE.expected}")
    changed = [f"{what} x{factor:g}" for what, factor in factors.items() if factor != 1.0]
    if not changed:
        return gpu
    return dataclasses.replace(
        gpu,
        name=f"{gpu.name}[{', '.join(changed)}]",
        hbm_bandwidth_bytes_per_s=gpu.hbm_bandwidth_bytes_per_s * bandwidth,
        bf16_flop_per_s=gpu.bf16_flop_per_s * flops,
        fp8_flop_per_s=None if gpu.fp8_flop_per_s is None else gpu.fp8_flop_per_s * flops,
        fp4_flop_per_s=None if gpu.fp4_flop_per_s is None else gpu.fp4_flop_per_s * flops,
        memory_bytes=gpu.memory_bytes * memory,
        link_bandwidth_bytes_per_s=gpu.link_bandwidth_bytes_per_s * link,
        fallback_link_bandwidth_bytes_per_s=None if gpu.fallback_link_bandwidth_bytes_per_s is None
        else gpu.fallback_link_bandwidth_bytes_per_s * link,
    )


def step_overhead_s(runtime: Runtime, batch):
    """Host-side time the engine adds to every step (each draft step and each verify step), seconds:
    scheduling, input preparation and sampling = step_s + per_sequence_s * batch. Broadcasts over batch."""
    return runtime.step_s + runtime.per_sequence_s * batch


def speculation_overhead_s(runtime: Runtime, decoders, gamma, passes=None):
    """Host work of one speculative iteration beyond its passes, seconds: spec_iteration_s +
    spec_per_sequence_s x decoders + spec_per_draft_pass_s x passes where gamma > 0, else 0; passes: the
    GPU draft passes (default gamma; one for Medusa's heads, none for n-gram lookup). Broadcasts."""
    passes = gamma if passes is None else passes
    cost = runtime.spec_iteration_s + runtime.spec_per_sequence_s * decoders + runtime.spec_per_draft_pass_s * passes
    return np.where(np.asarray(gamma) > 0, cost, 0.0) if np.ndim(gamma) else (cost if gamma > 0 else 0.0)
