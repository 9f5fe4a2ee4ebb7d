"""Model catalog: parameter counts from the architecture against published sizes; synthetic models."""

import numpy as np
import pytest

from sdsl_sim.errors import InputError
from sdsl_sim.models import kv_bytes_per_token, list_models, load_model, synthetic_model
from sdsl_sim.models import _validate

# Published parameter counts: Hugging Face model cards / safetensors metadata of the repositories named
# in the catalog, and the papers (OPT: Zhang et al. 2022 Table 1; Llama 2: Touvron et al. 2023;
# Llama 3: "The Llama 3 Herd of Models" 2024; Qwen1.5/Qwen2.5 model cards).
PUBLISHED = {
    "opt-125m": 125.2e6, "opt-350m": 331.2e6, "opt-1.3b": 1.316e9, "opt-2.7b": 2.652e9,
    "opt-6.7b": 6.658e9, "opt-13b": 12.85e9, "opt-30b": 29.97e9, "opt-66b": 65.7e9,
    "qwen1.5-0.5b": 0.464e9, "qwen1.5-1.8b": 1.837e9, "qwen1.5-4b": 3.95e9, "qwen1.5-7b": 7.72e9,
    "qwen1.5-14b": 14.2e9, "qwen1.5-32b": 32.5e9, "qwen1.5-72b": 72.3e9, "qwen1.5-110b": 111e9,
    "qwen2.5-0.5b": 0.49e9, "qwen2.5-1.5b": 1.54e9, "qwen2.5-3b": 3.09e9, "qwen2.5-7b": 7.62e9,
    "qwen2.5-14b": 14.7e9, "qwen2.5-32b": 32.5e9, "qwen2.5-72b": 72.7e9,
    "llama-2-7b": 6.74e9, "llama-2-13b": 13.0e9, "llama-2-70b": 69.0e9,
    "llama-3-8b": 8.03e9, "llama-3-70b": 70.6e9, "llama-3.1-8b": 8.03e9, "llama-3.1-70b": 70.6e9,
    "llama-3.1-405b": 405.9e9, "llama-3.2-1b": 1.24e9, "llama-3.2-3b": 3.21e9,
    "seed-oss-36b": 36.15e9,
    "vicuna-7b": 6.74e9, "vicuna-13b": 13.0e9, "vicuna-33b": 32.5e9, "vicuna-68m": 68.0e6,
}


# The 2025 families. Model cards print rounded figures ("3.3B", "37B"), some truncated, so a count passes
# within 1% or within one unit of the figure's last printed digit. Sources: the Qwen3 model cards (total,
# and "non-embedding" for the dense ones, which is params - embedding_params); Qwen3 MoE cards ("30.5B in
# total and 3.3B activated"; "235B / 22B"); Mistral's "Mixtral of experts" post (46.7B total, 12.9B active);
# the gpt-oss model card's parameter table (20.91B / 3.61B, 116.83B / 5.13B, its active count leaving out
# the embedding table); the DeepSeek-V3 report (671B total, 37B activated; the Hugging Face checkpoint's
# 685B adds the MTP module); Meta's Llama 4 post (17B active, 109B total, which includes the vision
# encoder the catalog leaves out: see test_llama_4_scout_is_its_text_decoder).
PUBLISHED_2025 = {  # name: (total, active or None for dense, printed digits' unit)
    "qwen3-0.6b": (0.6e9, None, 0.1e9), "qwen3-1.7b": (1.7e9, None, 0.1e9), "qwen3-4b": (4.0e9, None, 0.1e9),
    "qwen3-8b": (8.2e9, None, 0.1e9), "qwen3-14b": (14.8e9, None, 0.1e9), "qwen3-32b": (32.8e9, None, 0.1e9),
    "qwen3-30b-a3b": (30.5e9, 3.3e9, 0.1e9), "qwen3-235b-a22b": (235e9, 22e9, 1e9),
    "mixtral-8x7b": (46.7e9, 12.9e9, 0.1e9), "gpt-oss-20b": (20.91e9, 3.61e9, 0.01e9),
    "gpt-oss-120b": (116.83e9, 5.13e9, 0.01e9), "deepseek-v3": (671e9, 37e9, 1e9),
}
QWEN3_NON_EMBEDDING = {"qwen3-0.6b": 0.44e9, "qwen3-1.7b": 1.4e9, "qwen3-4b": 3.6e9, "qwen3-8b": 6.95e9,
                       "qwen3-14b": 13.2e9, "qwen3-32b": 31.2e9}
