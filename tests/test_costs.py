"""Pass-latency roofline against the public micro-benchmarks (sdsl_sim/data/microbenchmarks.toml) and the
issue's done-when shapes (verification cost, small-draft floor, memory refusal, ideal machine)."""

from pathlib import Path

import numpy as np
import pytest

from sdsl_sim.costs import (
    Deployment,
    PassWork,
    pass_time_s,
    bandwidth_efficiency,
    check_memory,
    gemm_flops_efficiency,
    gemm_time_s,
    kv_token_capacity,
    pass_cost,
    pass_latency_s,
    saturating_efficiency,
)
from sdsl_sim.errors import InputError
from sdsl_sim.hardware import load_gpu, load_runtime, scale_gpu
from sdsl_sim.microbench import KINDS, load_rows, measured, predict
from sdsl_sim.models import kv_bytes_per_token, load_model

A100, H100 = "a100-80gb-sxm", "h100-sxm"

MICRO_ROWS = [row for row in load_rows() if row["role"] == "calibration"]


@pytest.mark.parametrize("row", MICRO_ROWS, ids=[row["id"] for row in MICRO_ROWS])
def test_public_micro_benchmark_is_reproduced(row):
    # sdsl_sim/data/microbenchmarks.toml (sources in hardware_profiles/SOURCES.md): Vidur GEMV and per-layer
    # times within 7% / 15%, the fp8 GEMV bandwidth, dense-GEMM FLOP/s and all-reduce latency inside their ranges.
    low, high = measured(row)
    assert low <= predict(row) <= high


def test_micro_benchmarks_cover_the_issue_rows():
    ids = {row["id"] for row in MICRO_ROWS}
    kinds = {row["kind"] for row in MICRO_ROWS}
    assert {"vidur-layer-h100-llama-2-7b-n256", "vidur-layer-h100-llama-2-70b-n256"} <= ids  # the former xfail
    assert kinds == set(KINDS) - {"attention_decode"} and sum(row["kind"] == "gemm" and row["tolerance"] <= 0.07 for row in MICRO_ROWS) == 9


def test_h100_large_gemms_saturate_at_fewer_rows_than_small_ones():
    # The n=256 rows of SOURCES.md: Llama-2-7B's GEMMs reach 0.40 of peak, 70B's 0.62, because the 7B's
    # 4096-wide outputs make too few tiles to fill 132 SMs.
    gpu = load_gpu(H100)
    assert gemm_flops_efficiency(gpu, 256, 4096) < 0.6 * gemm_flops_efficiency(gpu, 256, 57344)


@pytest.mark.parametrize("gpu", [H100, "b200"])
@pytest.mark.parametrize("model", ["llama-3.1-8b", "qwen3-30b-a3b"])
def test_a_pass_never_gets_cheaper_with_more_rows(model, gpu):
    # A second row tile costs a whole tile's time even when few of its rows are used, so 320 rows
    # cannot beat 256 (before: 8B out_proj 14.0 us at 320 rows against 22.4 us at 256 on an H100), and
    # the best verification tree cannot grow with batch for this artefact's sake.
    m, g = load_model(model), load_gpu(gpu)
    tokens = np.arange(1.0, 1200.0)
    seconds = pass_latency_s(m, g, batch=1, tokens=tokens, context=2048)
    assert np.all(np.diff(seconds) >= 0)
    for n in (m.hidden_size, 2 * m.ffn_size, m.vocab_size):
        gemm = gemm_time_s(g, rows=tokens, k=m.hidden_size, n=n)
        assert np.all(np.diff(gemm) >= 0)


@pytest.mark.parametrize("gpu", [A100, H100, "h200-sxm", "mi300x", "l40s"])
def test_what_if_keeps_low_intensity_gemms_memory_bound(gpu):
    # Issue 9: at 4x bandwidth and 0.5x FLOP/s a 5-row pass has an arithmetic intensity (~5 FLOP/byte) far
    # below the ridge, so it must not come out compute-bound.
    what_if = scale_gpu(load_gpu(gpu), bandwidth=4.0, flops=0.5)
    cost = pass_cost(load_model("llama-3.1-8b"), what_if, batch=1, tokens=5, context=512)
    ridge = what_if.bf16_flop_per_s / what_if.hbm_bandwidth_bytes_per_s
    assert ridge > 3 * 5 and cost.bound != "compute" and cost.bound_s["compute"] == 0.0


