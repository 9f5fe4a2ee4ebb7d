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


def test_catalog_has_every_model_in_the_issue():
    assert set(PUBLISHED) <= set(list_models())


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