ACTIVE_WITHOUT_EMBEDDING = ("gpt-oss-20b", "gpt-oss-120b")  # the card's "Embed + Unembed" row counts one in active


def _matches_printed(count, published, unit):
    return abs(count - published) <= max(0.01 * published, unit)


def test_catalog_has_every_model_in_the_issue():
    assert set(PUBLISHED) | set(PUBLISHED_2025) | {"llama-4-scout"} <= set(list_models())


@pytest.mark.parametrize("name", sorted(PUBLISHED_2025))
def test_2025_params_match_published(name):
    total, active, unit = PUBLISHED_2025[name]
    m = load_model(name)
    assert _matches_printed(m.params, total, unit), m.params
    if active is None:
        assert m.active_params == m.params and not m.is_moe
        non_embedding = m.params - m.embedding_params - m.lm_head_params
        assert _matches_printed(non_embedding, QWEN3_NON_EMBEDDING[name], 0.01e9), non_embedding
    else:
        count = m.active_params - (m.embedding_params if name in ACTIVE_WITHOUT_EMBEDDING else 0)
        assert _matches_printed(count, active, unit), count
        assert m.active_params < m.params


def test_llama_4_scout_is_its_text_decoder():
    m = load_model("llama-4-scout")
    assert _matches_printed(m.active_params, 17e9, 1e9)
    # 109B includes the vision encoder (34 layers of width 1408 and MLP 5632 in the released
    # vision_config: 34 x (4 x 1408^2 + 2 x 1408 x 5632) = 0.81B) and its projector.
    assert 109e9 - 1.5e9 < m.params < 109e9 - 0.8e9


def test_deepseek_v3_with_its_mtp_module_is_the_checkpoint():
    # 685B on the Hub: the main model, one MTP module, and the MTP module's own copy of embedding and head.
    m = load_model("deepseek-v3")
    assert _matches_printed(m.params + m.mtp_params + m.embedding_params + m.lm_head_params, 685e9, 1e9)
    assert 11e9 < m.mtp_params < 12e9  # DeepSeek's "14B MTP module" counts that copy (1.85B) too


def test_mla_caches_one_latent_per_token_and_layer():
    m = load_model("deepseek-v3")
    # (512 + 64) x 2 bytes x 61 layers, replicated on each GPU under tensor parallelism.
    assert kv_bytes_per_token(m) == 576 * 2 * 61
    assert kv_bytes_per_token(m, "bf16", tp=8) == 8 * 576 * 2 * 61
    # Grouped attention: heads replicate once tp exceeds them (Qwen3-30B-A3B has 4 KV heads).
    q = load_model("qwen3-30b-a3b")
    assert kv_bytes_per_token(q, "bf16", tp=8) == 2 * kv_bytes_per_token(q, "bf16", tp=4)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_params_from_architecture_match_published(name):
    assert load_model(name).params == pytest.approx(PUBLISHED[name], rel=0.01)


def test_family_features():
    opt = load_model("opt-13b")
    assert (opt.ffn_type, opt.linear_bias, opt.qkv_bias, opt.tied_embeddings, opt.norm) == ("mlp", True, True, True, "layernorm")
    assert opt.learned_positions > 0
    llama = load_model("llama-2-70b")
    assert (llama.ffn_type, llama.qkv_bias, llama.linear_bias, llama.tied_embeddings) == ("swiglu", False, False, False)
    assert llama.n_kv_heads == 8 < llama.n_heads  # GQA
    assert load_model("llama-2-7b").n_kv_heads == 32  # no GQA in Llama-2-7B
    assert load_model("qwen2.5-7b").qkv_bias and not load_model("qwen2.5-7b").linear_bias
    assert load_model("qwen2.5-0.5b").tied_embeddings and not load_model("qwen2.5-7b").tied_embeddings
    v = load_model("vicuna-68m")
    assert (v.n_layers, v.hidden_size, v.n_heads, v.ffn_size, v.vocab_size, v.ffn_type) == (2, 768, 12, 3072, 32000, "swiglu")


def test_opt_mlp_has_no_gate():
    # LLM-Viewer's bug (peers.md): a gate projection on OPT adds ~31% weights. Ours: 12 h^2 per layer.
    m = load_model("opt-6.7b")
    assert m.layer_params == pytest.approx(12 * m.hidden_size**2, rel=0.01)