def test_verification_pass_shape_llama2_7b_a100():
    m, gpu = load_model("llama-2-7b"), load_gpu(A100)
    one, k16, k64, k256 = (pass_latency_s(m, gpu, batch=1, tokens=k, context=512) for k in (1, 16, 64, 256))
    assert k16 <= 1.10 * one  # done-when: 16-token pass within 10% of a 1-token pass
    assert k64 <= 1.16 * one  # SOURCES.md: up to 64 tokens within ~16%
    assert k256 >= 1.5 * one  # done-when: 256 tokens at least 1.5x


def test_small_draft_floor_opt125m_vs_opt13b():
    gpu = load_gpu(A100)
    small = pass_cost(load_model("opt-125m"), gpu, batch=1, tokens=1, context=512)
    big = pass_cost(load_model("opt-1.3b"), gpu, batch=1, tokens=1, context=512)
    assert small.latency_s / big.latency_s >= 0.15  # not 10x faster despite 10.5x fewer parameters
    # ... and the breakdown says why: kernel floors, not weight reads, dominate the small model.
    assert small.bound == "overhead" and big.bound == "memory"
    assert small.bound_s["overhead"] > 0.5 * small.latency_s


def test_breakdown_sums_to_latency_and_matches_vectorised_path():
    for model, gpu, runtime, tp in (("llama-3.1-70b", A100, "eager", 4), ("qwen2.5-7b", H100, None, 1)):
        m, g = load_model(model), load_gpu(gpu)
        kw = dict(batch=8, tokens=5, context=2048, tp=tp, runtime=runtime)
        cost = pass_cost(m, g, **kw)
        assert sum(cost.breakdown_s.values()) == pytest.approx(cost.latency_s)
        assert sum(cost.bound_s.values()) == pytest.approx(cost.latency_s)
        assert pass_latency_s(m, g, **kw) == pytest.approx(cost.latency_s)


@pytest.mark.parametrize("tp", [1, 4])
def test_broadcasts_over_batch_tokens_context(tp):
    m, gpu = load_model("llama-3-8b"), load_gpu(H100)
    batch = np.array([1, 4, 32])[:, None, None]
    tokens = np.array([1, 8])[None, :, None]
    context = np.array([0, 1000, 30000])[None, None, :]
    out = pass_latency_s(m, gpu, batch=batch, tokens=tokens, context=context, tp=tp)
    assert out.shape == (3, 2, 3)
    for i, b in enumerate((1, 4, 32)):
        for j, t in enumerate((1, 8)):
            for k, c in enumerate((0, 1000, 30000)):
                assert out[i, j, k] == pytest.approx(pass_latency_s(m, gpu, batch=b, tokens=t, context=c, tp=tp))
    assert np.all(np.diff(out, axis=0) >= 0) and np.all(np.diff(out, axis=1) >= 0) and np.all(np.diff(out, axis=2) >= 0)


def test_regimes_compute_bound_and_kv_bound():
    m, gpu = load_model("llama-2-7b"), load_gpu(A100)
    assert pass_cost(m, gpu, batch=64, tokens=16, context=512).bound == "compute"
    long = pass_cost(m, gpu, batch=32, tokens=1, context=8192)
    assert long.bound == "memory"
    assert long.breakdown_s["attention"] == max(long.breakdown_s.values())  # KV reads dominate


def test_eager_runtime_adds_launch_gaps():
    m, gpu = load_model("llama-3.2-1b"), load_gpu(H100)
    graphs = pass_cost(m, gpu, batch=1, tokens=1, context=512, runtime="default")
    eager = pass_cost(m, gpu, batch=1, tokens=1, context=512, runtime=load_runtime("eager"))
    assert graphs.breakdown_s["launch"] == 0.0
    # SOURCES.md: without CUDA graphs the host needs ~0.5-1 ms per forward of a 1B model, and a
    # launch gap only shows where the kernel is shorter than its launch.
    assert 0.1e-3 <= eager.latency_s - graphs.latency_s <= 1.0e-3
    assert eager.breakdown_s["launch"] == pytest.approx(eager.latency_s - graphs.latency_s)


