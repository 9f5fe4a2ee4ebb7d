"""Roofline latency of one forward pass: the one seam between the simulator and the hardware.

A pass is one or more groups of sequences (`PassWork`), each sequence adding new tokens on top of the
ones already cached, run by a `Deployment` (a model on `tp` GPUs with its dtypes and runtime). A plain
pass (`pass_latency_s`) is one group: `batch` sequences each adding `tokens` to `context`. Each
operator (fused QKV, attention with its KV reads, output projection, MLP up(+gate) and down, the small
norm/rotary/activation/residual kernels, LM head, all-reduces) costs

    max(overlap(t_mem, t_comp),  kernel floor),   overlap(a, b) = (a^p + b^p)^(1/p)

with t_mem = bytes / (bandwidth x bw_eff(bytes)) and t_comp = FLOPs / (peak x flops_eff_max x fill), where
fill is the tile and wave quantisation of the GEMM's output tiles over the GPU's SMs (`gemm_flops_efficiency`)
and p the profile's overlap exponent: near the ridge a kernel is slower than either bound, far from it
the larger bound alone sets its time, so a GEMM whose arithmetic intensity is far below the ridge stays
memory-bound under any what-if scaling. The per-GPU parameters and the micro-benchmarks they reproduce
are in hardware_profiles/SOURCES.md. Without CUDA graphs every kernel costs at least the runtime's host
launch time. Under tensor parallelism each layer adds two
ring all-reduces: latency + 2(tp-1)/tp x bytes / (link bandwidth x link_eff), the latency the runtime's
all-reduce kernel's where its profile gives one, else the GPU profile's (eager NCCL); beyond the GPU's
`link_max_tp` the fallback link's (PCIe) bandwidth and latency.
A prefill chunk is a group of one sequence with tokens = chunk length and context = the prompt tokens
already cached, and one row of logits; a decode or verification group computes logits for every new
token. The LM head and the sampler (the runtime's `sampling_kernels` passes over the fp32 logits of the
full vocabulary, gathered on one GPU) see those logit rows only.
A mixture-of-experts layer reads the weights of the U(T) distinct experts its T routed tokens touch
(`experts_touched`) and runs their rows as two grouped GEMMs; latent attention (MLA) reads its one
cached latent per token and computes absorbed; sliding-window layers read at most their window.
On a `weights-only` GPU (the `ideal` profile) a pass costs exactly weight bytes / (tp x bandwidth).
Host-side per-step engine costs are not here: see `hardware.step_overhead_s`.
"""

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .errors import InputError
from .hardware import GPU, Runtime, load_runtime
from .models import FP4_DTYPES, Model, dtype_bytes, kv_cache_row_bytes
from .units import MAX_TP

ACT_BYTES = 2.0  # activations stay bf16/fp16 whatever the weight dtype (weight-only quantisation)
OP_CLASSES = ("qkv", "attention", "out_proj", "mlp", "experts", "norms_elementwise", "lm_head", "sampling", "allreduce")
# Small kernels per MoE layer beside the two grouped expert GEMMs: vLLM's fused_moe runs topk_softmax,
# moe_align_block_size, silu_and_mul and moe_sum (vllm/model_executor/layers/fused_moe/fused_moe.py).
MOE_SMALL_KERNELS = 4
LOGIT_BYTES = 4.0  # samplers work on fp32 logits


@dataclass(frozen=True)
class PassCost:
    """Latency of one pass with what explains it. `breakdown_s`: seconds per operator class plus
    `launch` (host launch gaps without CUDA graphs); `bound_s`: seconds of kernels limited by
    memory, compute or overhead (kernel floors, launches, all-reduces); `bound` is the largest."""

    latency_s: float
    bound: str
    breakdown_s: dict
    bound_s: dict


@dataclass(frozen=True)
class _Op:
    cls: str
    count: int  # kernels of this shape per pass
    weight_bytes: float  # per GPU
    k: float  # GEMM input width (0 for non-GEMM operators)
    n: float  # GEMM output width per GPU
    col_tiles: int  # ceil(n / gemm_tile_cols)


@dataclass(frozen=True)
class _MoE:
    """The routed experts of a plan: `layers` MoE layers of `experts` experts, `per_token` picked per token
    with chances `pick` (None: uniform), and the two grouped GEMMs as (k, n, col_tiles, bytes per expert
    per GPU)."""

    layers: int
    experts: int
    per_token: int
    pick: "np.ndarray | None"
    gemms: tuple