def test_kv_bytes_per_token():
    # Llama-2-7B: 2 x 32 layers x 4096 x 2 bytes = 0.5 MiB; Llama-3-70B (GQA 8 x 128): 320 KiB.
    assert kv_bytes_per_token(load_model("llama-2-7b")) == 524288
    assert kv_bytes_per_token(load_model("llama-3-70b"), "bf16") == 327680
    assert kv_bytes_per_token(load_model("llama-3-70b"), "fp8") == 163840
    with pytest.raises(InputError, match="kv dtype 'fp12'"):
        kv_bytes_per_token(load_model("llama-3-70b"), "fp12")


@pytest.mark.parametrize("params", np.logspace(np.log10(20e6), np.log10(1e12), 25))
def test_synthetic_model_hits_requested_size(params):
    m = synthetic_model(params)
    assert m.params == pytest.approx(params, rel=0.02)
    assert m.ffn_size >= m.hidden_size and m.n_heads * m.head_dim == m.hidden_size


@pytest.mark.parametrize("params", [8e9, 70e9, 405e9])
def test_synthetic_targets_shard_over_tp_8(params):
    from sdsl_sim.costs import pass_latency_s
    from sdsl_sim.hardware import load_gpu

    m = synthetic_model(params)
    assert m.params == pytest.approx(params, rel=1e-3)  # the docstring's 0.1% above ~50M
    assert m.n_heads % 8 == 0
    gpu = load_gpu("h100-sxm")
    for tp in (1, 2, 4, 8):
        assert pass_latency_s(m, gpu, batch=1, tokens=1, context=512, tp=tp) > 0


def test_every_synthetic_size_from_the_stated_minimum_builds():
    """Rounding the hidden size used to leave no FFN in bands such as 20.7-21.3M (an nstar scan crossed it)."""
    from sdsl_sim.models import MIN_SYNTHETIC_PARAMS

    for params in np.geomspace(MIN_SYNTHETIC_PARAMS, 1e9, 4000):
        m = synthetic_model(params)
        assert m.params == pytest.approx(params, rel=0.02) and m.ffn_size >= 16
    with pytest.raises(InputError, match="too small; expected at least 8.3M"):
        synthetic_model(0.99 * MIN_SYNTHETIC_PARAMS)


def test_synthetic_heads_divisible_by_8_from_hidden_2048_and_drafts_unchanged():
    for params in np.geomspace(1e9, 1e12, 40):
        m = synthetic_model(params)
        assert m.hidden_size >= 2048 and m.n_heads % 8 == 0 and m.head_dim == 128
        assert m.params == pytest.approx(params, rel=1e-3) and m.ffn_size >= m.hidden_size
    # drafts (hidden < 2048) keep the head_dim-64 rule, hidden only a multiple of 64
    small = synthetic_model(277e6)
    assert small.head_dim == 64 and small.hidden_size < 2048 and small.hidden_size % 64 == 0


def test_synthetic_model_names_and_lookup():
    assert synthetic_model(277e6).name == "synthetic-277M"
    assert synthetic_model(70e9).name == "synthetic-70B"
    assert load_model("synthetic-277M").params == pytest.approx(277e6, rel=0.02)
    sizes = [synthetic_model(p).params for p in (50e6, 100e6, 200e6, 400e6)]
    assert sizes == sorted(sizes)
    with pytest.raises(InputError, match="too small"):
        synthetic_model(1e6)


def test_unknown_model_suggests_closest():
    with pytest.raises(InputError, match="unknown model 'llama-2-7'; did you mean llama-2-7b"):
        load_model("llama-2-7")


@pytest.mark.parametrize("entry,message", [
    ({"n_layerz": 2}, "key 'n_layerz' unknown"),
    ({"n_layers": "2"}, "key 'n_layers' must be a int"),
    ({"n_layers": 0}, "key 'n_layers' = 0"),
    ({"ffn_type": "geglu"}, "key 'ffn_type' = 'geglu'"),
])
def test_catalog_validation_names_key(entry, message):
    good = dict(n_layers=2, hidden_size=64, n_heads=4, ffn_size=128, ffn_type="mlp", vocab_size=100, tied_embeddings=True)
    good.update(entry)
    with pytest.raises(InputError, match=message) as info:
        _validate("toy", good)
    assert "models.toml" in str(info.value)
