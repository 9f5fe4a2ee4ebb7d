"""Models from files: Hugging Face config.json files translated to the catalog's keys (checked against published
parameter counts and the catalog's own entries), model TOML files, scenarios naming them, and bad files as one
`error:` line with exit status 2.

The configs below are the published config.json files of the named Hub repositories (keys the translation
does not read, such as rope settings and token ids, kept as published so the files are realistic)."""

import dataclasses
import json

import pytest

from sdsl_sim.cli import main
from sdsl_sim.errors import InputError
from sdsl_sim.hf_config import ARCHITECTURES, catalog_entry
from sdsl_sim.models import load_model
from sdsl_sim.scenario import load_scenario
from sdsl_sim.sim.setup import resolve
from test_bad_input import one_error_line

LLAMA_3_1_8B = {  # meta-llama/Llama-3.1-8B
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
    "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": False,
    "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": 128256,
}
QWEN2_5_7B = {  # Qwen/Qwen2.5-7B
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
    "intermediate_size": 18944, "max_position_embeddings": 131072, "max_window_layers": 28, "model_type": "qwen2",
    "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1", "use_cache": True, "use_mrope": False, "use_sliding_window": False,
    "vocab_size": 152064,
}
MIXTRAL_8X7B = {  # mistralai/Mixtral-8x7B-v0.1
    "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 32768, "model_type": "mixtral", "num_attention_heads": 32, "num_experts_per_tok": 2,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 8, "output_router_logits": False,
    "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02, "sliding_window": None,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.36.0.dev0",
    "use_cache": True, "vocab_size": 32000,
}
DEEPSEEK_V3 = {  # deepseek-ai/DeepSeek-V3 (quantization_config and auto_map left out)
    "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "aux_loss_alpha": 0.001, "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1, "first_k_dense_replace": 3,
    "hidden_act": "silu", "hidden_size": 7168, "initializer_range": 0.02, "intermediate_size": 18432,
    "kv_lora_rank": 512, "max_position_embeddings": 163840, "model_type": "deepseek_v3",
    "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256,
    "n_shared_experts": 1, "norm_topk_prob": True, "num_attention_heads": 128, "num_experts_per_tok": 8,
    "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1, "pretraining_tp": 1,
    "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                     "original_max_position_embeddings": 4096, "type": "yarn"},
    "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "seq_aux": True,
    "tie_word_embeddings": False, "topk_group": 4, "topk_method": "noaux_tc", "torch_dtype": "bfloat16",
    "transformers_version": "4.33.1", "use_cache": True, "v_head_dim": 128, "vocab_size": 129280,
}
QWEN3_30B_A3B = {  # Qwen/Qwen3-30B-A3B
    "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 128,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 6144,
    "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [], "model_type": "qwen3_moe",
    "moe_intermediate_size": 768, "norm_topk_prob": True, "num_attention_heads": 32, "num_experts": 128,
    "num_experts_per_tok": 8, "num_hidden_layers": 48, "num_key_value_heads": 4, "output_router_logits": False,
    "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
    "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
}
GEMMA_2_9B = {  # google/gemma-2-9b: no tie_word_embeddings key (Gemma2Config's default, true)
    "architectures": ["Gemma2ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "attn_logit_softcapping": 50.0, "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": 1,
    "final_logit_softcapping": 30.0, "head_dim": 256, "hidden_act": "gelu_pytorch_tanh",
    "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 3584, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 8192, "model_type": "gemma2", "num_attention_heads": 16,
    "num_hidden_layers": 42, "num_key_value_heads": 8, "pad_token_id": 0, "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": 4096, "sliding_window_size": 4096,
    "torch_dtype": "float32", "transformers_version": "4.42.0.dev0", "use_cache": True, "vocab_size": 256000,
}
GEMMA_3_4B = {  # google/gemma-3-4b-pt: the text_config names only what differs from Gemma3TextConfig
    "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999, "eoi_token_index": 256000,
    "eos_token_id": [1, 106], "image_token_index": 262144, "initializer_range": 0.02, "mm_tokens_per_image": 256,
    "model_type": "gemma3",
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                    "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                    "sliding_window": 1024},
    "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
    "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
                      "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
                      "patch_size": 14, "vision_use_head": False},
}
OPT_1_3B = {  # facebook/opt-1.3b: no tie_word_embeddings key (PretrainedConfig's default, true)
    "_name_or_path": "facebook/opt-1.3b", "activation_dropout": 0.0, "activation_function": "relu",
    "architectures": ["OPTForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 2, "do_layer_norm_before": True,
    "dropout": 0.1, "eos_token_id": 2, "ffn_dim": 8192, "hidden_size": 2048, "init_std": 0.02, "layerdrop": 0.0,
    "max_position_embeddings": 2048, "model_type": "opt", "num_attention_heads": 32, "num_hidden_layers": 24,
    "pad_token_id": 1, "prefix": "</s>", "torch_dtype": "float16", "transformers_version": "4.21.0.dev0",
    "use_cache": True, "vocab_size": 50272, "word_embed_proj_dim": 2048,
}
PHI_3_MINI = {  # microsoft/Phi-3-mini-4k-instruct (auto_map left out)
    "architectures": ["Phi3ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "embd_pdrop": 0.0,
    "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072, "initializer_range": 0.02,
    "intermediate_size": 8192, "max_position_embeddings": 4096, "model_type": "phi3", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 32, "original_max_position_embeddings": 4096,
    "pad_token_id": 32000, "resid_pdrop": 0.0, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0,
    "sliding_window": 2047, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.2", "use_cache": True, "attention_bias": False, "vocab_size": 32064,
}
MISTRAL_7B = {  # mistralai/Mistral-7B-v0.1
    "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768,
    "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0", "use_cache": True, "vocab_size": 32000,
}
QWEN1_5_MOE = {  # Qwen/Qwen1.5-MoE-A2.7B
    "architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": 5632, "max_position_embeddings": 8192, "max_window_layers": 21, "model_type": "qwen2_moe",
    "num_attention_heads": 16, "num_hidden_layers": 24, "num_key_value_heads": 16, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.39.0.dev0", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
    "decoder_sparse_step": 1, "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
    "num_experts_per_tok": 4, "num_experts": 60, "norm_topk_prob": False, "output_router_logits": False,
    "router_aux_loss_coef": 0.001,
}


def write(tmp_path, config: dict, name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


# ---------------------------------------------------------------- published counts and the catalog


@pytest.mark.parametrize("config, published", [(LLAMA_3_1_8B, 8.03e9), (QWEN2_5_7B, 7.62e9)])
def test_dense_configs_match_published_counts_within_half_a_percent(tmp_path, config, published):
    assert load_model(write(tmp_path, config)).params == pytest.approx(published, rel=0.005)


# Mixtral-8x7B 46.7B (Mistral AI's announcement), DeepSeek-V3 671B without its 14B MTP module (the report),
# Qwen3-30B-A3B 30.5B (model card), gemma-2-9b 9.24B (Hub), OPT-1.3b 1.3B (Zhang et al. 2022),
# Phi-3-mini 3.82B (Hub), Mistral-7B 7.24B (Hub), Qwen1.5-MoE-A2.7B 14.3B (model card).
@pytest.mark.parametrize("config, published", [
    (MIXTRAL_8X7B, 46.7e9), (DEEPSEEK_V3, 671e9), (QWEN3_30B_A3B, 30.5e9), (GEMMA_2_9B, 9.24e9),
    (OPT_1_3B, 1.3e9), (PHI_3_MINI, 3.82e9), (MISTRAL_7B, 7.24e9), (QWEN1_5_MOE, 14.3e9),
], ids=["mixtral", "deepseek-v3", "qwen3-moe", "gemma2", "opt", "phi3", "mistral", "qwen2-moe"])
def test_each_family_matches_its_published_count(tmp_path, config, published):
    assert load_model(write(tmp_path, config)).params == pytest.approx(published, rel=0.02)


@pytest.mark.parametrize("config, name", [
    (LLAMA_3_1_8B, "llama-3.1-8b"), (QWEN2_5_7B, "qwen2.5-7b"), (MIXTRAL_8X7B, "mixtral-8x7b"),
    (DEEPSEEK_V3, "deepseek-v3"), (QWEN3_30B_A3B, "qwen3-30b-a3b"), (OPT_1_3B, "opt-1.3b"),
])
def test_a_config_gives_the_catalog_entry_of_its_model(tmp_path, config, name):
    path = write(tmp_path, config)
    model = load_model(path)
    assert model.name == path
    assert dataclasses.replace(model, name=name) == load_model(name)


def test_gemma_sliding_layers_follow_transformers_layer_patterns(tmp_path):
    gemma2 = load_model(write(tmp_path, GEMMA_2_9B))
    assert (gemma2.sliding_window, gemma2.sliding_window_layers) == (4096, 21)  # even layers, 1:1
    assert gemma2.tied_embeddings and gemma2.head_dim == 256 and not gemma2.qk_norm
    gemma3 = load_model(write(tmp_path, GEMMA_3_4B))
    # 34 layers, every 6th global: layers 5, 11, 17, 23, 29 -> 29 local.
    assert (gemma3.sliding_window, gemma3.sliding_window_layers) == (1024, 29)
    # Gemma3TextConfig's defaults fill what the nested text_config leaves out.
    assert (gemma3.n_heads, gemma3.n_kv_heads, gemma3.head_dim, gemma3.vocab_size) == (8, 4, 256, 262208)
    assert gemma3.qk_norm and gemma3.tied_embeddings and gemma3.n_layers == 34
    assert 3.8e9 < gemma3.params < 4.3e9  # the text decoder of the 4.3B checkpoint (a 0.4B SigLIP tower besides)
    explicit = {**GEMMA_3_4B, "text_config": {**GEMMA_3_4B["text_config"],
                                              "layer_types": ["sliding_attention", "full_attention"] * 17}}
    assert load_model(write(tmp_path, explicit, "explicit.json")).sliding_window_layers == 17


def test_window_and_expert_layouts(tmp_path):
    mistral = load_model(write(tmp_path, MISTRAL_7B))
    assert (mistral.sliding_window, mistral.sliding_window_layers) == (4096, 32)
    no_window = load_model(write(tmp_path, {**MISTRAL_7B, "sliding_window": None}, "v03.json"))
    assert no_window.sliding_window == 0
    phi = load_model(write(tmp_path, PHI_3_MINI))
    assert (phi.sliding_window, phi.sliding_window_layers, phi.n_kv_heads) == (2047, 32, 32)
    qwen_moe = load_model(write(tmp_path, QWEN1_5_MOE))
    assert (qwen_moe.shared_experts, qwen_moe.moe_ffn_size, qwen_moe.qkv_bias) == (4, 1408, True)
    assert qwen_moe.first_dense_layers == 0 and qwen_moe.sliding_window == 0
    dense_two = load_model(write(tmp_path, {**QWEN1_5_MOE, "mlp_only_layers": [0, 5]}, "mlp-only.json"))
    assert (dense_two.first_dense_layers, dense_two.ffn_size) == (2, 5632)
    every_other = load_model(write(tmp_path, {**QWEN3_30B_A3B, "decoder_sparse_step": 2}, "step2.json"))
    assert every_other.first_dense_layers == 24 and every_other.ffn_size == 6144
    deepseek = load_model(write(tmp_path, DEEPSEEK_V3))
    assert deepseek.mtp_layers == 1 and deepseek.is_mla and deepseek.first_dense_layers == 3


def test_keys_transformers_derives_take_its_defaults(tmp_path):
    bare = {key: LLAMA_3_1_8B[key] for key in ("architectures", "hidden_size", "num_hidden_layers",
                                               "num_attention_heads", "intermediate_size", "vocab_size")}
    model = load_model(write(tmp_path, bare))  # LlamaConfig: kv heads = heads, head_dim = width / heads, untied
    assert (model.n_kv_heads, model.head_dim, model.tied_embeddings, model.qkv_bias) == (32, 128, False, False)
    by_type = {key: value for key, value in bare.items() if key != "architectures"} | {"model_type": "llama"}
    assert load_model(write(tmp_path, by_type, "by-type.json")) == dataclasses.replace(
        model, name=str(tmp_path / "by-type.json"))
    no_mla_query = catalog_entry({**DEEPSEEK_V3, "q_lora_rank": None}, "v2-lite.json")
    assert no_mla_query["q_lora_rank"] == 0


def test_model_toml_in_the_catalogs_keys(tmp_path):
    keys = ('n_layers = 32\nhidden_size = 4096\nn_heads = 32\nn_kv_heads = 8\nffn_size = 14336\n'
            'ffn_type = "swiglu"\nvocab_size = 128256\ntied_embeddings = false\nfamily = "llama"\n')
    flat, pasted = tmp_path / "flat.toml", tmp_path / "pasted.toml"
    flat.write_text(keys)
    pasted.write_text('["llama-3.1-8b"]\nsource = "meta-llama/Llama-3.1-8B"\n' + keys)
    for path in (flat, pasted):
        assert dataclasses.replace(load_model(str(path)), name="llama-3.1-8b") == load_model("llama-3.1-8b")


# ---------------------------------------------------------------- where models are named


def test_a_scenario_names_a_model_file_relative_to_its_folder(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "study"
    folder.mkdir()
    write(folder, LLAMA_3_1_8B, "llama-3.1-8b.json")
    (folder / "scenario.toml").write_text('[run]\nmethod = "analytic"\n[model]\ntarget = "llama-3.1-8b.json"\n'
                                          'draft = "llama-3.2-1b"\n[hardware]\nname = "h100-sxm"\ntp = 1\n')
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    scenario = load_scenario("study/scenario.toml")
    assert scenario.config["model"]["target"] == str((folder / "llama-3.1-8b.json").resolve())
    assert resolve(scenario).target.params == load_model("llama-3.1-8b").params
    assert main(["run", "study/scenario.toml", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["speedup_vs_autoregressive"] > 1


def test_the_cli_prints_a_file_models_parameter_count(tmp_path, capsys):
    path = write(tmp_path, LLAMA_3_1_8B)
    assert main(["list", "models", "--model", path, "--model", "qwen2.5-7b", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["models"]
    assert [row["name"] for row in rows] == [path, "qwen2.5-7b"]
    assert rows[0]["params_b"] == pytest.approx(8.03, rel=0.005) and rows[0]["heads"] == "32/8"
    assert main(["list", "models", "--model", path]) == 0
    assert path in capsys.readouterr().out
    assert main(["latency", "--model", path, "--hardware", "h100-sxm", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params_b"] == pytest.approx(8.03, rel=0.005)


# ---------------------------------------------------------------- bad files: one error line, exit 2


def _latency(path: str) -> int:
    return main(["latency", "--model", path, "--hardware", "h100-sxm"])


def test_an_unknown_architecture_lists_the_supported_ones(tmp_path, capsys):
    path = write(tmp_path, {**LLAMA_3_1_8B, "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})
    assert _latency(path) == 2
    one_error_line(capsys, path, "'GPT2LMHeadModel' is not supported", *ARCHITECTURES)
    assert _latency(write(tmp_path, {"hidden_size": 8}, "typeless.json")) == 2
    one_error_line(capsys, "no 'architectures' or 'model_type' key")


@pytest.mark.parametrize("config, key", [
    ({k: v for k, v in LLAMA_3_1_8B.items() if k != "intermediate_size"}, "'intermediate_size' missing"),
    ({k: v for k, v in MISTRAL_7B.items() if k != "num_key_value_heads"}, "'num_key_value_heads' missing"),
    ({k: v for k, v in DEEPSEEK_V3.items() if k != "kv_lora_rank"}, "'kv_lora_rank' missing"),
    ({**GEMMA_3_4B, "text_config": "none"}, "'text_config'"),
])
def test_a_missing_key_names_the_key_and_the_file(tmp_path, capsys, config, key):
    path = write(tmp_path, config)
    assert _latency(path) == 2
    one_error_line(capsys, path, key)


@pytest.mark.parametrize("key, value, needle", [
    ("num_hidden_layers", 0, "'num_hidden_layers' = 0; expected an integer in [1,"),
    ("hidden_size", 4096.5, "'hidden_size' = 4096.5; expected an integer"),
    ("vocab_size", "128256", "'vocab_size' = \"128256\"; expected an integer"),
    ("num_key_value_heads", True, "'num_key_value_heads' = true; expected an integer"),
    ("tie_word_embeddings", "no", "'tie_word_embeddings' = \"no\"; expected true or false"),
    ("num_attention_heads", 2**40, "(MAX_DIM)"),
    ("num_key_value_heads", 5, "n_heads 32 is not a multiple of n_kv_heads 5"),
])
def test_a_bad_value_names_it_and_what_was_expected(tmp_path, capsys, key, value, needle):
    path = write(tmp_path, {**LLAMA_3_1_8B, key: value})
    assert _latency(path) == 2
    one_error_line(capsys, path, needle)


def test_files_that_are_not_models(tmp_path, capsys):
    missing = str(tmp_path / "nowhere" / "config.json")
    assert _latency(missing) == 2
    one_error_line(capsys, f"model file {missing!r} not found")
    broken = tmp_path / "broken.json"
    broken.write_text("{'hidden_size': 1}")
    assert _latency(str(broken)) == 2
    one_error_line(capsys, str(broken), "not valid JSON")
    assert _latency(write(tmp_path, [1, 2], "list.json")) == 2
    one_error_line(capsys, "expected a JSON object")
    wrong_key = tmp_path / "model.toml"
    wrong_key.write_text('n_layers = 2\nhidden_size = 64\nn_heads = 4\nffn_size = 128\nffn_type = "mlp"\n'
                         'vocab_size = 100\ntied_embeddings = true\nnum_layers = 2\n')
    assert _latency(str(wrong_key)) == 2
    one_error_line(capsys, str(wrong_key), "key 'num_layers' unknown")
    assert main(["list", "hardware", "--model", "llama-3.1-8b"]) == 2
    one_error_line(capsys, "--model describes a model")


def test_shapes_the_catalog_cannot_hold_are_refused():
    with pytest.raises(InputError, match="expected a multiple of moe_intermediate_size 1408"):
        catalog_entry({**QWEN1_5_MOE, "shared_expert_intermediate_size": 2000}, "q.json")
    with pytest.raises(InputError, match="moe_layer_freq"):
        catalog_entry({**DEEPSEEK_V3, "moe_layer_freq": 2}, "d.json")
    with pytest.raises(InputError, match="expected layer_types"):
        catalog_entry({**QWEN3_30B_A3B, "use_sliding_window": True}, "q.json")
    with pytest.raises(InputError, match="'mlp_only_layers'"):
        catalog_entry({**QWEN3_30B_A3B, "mlp_only_layers": [48]}, "q.json")


def test_a_model_folder_holding_a_config_json_is_a_model(tmp_path, capsys):
    """What `huggingface-cli download` leaves: a folder with config.json beside the weights, named with a
    slash on the command line and relative to a scenario file in one."""
    folder = tmp_path / "Llama-3.1-8B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_3_1_8B))
    assert load_model(str(folder)).params == load_model(str(folder / "config.json")).params
    (tmp_path / "s.toml").write_text('[model]\ntarget = "./Llama-3.1-8B"\ndraft = "llama-3.2-1b"\n'
                                     '[workload]\nrequests = 2\nbatch = 2\noutput_tokens = 16\n')
    assert load_scenario(str(tmp_path / "s.toml")).config["model"]["target"] == str(folder)
    with pytest.raises(InputError, match="names no file or folder"):
        load_model(str(tmp_path / "nowhere/"))
    with pytest.raises(InputError, match="not found"):
        load_model(str(tmp_path))  # a folder without a config.json