@dataclass(frozen=True)
class _Plan:
    """Everything about a pass that does not depend on batch, tokens or context."""

    ops: tuple
    moe: "_MoE | None"
    weights_only_s: float  # per-pass time on a weights-only GPU, else 0
    gemm_flop_per_s: float  # peak for the weight GEMMs (FP8 when weights are fp8 and the GPU has it)
    gemm_f_max: float
    gemm_bw_factor: float
    attn_flop_per_s: float
    hbm_bytes_per_s: float
    bw_max: float  # efficiency curves: see `saturating_efficiency`
    bw_half_bytes: float
    bw_p: float
    f_max: float
    sm_count: int
    tile_rows: int
    overlap_p: float
    floor_s: float
    launch_s: float  # 0 with CUDA graphs
    small_kernels: int
    sampling_kernels: int
    n_layers: int
    hidden_size: float
    heads_gpu: float
    head_dim: float
    vocab_size: float
    kv_row_bytes: float  # K+V (or latent) bytes per token per layer per GPU
    attn_width: float  # query-key plus value width per head: (query, key) pair FLOPs = 2 x heads x this
    window: float  # sliding window in tokens (0: none)
    window_layers: int
    allreduce_fixed_s: float
    allreduce_s_per_byte: float


def check_tp(model: Model, tp) -> int:
    """The tensor-parallel degree as an int; InputError unless it is >= 1 and divides the attention heads."""
    if isinstance(tp, bool) or not isinstance(tp, (int, np.integer)) or tp < 1:
        raise InputError(f"tp {tp!r} must be a positive integer")
    if model.n_heads % tp:
        raise InputError(f"tp {tp} does not divide {model.name}'s {model.n_heads} attention heads")
    return int(tp)


@lru_cache(maxsize=1024)
def _plan(model: Model, gpu: GPU, tp: int, weight_dtype: str, kv_dtype: str, runtime: Runtime) -> _Plan:
    wb = dtype_bytes(weight_dtype, "weight dtype")
    h, hd, L = model.hidden_size, model.head_dim, model.n_layers
    heads = model.n_heads / tp
    gated = 2 if model.ffn_type == "swiglu" else 1
    e = model.embed_dim or h
    tiles = gpu.gemm_tile_cols
    dense_layers = L - model.moe_layers
    gemms = _attention_gemms(model, tp) + [
        (dense_layers, "mlp", h, gated * model.ffn_size / tp),
        (dense_layers, "mlp", model.ffn_size / tp, h),
    ]
    if model.input_projection:
        k_in, n_out = model.input_projection
        gemms.append((1, "mlp", k_in, n_out / tp))
    moe = None
    if model.is_moe:
        shared = model.shared_experts * model.moe_ffn_size / tp
        # The router is replicated (every GPU scores every expert); shared experts shard like a dense MLP.
        gemms += [(model.moe_layers, "mlp", h, model.num_experts)]
        if shared:
            gemms += [(model.moe_layers, "mlp", h, gated * shared), (model.moe_layers, "mlp", shared, h)]
        width = model.moe_ffn_size / tp
        expert = [(h, gated * width), (width, h)]
        moe = _MoE(model.moe_layers, model.num_experts, model.experts_per_token, _pick(model),
                   tuple((k, n, math.ceil(n / tiles), k * n * wb) for k, n in expert))
    ops = [_Op(cls, count, k * n * wb, k, n, math.ceil(n / tiles)) for count, cls, k, n in gemms if count]
    # A vocab-parallel LM head splits the output matrix; an unsharded one (gpt-fast's tp.py) is read whole by
    # every GPU, which also computes every logit.
    vocab_gpu = model.vocab_size / tp if runtime.shard_lm_head else model.vocab_size
    ops.append(_Op("lm_head", 1, e * vocab_gpu * wb, e, vocab_gpu, math.ceil(vocab_gpu / tiles)))
    gemm_peak, gemm_f_max, gemm_bw_factor = _gemm_rates(gpu, weight_dtype)
    if gpu.link_max_tp is None or tp <= gpu.link_max_tp:
        link_bw = gpu.link_bandwidth_bytes_per_s * gpu.link_eff
        latency = _or(runtime.allreduce_latency_s, gpu.allreduce_latency_s)
        per_peer = _or(runtime.allreduce_latency_per_peer_s, gpu.allreduce_latency_per_peer_s)
    else:  # beyond the bridge: NCCL over the fallback link (see hardware.GPU)
        link_bw = gpu.fallback_link_bandwidth_bytes_per_s * gpu.fallback_link_eff
        latency, per_peer = gpu.fallback_allreduce_latency_s, gpu.fallback_allreduce_latency_per_peer_s
    # Latent attention runs absorbed (DeepSeek-V2 s.2.1.2): scores over the latent + rotary key, values in
    # the latent space.
    attn_width = (2 * model.kv_lora_rank + model.qk_rope_head_dim) if model.is_mla else 2 * hd
    return _Plan(
        ops=tuple(ops),
        moe=moe,
        weights_only_s=(model.params * wb / (tp * gpu.hbm_bandwidth_bytes_per_s) if gpu.pass_model == "weights-only" else 0.0),
        gemm_flop_per_s=gemm_peak,
        gemm_f_max=gemm_f_max,
        gemm_bw_factor=gemm_bw_factor,
        attn_flop_per_s=gpu.bf16_flop_per_s,
        hbm_bytes_per_s=gpu.hbm_bandwidth_bytes_per_s,
        bw_max=gpu.bw_eff_max,
        bw_half_bytes=gpu.bw_eff_half_bytes,
        bw_p=gpu.bw_eff_exponent,
        f_max=gpu.flops_eff_max,
        sm_count=gpu.sm_count,
        tile_rows=gpu.gemm_tile_rows,
        overlap_p=gpu.overlap_exponent,
        floor_s=gpu.kernel_floor_s,
        launch_s=0.0 if runtime.cuda_graphs else runtime.kernel_launch_s,
        small_kernels=runtime.small_kernels_per_layer,
        sampling_kernels=runtime.sampling_kernels,
        n_layers=L,
        hidden_size=h,
        heads_gpu=heads,
        head_dim=hd,
        vocab_size=model.vocab_size,
        kv_row_bytes=kv_cache_row_bytes(model, kv_dtype, tp),
        attn_width=attn_width,
        window=model.sliding_window,
        window_layers=model.sliding_window_layers,
        allreduce_fixed_s=latency + (tp - 1) * per_peer if tp > 1 else 0.0,
        allreduce_s_per_byte=2 * (tp - 1) / tp / link_bw if tp > 1 else 0.0,
    )