def test_tensor_parallel_shrinks_weight_time():
    m, gpu = load_model("llama-3.1-70b"), load_gpu(H100)
    tp2, tp8 = (pass_cost(m, gpu, batch=1, tokens=1, context=512, tp=t) for t in (2, 8))
    assert tp8.breakdown_s["mlp"] < 0.3 * tp2.breakdown_s["mlp"]
    assert tp8.breakdown_s["allreduce"] > tp2.breakdown_s["allreduce"]


def test_weight_dtypes():
    m = load_model("llama-3-8b")
    h100, a100 = load_gpu(H100), load_gpu(A100)
    decode = {d: pass_latency_s(m, h100, batch=1, tokens=1, context=512, weight_dtype=d) for d in ("bf16", "fp16", "fp8", "int8", "int4")}
    assert decode["fp16"] == decode["bf16"]
    # fp8 GEMMs on FP8 tensor cores read their weights below the bf16 curve (CUTLASS #1139); int8 here is
    # weight-only at the bf16 curve.
    assert decode["int4"] < decode["int8"] < decode["fp8"] < decode["bf16"]
    # compute-bound prefill: FP8 tensor cores on H100 double the peak, of which matmuls reach 0.71 (bf16 0.80);
    # the A100 has none.
    prefill = lambda g, d: pass_cost(m, g, batch=1, tokens=4096, context=0, weight_dtype=d).breakdown_s["mlp"]
    assert prefill(h100, "bf16") / prefill(h100, "fp8") == pytest.approx(2.0 * 0.71 / 0.80, rel=0.05)
    assert prefill(a100, "bf16") / prefill(a100, "fp8") == pytest.approx(1.0, rel=0.05)


def test_fp8_skinny_gemm_bandwidth_matches_cutlass_1139():
    # SOURCES.md, Quantised kernels: an fp8 16 x 14336 x 4096 GEMM on H100 peaks near 2.2 TB/s.
    k, n, rows = 4096, 14336, 16
    seconds = float(gemm_time_s(load_gpu(H100), rows=rows, k=k, n=n, weight_dtype="fp8"))
    assert (k * n + 2 * rows * (k + n)) / seconds == pytest.approx(2.2e12, rel=0.03)


def test_sampling_reads_fp32_logits_of_every_sampled_row_and_prefill_samples_one():
    m, gpu = load_model("llama-3.1-8b"), load_gpu(H100)
    small, large = (pass_cost(m, gpu, batch=b, tokens=1, context=512).breakdown_s["sampling"] for b in (16, 256))
    # 256 rows x 128256 x 4 B = 131 MB per kernel: bandwidth-bound, so ~16x the 16-row cost (less: efficiency rises)
    assert 8 < large / small < 16 and large > 2 * 131e6 / gpu.hbm_bandwidth_bytes_per_s
    deployment = Deployment.of(m, gpu)
    chunk = PassWork.group(1, 2048, 0.0, prefill=True)
    decode = PassWork.group(2048, 1, 0.0)
    # same GEMM rows, but a prompt chunk computes one row of logits, not 2048
    assert pass_time_s(deployment, chunk) < pass_time_s(deployment, decode) - 0.5 * pass_cost(
        m, gpu, batch=2048, tokens=1, context=0).breakdown_s["lm_head"]


def test_ideal_machine_is_weight_bytes_over_bandwidth():
    gpu = load_gpu("ideal")
    draft, target = load_model("opt-125m"), load_model("opt-13b")
    t = pass_latency_s(target, gpu, batch=1, tokens=1, context=0)
    assert t == pytest.approx(target.params * 2 / gpu.hbm_bandwidth_bytes_per_s, rel=1e-12)
    for kw in (dict(batch=64, tokens=9, context=30000), dict(batch=1, tokens=1, context=0)):
        ratio = pass_latency_s(draft, gpu, **kw) / pass_latency_s(target, gpu, **kw)
        assert ratio == pytest.approx(draft.params / target.params, rel=1e-12)
    arr = pass_latency_s(target, gpu, batch=np.array([1, 2, 3]), tokens=1, context=0)
    assert arr.shape == (3,) and np.all(arr == t)
    check_memory([load_model("llama-3.1-405b")], gpu, batch=1024, context=1e6)  # no memory limit
    assert load_gpu("ideal").default_runtime == "none"


