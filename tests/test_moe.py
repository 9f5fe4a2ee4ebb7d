"""Mixture-of-experts, latent and sliding-window attention in the pass model (costs.py)."""

import numpy as np
import pytest

from sdsl_sim.costs import (Deployment, PassWork, expert_pick_probabilities, expert_weight_bytes, experts_touched,
                            pass_cost, pass_time_s)
from sdsl_sim.errors import InputError
from sdsl_sim.hardware import load_gpu
from sdsl_sim.models import _validate, load_model


def _monte_carlo_touched(rng, experts, per_token, tokens, trials):
    """Distinct experts touched by `tokens` tokens, each routed to `per_token` distinct experts uniformly."""
    counts = []
    chunk = max(1, 4_000_000 // (tokens * experts))
    for start in range(0, trials, chunk):
        n = min(chunk, trials - start)
        picks = rng.random((n, tokens, experts)).argpartition(per_token - 1, axis=2)[:, :, :per_token]
        hit = np.zeros((n, experts), dtype=bool)
        hit[np.arange(n)[:, None], picks.reshape(n, -1)] = True
        counts.append(hit.sum(axis=1))
    return np.concatenate(counts)


@pytest.mark.parametrize("experts", [8, 64, 128, 256])
@pytest.mark.parametrize("per_token", [1, 2, 8])
@pytest.mark.parametrize("tokens", [1, 4, 64, 4096])
def test_experts_touched_matches_uniform_routing_draws(experts, per_token, tokens):
    rng = np.random.default_rng(1000 * experts + 10 * per_token + tokens)
    counts = _monte_carlo_touched(rng, experts, per_token, tokens, trials={1: 100, 4: 20000, 64: 4000}.get(tokens, 20))
    expected = experts_touched(experts, per_token, tokens)
    mean, half_width = counts.mean(), 3.0 * counts.std(ddof=1) / np.sqrt(counts.size)
    assert half_width < 0.01 * expected  # the draw is precise enough for the 1% check to mean something
    assert abs(mean - expected) <= max(0.01 * expected, half_width)


def test_experts_touched_limits():
    assert experts_touched(128, 8, 1) == pytest.approx(8)
    assert experts_touched(128, 8, 1e6) == pytest.approx(128)
    u = experts_touched(256, 8, np.arange(1, 300))
    assert np.all(np.diff(u) > 0) and u[-1] < 256


@pytest.mark.parametrize("skew", [0.0, 0.5, 1.0, 2.0])
def test_pick_probabilities_are_a_routing(skew):
    pick = expert_pick_probabilities(128, 8, skew)
    assert pick.sum() == pytest.approx(8) and np.all(pick <= 1 + 1e-12) and np.all(pick > 0)
    assert np.all(np.diff(pick) <= 1e-15)  # popularity falls with rank
    if skew == 0:
        np.testing.assert_allclose(pick, 8 / 128)
        assert experts_touched(128, 8, 16, pick) == pytest.approx(experts_touched(128, 8, 16))
    else:
        assert experts_touched(128, 8, 16, pick) < experts_touched(128, 8, 16)  # imbalance touches fewer


def test_pick_probabilities_cap_at_one_expert_per_token():
    pick = expert_pick_probabilities(16, 8, 4.0)  # a steep Zipf would give the top expert > 1
    assert pick[0] == 1.0 and pick.sum() == pytest.approx(8)


H100 = load_gpu("h100-sxm")


def _deployment(name, **kwargs):
    return Deployment.of(load_model(name), H100, **kwargs)


def test_verification_reads_more_experts_at_low_batch_only():
    # Qwen3-30B-A3B on one H100: verifying 5 tokens at batch 1 reads >= 3x the expert bytes of a 1-token
    # pass (U(5) / U(1) = 35.3 / 8); at batch 64 both passes touch nearly all 128 experts.
    moe = _deployment("qwen3-30b-a3b")
    ratio = [expert_weight_bytes(moe, PassWork.group(b, 5, 1024)) / expert_weight_bytes(moe, PassWork.group(b, 1, 1024))
             for b in (1, 64)]
    assert ratio[0] >= 3.0 and ratio[1] < 1.1
    assert pass_time_s(moe, PassWork.group(1, 5, 1024)) > 1.5 * pass_time_s(moe, PassWork.group(1, 1, 1024))
    # A dense model of about the same active size (Qwen3-4B, 4.0B against 3.35B) shows no such rise.
    dense = _deployment("qwen3-4b")
    assert expert_weight_bytes(dense, PassWork.group(1, 5, 1024)) == 0
    assert pass_time_s(dense, PassWork.group(1, 5, 1024)) < 1.1 * pass_time_s(dense, PassWork.group(1, 1, 1024))


def test_expert_bytes_count_the_touched_experts_once():
    m = load_model("mixtral-8x7b")
    d = Deployment.of(m, H100, tp=2)
    expert_bytes_per_gpu = m.expert_params * 2.0 / 2  # bf16, sharded over tp 2
    assert expert_weight_bytes(d, PassWork.group(1, 1, 0)) == pytest.approx(m.moe_layers * 2 * expert_bytes_per_gpu)
    assert expert_weight_bytes(d, PassWork.group(64, 1, 0)) == pytest.approx(m.moe_layers * 8 * expert_bytes_per_gpu)


def test_moe_pass_breakdown_has_experts_and_dense_layers():
    cost = pass_cost(load_model("deepseek-v3"), load_gpu("h200-sxm"), batch=1, tokens=1, context=0, tp=8, weight_dtype="fp8")
    assert cost.breakdown_s["experts"] > cost.breakdown_s["mlp"] > 0  # 58 MoE layers, 3 dense layers and shared experts
    assert pass_cost(load_model("llama-3.1-8b"), H100, batch=1, tokens=1, context=0).breakdown_s["experts"] == 0


def test_latent_attention_reads_the_latent_cache():
    # DeepSeek-V3's cache is 576 values per token and layer, the same on every GPU; at long context the
    # attention time per GPU does not fall with tp, unlike grouped attention's.
    m, gpu = load_model("deepseek-v3"), load_gpu("h200-sxm")
    attn = [pass_cost(m, gpu, batch=32, tokens=1, context=32768, tp=tp, weight_dtype="fp8").breakdown_s["attention"]
            for tp in (4, 8)]
    assert attn[1] == pytest.approx(attn[0], rel=0.05)
    llama = load_model("llama-3.1-70b")
    gqa = [pass_cost(llama, gpu, batch=32, tokens=1, context=32768, tp=tp).breakdown_s["attention"] for tp in (4, 8)]
    assert gqa[1] < 0.6 * gqa[0]


def test_sliding_window_layers_stop_growing_with_context():
    m = load_model("gpt-oss-20b")
    d = Deployment.of(m, H100)
    work = PassWork.group(16, 1, 100.0) + PassWork.group(16, 1, 10000.0)
    kv, pairs = work.windowed(128)
    assert kv == pytest.approx(16 * (100 + 2) + 16 * (128 + 2))
    assert pairs == pytest.approx(16 * 101 + 16 * 128)
    # Past the window, a windowed layer's attention stops growing: half of gpt-oss-20b's layers.
    step = [pass_cost(m, H100, batch=16, tokens=1, context=c).breakdown_s["attention"] for c in (8192, 16384, 32768)]
    full_only = [pass_cost(load_model("qwen3-4b"), H100, batch=16, tokens=1, context=c).breakdown_s["attention"]
                 for c in (8192, 16384, 32768)]
    assert (step[2] - step[1]) / (full_only[2] - full_only[1]) < (step[1] - step[0]) / (full_only[1] - full_only[0]) * 1.5
    assert pass_time_s(d, PassWork.group(1, 1, 64)) < pass_time_s(d, PassWork.group(1, 1, 60000))


@pytest.mark.parametrize("entry, message", [
    ({"num_experts": 8, "experts_per_token": 2}, "mixture of experts needs all of"),
    ({"num_experts": 8, "experts_per_token": 9, "moe_ffn_size": 64}, "exceeds num_experts"),
    ({"shared_experts": 1}, "needs a mixture of experts"),
    ({"num_experts": 8, "experts_per_token": 2, "moe_ffn_size": 64, "routing_skew": 5.0}, "routing_skew"),
    ({"num_experts": 8, "experts_per_token": 2, "moe_ffn_size": 64, "first_dense_layers": 3}, "exceeds n_layers"),
    ({"kv_lora_rank": 64}, "latent attention needs all of"),
    ({"q_lora_rank": 64}, "needs multi-head latent attention"),
    ({"sliding_window": 128}, "sliding-window attention needs all of"),
])
def test_bad_architecture_is_one_line(entry, message):
    base = {"n_layers": 2, "hidden_size": 64, "n_heads": 4, "ffn_size": 128, "ffn_type": "swiglu",
            "vocab_size": 100, "tied_embeddings": True}
    with pytest.raises(InputError, match=message):
        _validate("bad", {**base, **entry})


def test_moe_speedup_peaks_at_medium_batch_where_the_dense_one_does_not():
    # The MoESD shape (arXiv 2505.19645): same draft, same acceptance, same GPU; only the pass costs differ.
    from sdsl_sim.analytic.leviathan import expected_tokens_per_iteration
    from sdsl_sim.step import StepPricer

    expected = np.array([expected_tokens_per_iteration(0.8, g) for g in range(9)])
    batches = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    curves = {}
    for target in ("qwen3-30b-a3b", "qwen3-4b"):
        t = Deployment.of(load_model(target), H100, weight_dtype="fp8", runtime="vllm")
        pricer = StepPricer.of(t, Deployment.of(load_model("qwen3-0.6b"), H100, weight_dtype="fp8",
                                                runtime=t.runtime.for_draft()))
        tpot = [pricer.tpot_by_gamma(b, 640, expected) for b in batches]
        curves[target] = np.array([t[0] / t.min() for t in tpot])
    moe, dense = curves["qwen3-30b-a3b"], curves["qwen3-4b"]
    assert batches[int(np.argmax(moe))] >= 8 and moe.max() > 1.3 * moe[0]
    assert dense.max() < 1.02 * dense[0] and dense[-1] < dense[0]