def _attention_gemms(model: Model, tp: int) -> list:
    """(layers, class, k, n per GPU) of the attention projections. Latent attention (DeepSeek-V3): the
    query down- and the KV down-projection are replicated (vLLM's ReplicatedLinear), the query up-projection
    sharded by heads; decoding absorbs the KV up-projection into two per-head products (queries into the
    latent space, the attention output back out), each a GEMM over that weight's own shape."""
    h, hd, L = model.hidden_size, model.head_dim, model.n_layers
    heads = model.n_heads / tp
    if not model.is_mla:
        kv_heads = math.ceil(model.n_kv_heads / tp)  # KV heads are replicated when tp exceeds them
        return [(L, "qkv", h, (heads + 2 * kv_heads) * hd), (L, "out_proj", heads * hd, h)]
    q_width = heads * (hd + model.qk_rope_head_dim)
    rank, latent = model.q_lora_rank, model.kv_lora_rank
    query = [(L, "qkv", h, rank), (L, "qkv", rank, q_width)] if rank else [(L, "qkv", h, q_width)]
    return query + [
        (L, "qkv", h, latent + model.qk_rope_head_dim),
        (L, "qkv", hd, heads * latent),
        (L, "out_proj", latent, heads * model.v_head_dim),
        (L, "out_proj", heads * model.v_head_dim, h),
    ]


def expert_pick_probabilities(experts: int, per_token: int, skew: float) -> np.ndarray:
    """Chance that one token's router picks each expert, summing to `per_token`: proportional to rank^-skew
    (a Zipf law; skew 0 is uniform, k / E each), capped at 1 with the excess shared out over the rest (a
    token picks an expert at most once). A stand-in for a measured routing histogram: imbalance makes a
    pass touch fewer distinct experts than uniform routing does."""
    weight = np.arange(1, experts + 1, dtype=float) ** -float(skew)
    pick = np.zeros(experts)
    free = np.ones(experts, dtype=bool)
    left = float(per_token)
    while left > 1e-12:  # water-filling: at most `per_token` rounds
        share = left * weight * free / np.sum(weight[free])
        over = free & (pick + share >= 1.0)
        if not over.any():
            pick += share
            break
        left -= np.sum(1.0 - pick[over])
        pick[over], free[over] = 1.0, False
    return pick


def _pick(model: Model):
    if not model.routing_skew:
        return None
    return expert_pick_probabilities(model.num_experts, model.experts_per_token, model.routing_skew)


def experts_touched(experts: int, per_token: int, tokens, pick=None):
    """Expected distinct experts that `tokens` routed tokens touch in one MoE layer: with uniform routing
    U(T) = E (1 - (1 - k / E)^T) (the occupancy formula), else sum_e 1 - (1 - q_e)^T for pick chances q_e
    (`expert_pick_probabilities`). Broadcasts over tokens."""
    if pick is None:
        return experts * (1.0 - (1.0 - per_token / experts) ** tokens)
    if _is_array(tokens):
        return np.sum(1.0 - (1.0 - pick) ** np.asarray(tokens, dtype=float)[..., None], axis=-1)
    return float(np.sum(1.0 - (1.0 - pick) ** tokens))


def expert_weight_bytes(deployment: "Deployment", work: "PassWork"):
    """Routed-expert weight bytes one GPU reads in one pass doing `work`: over the MoE layers, the experts
    its tokens touch times one expert's bytes (0 for a dense model). Broadcasts."""
    moe = deployment.plan.moe
    if moe is None:
        return 0.0 * work.rows
    touched = experts_touched(moe.experts, moe.per_token, work.rows, moe.pick)
    return moe.layers * touched * sum(g[3] for g in moe.gemms)