def test_scaled_bandwidth_speeds_memory_bound_pass():
    m, gpu = load_model("llama-2-13b"), load_gpu(A100)
    base = pass_latency_s(m, gpu, batch=1, tokens=1, context=512)
    fast = pass_latency_s(m, scale_gpu(gpu, bandwidth=2.0), batch=1, tokens=1, context=512)
    assert 0.5 < fast / base < 0.6  # kernel floors do not scale with bandwidth


def test_memory_check_refuses_70b_on_one_a100():
    m, gpu = load_model("llama-3.1-70b"), load_gpu(A100)
    # bf16 weights + one 2048-token KV cache, less 90% of the profile's 81920 MiB (driver-reported total)
    short_gb = (m.params * 2.0 + 2048 * kv_bytes_per_token(m, "bf16") - 0.9 * 81920 * 2**20) / 1e9
    with pytest.raises(InputError, match=rf"short by {short_gb:.1f} GB; use tp >= 2") as info:
        check_memory([m], gpu, batch=1, context=2048)
    assert "a100-80gb-sxm" in str(info.value) and "llama-3.1-70b" in str(info.value)
    check_memory([m], gpu, batch=1, context=2048, tp=2)
    with pytest.raises(InputError, match="use tp >= 4"):  # a big KV cache pushes it past two GPUs
        check_memory([m], gpu, batch=16, context=8192, tp=2)
    with pytest.raises(InputError, match="tp >= 4"):  # draft and target share the GPUs
        check_memory([m, m], gpu, batch=1, context=2048, tp=2)


@pytest.mark.parametrize("kw,message", [
    (dict(batch=0), "batch 0 must be finite and >= 1"),
    (dict(tokens=np.array([1, 0])), "tokens"),
    (dict(context=-1), "context -1"),
    (dict(context=np.array([0, -5])), "context"),
    (dict(weight_dtype="fp6"), "unknown weight dtype 'fp6'"),
    (dict(tp=3), "tp 3 does not divide"),
    (dict(tp=0), "tp 0 must be a positive integer"),
    (dict(runtime="turbo"), "unknown runtime 'turbo'"),
])
def test_bad_inputs_raise_input_error(kw, message):
    args = dict(batch=1, tokens=1, context=0) | kw
    with pytest.raises(InputError, match=message):
        pass_latency_s(load_model("llama-2-7b"), load_gpu(A100), **args)


def test_saturating_efficiency_curve():
    x = np.array([0.5, 1.0, 2.0, 1e9])
    out = saturating_efficiency(0.8, 1.0, x, 2.0)
    assert out[1] == pytest.approx(0.4)  # half the maximum at x = half
    assert out[0] == pytest.approx(0.8 / 5) and out[-1] == pytest.approx(0.8)
    gpu = load_gpu(H100)
    assert bandwidth_efficiency(gpu, 30e6) == pytest.approx(
        gpu.bw_eff_max / (1 + (gpu.bw_eff_half_bytes / 30e6) ** gpu.bw_eff_exponent))


@pytest.mark.parametrize("batch,tokens,context", [(1, 1, 512), (8, 5, 2048), (64, 16, 0)])
def test_pass_gemms_cost_what_gemm_time_s_says(batch, tokens, context):
    # The pass model's inner loop and the public per-GEMM roofline use the same efficiency curves.
    m, gpu = load_model("llama-2-7b"), load_gpu(A100)
    cost = pass_cost(m, gpu, batch=batch, tokens=tokens, context=context)
    h, rows = m.hidden_size, batch * tokens
    qkv = gemm_time_s(gpu, rows=rows, k=h, n=m.q_size + 2 * m.kv_size)
    mlp = gemm_time_s(gpu, rows=rows, k=h, n=2 * m.ffn_size) + gemm_time_s(gpu, rows=rows, k=m.ffn_size, n=h)
    assert cost.breakdown_s["qkv"] == pytest.approx(m.n_layers * qkv, rel=1e-12)
    assert cost.breakdown_s["mlp"] == pytest.approx(m.n_layers * mlp, rel=1e-12)