def _gemm_rates(gpu: GPU, weight_dtype: str) -> tuple:
    """(peak FLOP/s, its best achieved fraction, bandwidth factor) of weight GEMMs in `weight_dtype`: fp8
    weights on FP8 tensor cores use the FP8 peak and its own maximum (FP8 matmuls reach a smaller fraction
    of their peak) and read at fp8_gemm_bw_factor of the bf16 curve (SOURCES.md, Quantised kernels); fp4
    weights on FP4 tensor cores the FP4 peak. Elsewhere quantised weights are dequantised to BF16."""
    rate = gemm_compute_rate(gpu, weight_dtype)
    if rate == "fp8":
        return gpu.fp8_flop_per_s, _or(gpu.fp8_flops_eff_max, gpu.flops_eff_max), gpu.fp8_gemm_bw_factor
    if rate == "fp4":
        return gpu.fp4_flop_per_s, _or(gpu.fp4_flops_eff_max, gpu.flops_eff_max), 1.0
    return gpu.bf16_flop_per_s, gpu.flops_eff_max, 1.0


def best_gemm_flop_per_s(gpu: GPU, weight_dtype: str = "bf16") -> float:
    """Peak x best measured fraction of weight GEMMs in `weight_dtype`: the rate no GEMM here exceeds."""
    peak, eff, _ = _gemm_rates(gpu, weight_dtype)
    return peak * eff


def gemm_compute_rate(gpu: GPU, weight_dtype: str) -> str:
    """The tensor-core rate weight GEMMs in `weight_dtype` run at on `gpu`: "fp8", "fp4" or "bf16" (weight-
    only quantisation: int8, int4, and fp8/fp4 on GPUs without those tensor cores)."""
    if weight_dtype == "fp8" and gpu.fp8_flop_per_s is not None:
        return "fp8"
    if weight_dtype in FP4_DTYPES and gpu.fp4_flop_per_s is not None:
        return "fp4"
    return "bf16"


def _or(value, default):
    return default if value is None else value


def saturating_efficiency(eff_max, half, x, exponent):
    """The achieved-fraction curve eff_max / (1 + (half / x)^exponent): eff_max / 2 at x = half, rising
    to eff_max for large x; `half` and `x` share a unit (bytes moved, for bandwidth). The one place the
    curve is written; the cost model's hot loop calls it too, so keep it bare."""
    return eff_max / (1.0 + (half / x) ** exponent)


def bandwidth_efficiency(gpu: GPU, nbytes):
    """Achieved fraction of peak HBM bandwidth for a kernel moving `nbytes` (SOURCES.md, Vidur rows)."""
    return saturating_efficiency(gpu.bw_eff_max, gpu.bw_eff_half_bytes, nbytes, gpu.bw_eff_exponent)


def _ceil(x):
    """ceil for positive floats and arrays alike (math.ceil refuses arrays, np.ceil is slow on scalars)."""
    return -(-x // 1)


def wave_fill(sm_count, tiles):
    """Fraction of the SMs' slots that `tiles` equal output tiles keep busy when they run in waves of
    `sm_count`: tiles / (ceil(tiles / sm_count) x sm_count). Broadcasts."""
    return tiles / (_ceil(tiles / sm_count) * sm_count)


def _min(x, bound):
    """min for floats and arrays alike (numpy's on a float returns a numpy scalar, slow in the hot loop)."""
    return np.minimum(x, bound) if isinstance(x, np.ndarray) else min(x, bound)


def row_fill(rows, tile_rows):
    """Fraction of the rows its row tiles compute that a GEMM of `rows` rows uses: rows / (ceil(rows /
    tile_rows) x min(rows, tile_rows)). Up to one tile the kernel's tile fits the rows (small-M kernel
    configurations); beyond it every row tile costs a whole tile, so the time never falls as rows grow."""
    return rows / (_ceil(rows / tile_rows) * _min(rows, tile_rows))


def gemm_flops_efficiency(gpu: GPU, rows, n, weight_dtype="bf16"):
    """Achieved fraction of peak FLOP/s of a GEMM with `rows` = batch x tokens and output width `n`:
    the best measured large matmul's fraction x the row fill of its gemm_tile_rows-row tiles x the wave
    fill of its ceil(rows / gemm_tile_rows) x ceil(n / gemm_tile_cols) output tiles over the GPU's SMs
    (tile and wave quantisation). Broadcasts."""
    tiles = _ceil(rows / gpu.gemm_tile_rows) * _ceil(n / gpu.gemm_tile_cols)
    return (_gemm_rates(gpu, weight_dtype)[1] * row_fill(rows, gpu.gemm_tile_rows)
            * wave_fill(gpu.sm_count, tiles))


def overlap_s(t_mem, t_comp, p):
    """A kernel's time from its memory and compute bounds: (t_mem^p + t_comp^p)^(1/p), written as
    hi x (1 + (lo / hi)^p)^(1/p) so that no power under- or overflows; 0 where both are 0. Broadcasts."""
    return _overlap(t_mem, t_comp, p, _is_array(t_mem, t_comp))


def _overlap(t_mem, t_comp, p, vector: bool):
    if vector:
        hi, lo = np.maximum(t_mem, t_comp), np.minimum(t_mem, t_comp)
        ratio = np.divide(lo, hi, out=np.zeros(np.shape(hi)), where=hi > 0)
        return hi * (1.0 + ratio ** p) ** (1.0 / p)
    hi, lo = max(t_mem, t_comp), min(t_mem, t_comp)
    return hi * (1.0 + (lo / hi) ** p) ** (1.0 / p) if hi > 0 else 0.0


def gemm_time_s(gpu: GPU, *, rows, k, n, weight_dtype="bf16"):
    """Time of one weight GEMM (rows x k) @ (k x n) on one GPU, seconds (module docstring); broadcasts."""
    nbytes = k * n * dtype_bytes(weight_dtype, "weight dtype") + ACT_BYTES * rows * (k + n)
    peak, _, bw_factor = _gemm_rates(gpu, weight_dtype)
    t_mem = nbytes / (gpu.hbm_bandwidth_bytes_per_s * bandwidth_efficiency(gpu, nbytes) * bw_factor)
    t_comp = 2.0 * rows * k * n / (peak * gemm_flops_efficiency(gpu, rows, n, weight_dtype))
    return np.maximum(overlap_s(t_mem, t_comp, gpu.overlap_exponent), gpu.kernel_floor_s)


def _terms(p: _Plan, work: "PassWork"):
    """(class, kernels, memory time, compute time, fixed time) per operator; broadcasts over the work's fields.
    Weight GEMMs see all the pass's rows at once (weights are read once per pass); attention sees the
    K/V rows and (query, key) pairs summed over the pass's groups, as one varlen kernel per layer does."""
    m = work.rows
    eff = saturating_efficiency
    bw, bw_max, bw_half, bw_p = p.hbm_bytes_per_s, p.bw_max, p.bw_half_bytes, p.bw_p
    sm = p.sm_count
    row_tiles = -(-m // p.tile_rows)  # ceil, for floats and arrays alike
    tile_m = _min(m, p.tile_rows)  # rows one row tile computes (row_fill)
    logit_tiles, logit_tile_m = -(-work.logits // p.tile_rows), _min(work.logits, p.tile_rows)
    gemm_bw, gemm_rate = bw * p.gemm_bw_factor, p.gemm_flop_per_s * p.gemm_f_max
    out = []
    for op in p.ops:  # row_fill, wave_fill and gemm_time_s, written out: this is the simulator's hot loop
        rows, tiles, rows_per_tile = ((work.logits, logit_tiles, logit_tile_m) if op.cls == "lm_head"
                                      else (m, row_tiles, tile_m))
        nbytes = op.weight_bytes + ACT_BYTES * rows * (op.k + op.n)
        t_mem = nbytes / (gemm_bw * eff(bw_max, bw_half, nbytes, bw_p))
        waves = -(-(tiles * op.col_tiles) // sm)
        t_comp = 2.0 * rows_per_tile * op.k * op.n * waves * sm / (gemm_rate * op.col_tiles)
        out.append((op.cls, op.count, t_mem, t_comp, p.floor_s))
    nbytes = LOGIT_BYTES * work.logits * p.vocab_size
    out.append(("sampling", p.sampling_kernels, nbytes / (bw * eff(bw_max, bw_half, nbytes, bw_p)), 0.0, p.floor_s))
    if p.moe is not None:
        out.extend(_expert_terms(p, m))
    # Attention: read K and V of all context + new tokens, write the new ones; causal FLOPs, in blocks of
    # query rows per head (FlashAttention's grid) waving over the SMs like a GEMM's tiles. Sliding-window
    # layers see at most the window.
    fill = m / (row_tiles * tile_m) * wave_fill(p.sm_count, row_tiles * p.heads_gpu)  # row_fill x wave_fill
    attn_rate = p.attn_flop_per_s * p.f_max * fill
    act = ACT_BYTES * m * p.heads_gpu * p.attn_width
    layers = ((p.n_layers - p.window_layers, work.kv_tokens, work.attention_pairs),
              (p.window_layers, *work.windowed(p.window)) if p.window_layers else (0, 0, 0))
    for count, kv_tokens, pairs in layers:
        if count:
            nbytes = kv_tokens * p.kv_row_bytes + act
            t_mem = nbytes / (bw * eff(bw_max, bw_half, nbytes, bw_p))
            out.append(("attention", count, t_mem, 2.0 * pairs * p.heads_gpu * p.attn_width / attn_rate, p.floor_s))
    # Small kernels (norms, rotary, activation, residual adds) each read and write the hidden state;
    # two more per pass: embedding gather and the final norm.
    nbytes = 2.0 * ACT_BYTES * m * p.hidden_size
    t_mem = nbytes / (bw * eff(bw_max, bw_half, nbytes, bw_p))
    out.append(("norms_elementwise", p.n_layers * p.small_kernels + 2, t_mem, 0.0, p.floor_s))
    if p.allreduce_fixed_s:
        t_link = p.allreduce_fixed_s + ACT_BYTES * m * p.hidden_size * p.allreduce_s_per_byte
        out.append(("allreduce", 2 * p.n_layers, 0.0, 0.0, t_link))
    return out


def _expert_terms(p: _Plan, m):
    """The routed experts' terms: two grouped GEMMs per MoE layer over the experts the pass's m tokens
    touch (U of them, each reading its weights once and computing its m k / U rows in its own row tiles),
    and the routing kernels, which move each token's hidden state once per expert it visits."""
    moe = p.moe
    eff = saturating_efficiency
    routed = m * moe.per_token
    touched = experts_touched(moe.experts, moe.per_token, m, moe.pick)
    rows_each = routed / np.maximum(touched, 1e-30)
    sm, rate = p.sm_count, p.gemm_flop_per_s * p.gemm_f_max
    gemm_bw = p.hbm_bytes_per_s * p.gemm_bw_factor
    out = []
    for k, n, col_tiles, expert_bytes in moe.gemms:
        nbytes = touched * expert_bytes + ACT_BYTES * routed * (k + n)
        t_mem = nbytes / (gemm_bw * eff(p.bw_max, p.bw_half_bytes, nbytes, p.bw_p))
        waves = -(-(touched * -(-rows_each // p.tile_rows) * col_tiles) // sm)
        t_comp = 2.0 * _min(rows_each, p.tile_rows) * k * n * waves * sm / (rate * col_tiles)
        out.append(("experts", moe.layers, t_mem, t_comp, p.floor_s))
    nbytes = 2.0 * ACT_BYTES * routed * p.hidden_size
    t_mem = nbytes / (p.hbm_bytes_per_s * eff(p.bw_max, p.bw_half_bytes, nbytes, p.bw_p))
    out.append(("experts", moe.layers * MOE_SMALL_KERNELS, t_mem, 0.0, p.floor_s))
    return out


def _is_array(*values) -> bool:
    return any(isinstance(v, np.ndarray) for v in values)


def _validate_shape(batch, tokens, context) -> None:
    if _is_array(batch, tokens, context):
        bad = [(n, v) for n, v, lo in (("batch", batch, 1), ("tokens", tokens, 1), ("context", context, 0))
               if np.any(np.asarray(v) < lo) or np.any(~np.isfinite(np.asarray(v, dtype=float)))]
    else:
        bad = [(n, v) for n, v, lo in (("batch", batch, 1), ("tokens", tokens, 1), ("context", context, 0))
               if not v >= lo or not math.isfinite(v)]
    if bad:
        name, value = bad[0]
        expected = ">= 0" if name == "context" else ">= 1"
        raise InputError(f"{name} {value!r} must be finite and {expected}")


@dataclass(frozen=True)
class Deployment:
    """One model served on `tp` GPUs of one kind, with its weight and KV dtypes and the engine runtime:
    everything a pass's cost depends on besides the work it does. Build it with `Deployment.of`, which
    checks the tp degree and dtypes and resolves the runtime once."""

    model: Model
    gpu: GPU
    tp: int
    weight_dtype: str
    kv_dtype: str
    runtime: Runtime

    @classmethod
    def of(cls, model: Model, gpu: GPU, *, tp=1, weight_dtype="bf16", kv_dtype="bf16", runtime=None) -> "Deployment":
        """runtime: a `hardware.Runtime`, a profile name or path, or None for the GPU's default."""
        runtime = _runtime_on(gpu, runtime)
        dtype_bytes(weight_dtype, "weight dtype")
        dtype_bytes(kv_dtype, "kv dtype")
        return cls(model, gpu, check_tp(model, tp), weight_dtype, kv_dtype, runtime)

    @property
    def plan(self) -> _Plan:
        return _plan(self.model, self.gpu, self.tp, self.weight_dtype, self.kv_dtype, self.runtime)


@dataclass(frozen=True)
class PassWork:
    """What one forward pass computes, summed over its groups of sequences (fields broadcast with numpy).

    A group is `sequences` sequences each adding `tokens` new tokens on top of `context` cached ones: a
    decode batch (tokens = 1, or gamma + 1 when verifying), one request's prefill chunk (sequences = 1,
    context = prompt tokens already cached). Every cost term is linear in these sums, so the groups of
    a mixed prefill/decode step add up to one pass: `PassWork.group(...) + PassWork.group(...)`."""

    sequences: object
    rows: object  # new tokens: the rows of every weight GEMM but the LM head
    kv_tokens: object  # K/V rows attention reads (context + new) and writes (new), per sequence summed
    attention_pairs: object  # causal (query, key) pairs: tokens x (context + (tokens + 1) / 2) per sequence
    logits: object  # rows of the LM head and the sampler
    groups: tuple = ()  # (sequences, tokens, context) per group, for sliding-window layers

    @classmethod
    def group(cls, sequences, tokens, context, *, prefill=False) -> "PassWork":
        """`prefill`: the group is a prompt chunk, which needs logits for one token per sequence only."""
        return cls(sequences, sequences * tokens, sequences * (context + 2.0 * tokens),
                   sequences * tokens * (context + 0.5 * (tokens + 1.0)), sequences if prefill else sequences * tokens,
                   ((sequences, tokens, context),))

    def windowed(self, window) -> tuple:
        """(kv_tokens, attention_pairs) of layers that attend to the last `window` tokens only: each group's
        context clipped to the window (exact for groups wholly inside or beyond it, as a decode batch at its
        mean context is)."""
        kv = pairs = 0.0
        for sequences, tokens, context in self.groups:
            kv = kv + sequences * (np.minimum(context, window) + 2.0 * tokens)
            pairs = pairs + sequences * tokens * np.minimum(context + 0.5 * (tokens + 1.0), window)
        return kv, pairs

    def __add__(self, other: "PassWork") -> "PassWork":
        return PassWork(self.sequences + other.sequences, self.rows + other.rows, self.kv_tokens + other.kv_tokens,
                        self.attention_pairs + other.attention_pairs, self.logits + other.logits,
                        self.groups + other.groups)


def pass_time_s(deployment: Deployment, work: PassWork):
    """GPU time in seconds of one forward pass doing `work` (see module docstring); broadcasts over the
    work's fields. The one function that prices a pass: steps, the simulator and every prediction call it."""
    p = deployment.plan
    vector = _is_array(work.sequences, work.rows, work.kv_tokens, work.attention_pairs, work.logits)
    if p.weights_only_s:
        shape = np.broadcast(work.sequences, work.rows, work.kv_tokens, work.attention_pairs, work.logits).shape
        return np.full(shape, p.weights_only_s) if vector else p.weights_only_s
    launch, q = p.launch_s, p.overlap_p
    if vector:
        total = 0.0
        for _, count, t_mem, t_comp, t_fix in _terms(p, work):
            total = total + count * np.maximum(_overlap(t_mem, t_comp, q, True), np.maximum(t_fix, launch))
        return total
    total, inverse = 0.0, 1.0 / q
    for _, count, t_mem, t_comp, t_fix in _terms(p, work):  # _overlap written out: the hot loop
        hi, lo = (t_mem, t_comp) if t_mem >= t_comp else (t_comp, t_mem)
        work_s = hi * (1.0 + (lo / hi) ** q) ** inverse if hi > 0 else 0.0
        total += count * max(work_s, t_fix, launch)
    return total


def pass_latency_s(model: Model, gpu: GPU, *, batch, tokens, context, tp=1, weight_dtype="bf16", kv_dtype="bf16", runtime=None):
    """GPU time in seconds of one forward pass of `batch` sequences, each adding `tokens` new tokens on
    top of `context` cached ones; broadcasts over batch, tokens and context with numpy (arrays in, array
    out). `runtime` None means `gpu.default_runtime`."""
    deployment = Deployment.of(model, gpu, tp=tp, weight_dtype=weight_dtype, kv_dtype=kv_dtype, runtime=runtime)
    _validate_shape(batch, tokens, context)
    work = PassWork.group(batch, tokens, context)
    if _is_array(batch, tokens, context):
        return np.broadcast_to(pass_time_s(deployment, work), np.broadcast(batch, tokens, context).shape)
    return pass_time_s(deployment, work)


def pass_cost(model: Model, gpu: GPU, *, batch, tokens, context, tp=1, weight_dtype="bf16", kv_dtype="bf16", runtime=None) -> PassCost:
    """`pass_latency_s` with its explanation (scalar inputs): time per operator class and per bound."""
    if _is_array(batch, tokens, context):
        raise InputError("pass_cost takes scalar batch, tokens and context; use pass_latency_s for arrays")
    p = Deployment.of(model, gpu, tp=tp, weight_dtype=weight_dtype, kv_dtype=kv_dtype, runtime=runtime).plan
    _validate_shape(batch, tokens, context)
    if p.weights_only_s:
        return PassCost(p.weights_only_s, "memory", {"weights": p.weights_only_s}, {"memory": p.weights_only_s, "compute": 0.0, "overhead": 0.0})
    breakdown = {cls: 0.0 for cls in OP_CLASSES}
    breakdown["launch"] = 0.0
    bound = {"memory": 0.0, "compute": 0.0, "overhead": 0.0}
    for cls, count, t_mem, t_comp, t_fix in _terms(p, PassWork.group(batch, tokens, context)):
        work_s = _overlap(t_mem, t_comp, p.overlap_p, False)
        gpu_s = max(work_s, t_fix)
        kernel_s = max(gpu_s, p.launch_s)
        breakdown[cls] += count * gpu_s
        breakdown["launch"] += count * (kernel_s - gpu_s)
        limit = "overhead" if kernel_s > work_s or cls == "allreduce" else ("memory" if t_mem >= t_comp else "compute")
        bound[limit] += count * kernel_s
    latency = sum(breakdown.values())
    return PassCost(float(latency), max(bound, key=bound.get), breakdown, bound)


def _runtime_on(gpu: GPU, runtime) -> Runtime:
    """`runtime` as a Runtime: itself, a profile name or path, or None for the GPU's default."""
    if runtime is None or isinstance(runtime, str):
        return load_runtime(runtime or gpu.default_runtime)
    return runtime


def _memory_terms(models, gpu: GPU, tp, weight_dtype, kv_dtype, runtime) -> tuple:
    """(weight bytes of all models, their KV bytes per token, bytes tp GPUs offer, the reserve fraction):
    the memory arithmetic shared by `kv_token_capacity` and `check_memory`. The reserve is the engine's
    (`Runtime.memory_reserve`, `runtime` as in `Deployment.of`) where its profile sizes the KV pool, else
    the GPU profile's memory_reserve_fraction."""
    from .models import kv_bytes_per_token

    check_tp(models[0], tp)
    weights = sum(m.params for m in models) * dtype_bytes(weight_dtype, "weight dtype")
    kv_per_token = sum(kv_bytes_per_token(m, kv_dtype, tp) for m in models)
    reserve = _runtime_on(gpu, runtime).memory_reserve(gpu.memory_bytes, weights / tp, tp)
    if reserve is None:
        reserve = gpu.memory_reserve_fraction
    return weights, kv_per_token, tp * gpu.memory_bytes * (1.0 - reserve), reserve


def _unlimited(gpu: GPU) -> bool:
    return gpu.pass_model == "weights-only" or math.isinf(gpu.usable_memory_bytes)


def kv_token_capacity(models: Sequence[Model], gpu: GPU, *, tp=1, weight_dtype="bf16", kv_dtype="bf16",
                      runtime=None) -> float:
    """KV-cache tokens (summed over sequences) that fit beside the weights of all `models`:
    (tp x usable memory - weight bytes) / (KV bytes per token of all models), usable memory net of the
    engine's reserve (`_memory_terms`). Not rounded; negative when the weights alone do not fit; inf on
    a weights-only GPU or one with infinite memory."""
    if isinstance(models, Model):
        models = [models]
    weights, kv_per_token, offered, _ = _memory_terms(models, gpu, tp, weight_dtype, kv_dtype, runtime)
    if _unlimited(gpu):
        return math.inf
    return (offered - weights) / kv_per_token


def fewest_tp(models: Sequence[Model], gpu: GPU, *, batch, context, weight_dtype="bf16", kv_dtype="bf16",
              runtime=None, max_tp: int = MAX_TP) -> int:
    """The fewest GPUs, a power of two dividing the first model's attention heads, whose memory holds the
    weights of `models` and the KV cache of batch x context tokens (the tp a scenario that names none
    runs at); `check_memory`'s error at the largest such tp when none does."""
    tp, largest = 1, 1
    while tp <= max_tp:
        if models[0].n_heads % tp == 0:
            largest = tp
            if float(batch) * float(context) <= kv_token_capacity(models, gpu, tp=tp, weight_dtype=weight_dtype,
                                                                  kv_dtype=kv_dtype, runtime=runtime):
                return tp
        tp *= 2
    check_memory(models, gpu, batch=batch, context=context, tp=largest, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                 runtime=runtime)
    return largest


def check_memory(models: Sequence[Model], gpu: GPU, *, batch, context, tp=1, weight_dtype="bf16", kv_dtype="bf16",
                 runtime=None) -> None:
    """Raise InputError unless the weights of all `models` plus their KV caches for batch x context
    tokens fit in tp x usable GPU memory (memory less the engine's reserve, `_memory_terms`: what stands
    for activations, CUDA context and allocator slack, as vLLM's gpu_memory_utilization does), i.e.
    unless batch x context <= `kv_token_capacity`."""
    if isinstance(models, Model):
        models = [models]
    tokens = float(np.max(batch)) * float(np.max(context))
    if tokens <= kv_token_capacity(models, gpu, tp=tp, weight_dtype=weight_dtype, kv_dtype=kv_dtype, runtime=runtime):
        return
    weights, kv_per_token, offered, reserve = _memory_terms(models, gpu, tp, weight_dtype, kv_dtype, runtime)
    kv = kv_per_token * tokens
    need = weights + kv
    usable = gpu.memory_bytes * (1.0 - reserve)
    fit = 1
    while fit * usable < need:
        fit *= 2
    names = " + ".join(m.name for m in models)
    raise InputError(
        f"{names} needs {need / 1e9:.1f} GB ({weights / 1e9:.1f} GB {weight_dtype} weights + {kv / 1e9:.1f} GB KV cache) "
        f"but tp={tp} x {gpu.name} offers {offered / 1e9:.1f} GB usable "
        f"({1 - reserve:.0%} of {gpu.memory_bytes / 1e9:.0f} GB each); short by "
        f"{(need - offered) / 1e9:.1f} GB; use tp >= {fit}"
    )