def test_none_runtime_keeps_gpu_kernels_and_ideal_is_unchanged():
    m, gpu = load_model("llama-3.2-1b"), load_gpu(H100)
    kw = dict(batch=4, tokens=3, context=1024)
    none = pass_cost(m, gpu, runtime="none", **kw)
    assert none.latency_s == pytest.approx(pass_cost(m, gpu, runtime="default", **kw).latency_s, rel=1e-12)
    # the norm/rotary/activation kernels are still there: more than the 2 per-pass kernels
    assert none.breakdown_s["norms_elementwise"] > (2 + m.n_layers) * gpu.kernel_floor_s
    ideal = load_gpu("ideal")
    for runtime in ("none", "default", "eager"):
        assert pass_latency_s(m, ideal, runtime=runtime, **kw) == m.params * 2 / ideal.hbm_bandwidth_bytes_per_s


@pytest.mark.parametrize("models,gpu,tp,kv_dtype", [
    (["llama-3.1-70b"], A100, 2, "bf16"),
    (["llama-3.1-8b", "llama-3.2-1b"], H100, 1, "fp8"),
    (["llama-3.1-405b", "llama-3.1-8b"], "h200-sxm", 8, "bf16"),
])
def test_kv_token_capacity_is_the_check_memory_boundary(models, gpu, tp, kv_dtype):
    ms, g = [load_model(n) for n in models], load_gpu(gpu)
    cap = kv_token_capacity(ms, g, tp=tp, kv_dtype=kv_dtype)
    # closed form: weights + capacity x KV bytes per token fill tp x usable memory exactly
    weights = sum(m.params for m in ms) * 2.0
    kv_per_token = sum(kv_bytes_per_token(m, kv_dtype) for m in ms)
    assert weights + cap * kv_per_token == pytest.approx(tp * g.usable_memory_bytes, rel=1e-12)
    fits = int(cap)
    assert fits > 1000
    check_memory(ms, g, batch=1, context=fits, tp=tp, kv_dtype=kv_dtype)
    with pytest.raises(InputError, match="short by"):
        check_memory(ms, g, batch=1, context=fits + 1, tp=tp, kv_dtype=kv_dtype)


def test_kv_token_capacity_edges():
    m = load_model("llama-3.1-70b")
    assert kv_token_capacity([m], load_gpu("ideal")) == float("inf")
    assert kv_token_capacity([m], load_gpu(A100)) < 0  # the weights alone do not fit one A100
    assert kv_token_capacity(m, load_gpu(A100), tp=2) == kv_token_capacity([m], load_gpu(A100), tp=2)
    with pytest.raises(InputError, match="tp 3 does not divide"):
        kv_token_capacity([m], load_gpu(A100), tp=3)


def _budget_scenario(**hardware):
    from sdsl_sim.scenario import scenario_from_dict

    return scenario_from_dict({"model": {"target": "llama-3.1-70b", "draft": "llama-3.2-1b"},
                               "hardware": {"name": A100, "tp": 4, **hardware},
                               "workload": {"requests": 2, "batch": 2, "prompt_tokens": 512, "output_tokens": 64}})


def test_kv_token_budget_is_the_uncapped_closed_form_and_the_baseline_gets_more():
    import dataclasses

    from sdsl_sim.sim.setup import draw_workloads, setup

    target, draft, gpu = load_model("llama-3.1-70b"), load_model("llama-3.2-1b"), load_gpu(A100)
    s = setup(_budget_scenario())
    cap = kv_token_capacity([target, draft], gpu, tp=4)
    assert 4096 < cap < 10**9
    assert s.kv_token_budget == cap  # memory-limited, not capped at what the workload needs
    assert s.kv_token_budget > 2 * (512 + 64)
    # the baseline loads no draft model: its KV cache holds the draft's weights' worth of tokens more
    assert s.base_kv_token_budget == kv_token_capacity([target], gpu, tp=4) > s.kv_token_budget
    spec_w, base_w = draw_workloads(s, np.random.default_rng(0), np.random.default_rng(1))
    assert (spec_w.kv_token_budget, base_w.kv_token_budget) == (s.kv_token_budget, s.base_kv_token_budget)
    # the scenario's memory reserve reaches the budget
    reserved = setup(_budget_scenario(memory_reserve_fraction=0.2)).kv_token_budget
    assert reserved == kv_token_capacity([target, draft], dataclasses.replace(gpu, memory_reserve_fraction=0.2),
                                         tp=4) < cap
    assert setup(_budget_scenario(name="ideal", tp=1)).kv_token_budget == float("inf")


def test_one_request_longer_than_the_kv_capacity_is_refused_when_the_scenario_is_resolved():
    from sdsl_sim.scenario import scenario_from_dict
    from sdsl_sim.sim.setup import resolve

    cap = kv_token_capacity([load_model("llama-3.1-70b"), load_model("llama-3.2-1b")], load_gpu(A100), tp=4)

    def scenario(prompt_tokens, **scheduler):
        return scenario_from_dict({"hardware": {"name": A100, "tp": 4}, "scheduler": scheduler,
                                   "workload": {"prompt_tokens": prompt_tokens, "output_tokens": 10}}, source="s.toml")

    with pytest.raises(InputError, match="s.toml: key 'hardware.tp': .* short by"):  # check_memory's message
        resolve(scenario(int(cap) - 9))
    # The request is checked at its longest plus the largest lookahead (max_gamma 16 by default: 17 slots),
    # in whole 16-token blocks when paged: the longest prompt that fits ends its last block at or below cap.
    lookahead, block = 16 + 1, 16
    fits = int(cap) // block * block - lookahead - 10
    assert resolve(scenario(fits)).longest_tokens == fits + 10
    with pytest.raises(InputError, match="short by"):
        resolve(scenario(fits + 1))  # one more token needs one more block
    # reserving whole requests, there are no blocks: the boundary is the token count itself
    resolve(scenario(int(cap) - lookahead - 10, kv_allocation="reserve"))
    with pytest.raises(InputError, match="short by"):
        resolve(scenario(int(cap) - lookahead - 9, kv_allocation="reserve"))


def test_h100_nvl_all_reduces_cross_pcie_beyond_the_bridged_pair():
    m, gpu = load_model("llama-3.1-70b"), load_gpu("h100-nvl")
    per_allreduce_us = {tp: pass_cost(m, gpu, batch=1, tokens=1, context=512, tp=tp, runtime="vllm")
                        .breakdown_s["allreduce"] / (2 * m.n_layers) * 1e6 for tp in (2, 4)}
    runtime = load_runtime("vllm")
    # tp 2: vLLM's custom all-reduce over the bridge; tp 4: NCCL over PCIe, the fallback latency
    assert per_allreduce_us[2] < 1e6 * (runtime.allreduce_latency_s + runtime.allreduce_latency_per_peer_s) + 2
    assert per_allreduce_us[4] > 1e6 * (gpu.fallback_allreduce_latency_s + 3 * gpu.fallback_allreduce_latency_per_peer_s)


def test_a_link_reach_needs_its_fallback_link(tmp_path):
    text = (Path(__file__).parents[1] / "hardware_profiles" / "h100-nvl.toml").read_text()
    path = tmp_path / "bad.toml"
    path.write_text(text.replace("fallback_link_eff = 0.80\n", ""))
    with pytest.raises(InputError, match="'link_max_tp' needs all of"):
        load_gpu(str(path))


def test_held_out_rows_are_priced_and_carry_no_tolerance(tmp_path):
    held = [row for row in load_rows() if row["role"] == "held-out"]
    assert held and all(predict(row) > 0 for row in held)
    path = tmp_path / "rows.toml"
    path.write_text('[[row]]\nid = "x"\nkind = "attention_decode"\nrole = "held-out"\ngpu = "h100-sxm"\n'
                    'weight_dtype = "bf16"\nsource = "s"\nmodel = "llama-2-7b"\nbatch = 1\ncontext = 8\n'
                    'measured_us = 1.0\ntolerance = 0.1\n')
    with pytest.raises(InputError, match="role 'held-out'; expected 'calibration' \\(with a tolerance\\)"):
        load_rows(path)
