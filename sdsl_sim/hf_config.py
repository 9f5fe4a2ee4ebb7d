"""A Hugging Face `config.json` as one model-catalog entry: the keys of one `data/models.toml` table.

`catalog_entry(config, label)` is a pure translation; `models._validate` then checks the entry as it checks
the catalog's own. Only what the catalog can hold is read, in the catalog's encoding of each family (an
all-MoE model has no `ffn_size`; MLA's `head_dim` is the non-rotary query/key width). A shape number the
file lacks is an error, never a guess: a transformers config class's constant default describes some
other checkpoint. Where transformers derives a default (no `num_key_value_heads`: one KV head per query
head; no `head_dim`: hidden_size / num_attention_heads) or defaults a switch (`tie_word_embeddings`,
`attention_bias`), the file is read as transformers reads it, and the comment at that place says so.
The one exception is Gemma 3's nested `text_config`: `save_pretrained` drops a sub-config's keys that equal
its class defaults, so those defaults are the checkpoint's real values (`GEMMA3_TEXT_DEFAULTS`).

Not modelled (each under 0.01% of the parameters): Gemma 2/3's extra pre/post-FFN RMSNorms, Qwen2-MoE's
shared-expert gate (h weights per layer), DeepSeek-V3's per-expert router score bias.
"""

import json
from dataclasses import dataclass, field

from .errors import InputError
from .units import MAX_DIM

# architectures[0] (or model_type when a config lists no architectures) -> the translation that reads it.
ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen2MoeForCausalLM": "qwen2_moe",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "Gemma2ForCausalLM": "gemma2",
    "Gemma3ForCausalLM": "gemma3_text",
    "Gemma3ForConditionalGeneration": "gemma3",
    "OPTForCausalLM": "opt",
    "Phi3ForCausalLM": "phi3",
    "MixtralForCausalLM": "mixtral",
    "DeepseekV3ForCausalLM": "deepseek_v3",
}

# Gemma3TextConfig's defaults (transformers' configuration_gemma3.py): the values a published multimodal
# Gemma 3 checkpoint has wherever its text_config omits the key (gemma-3-4b's names only four keys).
GEMMA3_TEXT_DEFAULTS = {
    "vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "sliding_window": 4096,
    "sliding_window_pattern": 6, "tie_word_embeddings": True,
}

_REQUIRED = object()
LAYER_TYPES = ("full_attention", "sliding_attention")


@dataclass(frozen=True)
class _Config:
    """One config table with the file it came from, for messages; `defaults` fill absent keys."""

    table: dict
    label: str
    prefix: str = ""
    defaults: dict = field(default_factory=dict)

    def where(self, key: str) -> str:
        return f"{self.label}: key '{self.prefix}{key}'"

    def raw(self, key: str, default=_REQUIRED):
        if key in self.table:
            return self.table[key]
        if key in self.defaults:
            return self.defaults[key]
        if default is _REQUIRED:
            raise InputError(f"{self.where(key)} missing; expected it in a config.json of this architecture")
        return default

    def count(self, key: str, default=_REQUIRED, low: int = 1) -> int:
        """An integer in [low, MAX_DIM]; null reads as `default` where one is given (transformers' None)."""
        value = self.raw(key, default)
        if value is None and default is not _REQUIRED:
            value = default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_DIM:
            raise InputError(f"{self.where(key)} = {json.dumps(value)}; expected an integer in "
                             f"[{low}, {MAX_DIM:,}] (MAX_DIM)")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise InputError(f"{self.where(key)} = {json.dumps(value)}; expected true or false")
        return value


def catalog_entry(config: dict, label: str) -> dict:
    """The catalog entry (models.toml keys) of a parsed config.json; `label` (its path) names it in errors."""
    if not isinstance(config, dict):
        raise InputError(f"{label}: expected a JSON object (a Hugging Face config.json)")
    kind = _kind(config, label)
    c = _Config(config, label)
    if kind == "gemma3":
        text = config.get("text_config", {})
        if not isinstance(text, dict):
            raise InputError(f"{label}: key 'text_config' = {json.dumps(text)}; expected an object")
        c = _Config(text, label, "text_config.", GEMMA3_TEXT_DEFAULTS)
    return _TRANSLATE[kind](c)


def _kind(config: dict, label: str) -> str:
    archs = config.get("architectures")
    if archs is not None and not (isinstance(archs, list) and archs and isinstance(archs[0], str)):
        raise InputError(f"{label}: key 'architectures' = {json.dumps(archs)}; expected a list of class names")
    name = archs[0] if archs else config.get("model_type")
    kind = ARCHITECTURES.get(name) or (name if name in ARCHITECTURES.values() else None)
    if kind is None:
        given = f"architecture {name!r}" if name is not None else "no 'architectures' or 'model_type' key"
        raise InputError(f"{label}: {given} is not supported; expected one of {', '.join(ARCHITECTURES)}")
    return kind


# ---------------------------------------------------------------- the parts families share


def _decoder(c: _Config, *, tied: bool, kv_from_heads: bool, head_dim_from_width: bool, family: str) -> dict:
    """Layers, widths, heads and vocabulary of a Llama-shaped decoder (SwiGLU or GeGLU: both gated).
    `tied`: the config class's tie_word_embeddings default. `kv_from_heads`: the class reads an absent
    num_key_value_heads as num_attention_heads (else its default is a constant: the key is required).
    `head_dim_from_width`: the class reads an absent head_dim as hidden_size // num_attention_heads."""
    hidden, heads = c.count("hidden_size"), c.count("num_attention_heads")
    return {
        "family": family,
        "n_layers": c.count("num_hidden_layers"),
        "hidden_size": hidden,
        "n_heads": heads,
        "n_kv_heads": c.count("num_key_value_heads", heads if kv_from_heads else _REQUIRED),
        "head_dim": c.count("head_dim", hidden // heads if head_dim_from_width else _REQUIRED),
        "ffn_size": c.count("intermediate_size"),
        "ffn_type": "swiglu",
        "vocab_size": c.count("vocab_size"),
        "tied_embeddings": c.flag("tie_word_embeddings", tied),
    }


def _window(window: int | None, layers: int) -> dict:
    return {"sliding_window": window, "sliding_window_layers": layers} if window and layers else {}


def _window_size(c: _Config, default) -> int | None:
    """The sliding window in tokens, None for none (null in the file)."""
    return None if c.raw("sliding_window", default) is None else c.count("sliding_window", default)


def _layer_types(c: _Config, n_layers: int) -> int | None:
    """How many layers `layer_types` (newer configs write it) marks sliding; None when the key is absent."""
    types = c.raw("layer_types", None)
    if types is None:
        return None
    if not (isinstance(types, list) and len(types) == n_layers and all(t in LAYER_TYPES for t in types)):
        raise InputError(f"{c.where('layer_types')}: expected a list of {n_layers} (num_hidden_layers) of "
                         f"{', '.join(map(repr, LAYER_TYPES))}")
    return types.count("sliding_attention")


def _window_all_layers(c: _Config, entry: dict, default=None) -> dict:
    """Mistral, Mixtral, Phi-3: every layer attends within `sliding_window` when one is set."""
    return _window(_window_size(c, default), entry["n_layers"])


def _window_qwen(c: _Config, entry: dict, moe: bool) -> dict:
    """Qwen: off unless use_sliding_window (default false); then transformers' Qwen2/Qwen3 slide the layers
    from max_window_layers on. Which MoE layers slide has changed between transformers versions, so an MoE
    config that turns it on must say so in layer_types."""
    n = entry["n_layers"]
    sliding = _layer_types(c, n)
    if not c.flag("use_sliding_window", False):
        return {}
    if sliding is None and moe:
        raise InputError(f"{c.where('use_sliding_window')} = true without 'layer_types'; expected layer_types "
                         "to say which layers slide")
    if sliding is None:
        sliding = max(0, n - c.count("max_window_layers", low=0))
    return _window(c.count("sliding_window", 4096), sliding)  # Qwen2Config's default window


def _window_pattern(c: _Config, entry: dict, pattern: int) -> dict:
    """Gemma: layer i slides unless (i + 1) % pattern == 0 (Gemma 2: 2, alternating from a sliding layer 0;
    Gemma 3: sliding_window_pattern, 6: five local layers to one global), unless layer_types says otherwise.
    The window defaults to the config classes' 4096."""
    n = entry["n_layers"]
    sliding = _layer_types(c, n)
    return _window(_window_size(c, 4096), n - n // pattern if sliding is None else sliding)


def _dense_layers(c: _Config, n_layers: int) -> int:
    """Qwen MoE: layer i is dense when listed in mlp_only_layers or (i + 1) % decoder_sparse_step != 0
    (absent: [] and 1, transformers' defaults). The catalog prices layers by count, so which ones does not
    matter."""
    step = c.count("decoder_sparse_step", 1)
    listed = c.raw("mlp_only_layers", [])
    listed = [] if listed is None else listed
    if not (isinstance(listed, list) and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n_layers
                                             for i in listed)):
        raise InputError(f"{c.where('mlp_only_layers')} = {json.dumps(listed)}; expected a list of layer "
                         f"indices in [0, {n_layers})")
    sparse = n_layers // step - len({i for i in listed if (i + 1) % step == 0})
    return n_layers - sparse


def _moe(entry: dict, *, experts: int, per_token: int, width: int, dense: int = 0, shared: int = 0) -> dict:
    """The entry with the catalog's MoE keys: `dense` first layers keep the dense MLP of ffn_size; with none,
    ffn_size is left out (the catalog's encoding of Mixtral and Qwen3-30B-A3B)."""
    entry = {key: value for key, value in entry.items() if key != "ffn_size" or dense}
    moe = {"num_experts": experts, "experts_per_token": per_token, "moe_ffn_size": width}
    if shared:
        moe["shared_experts"] = shared
    if dense:
        moe["first_dense_layers"] = dense
    return entry | moe


def _experts(c: _Config, experts_key: str) -> dict:
    return {"experts": c.count(experts_key), "per_token": c.count("num_experts_per_tok"),
            "width": c.count("moe_intermediate_size")}


def _attention_biases(c: _Config) -> dict:
    """attention_bias (default false) biases Q, K, V and the output projection; mlp_bias (Llama, default false)
    the MLP. The catalog's qkv_bias is Q/K/V only and linear_bias the output projection with the MLP, so
    attention_bias alone leaves out h biases a layer and mlp_bias alone adds them."""
    attention, mlp = c.flag("attention_bias", False), c.flag("mlp_bias", False)
    return {key: True for key, on in (("qkv_bias", attention), ("linear_bias", mlp)) if on}


# ---------------------------------------------------------------- one translation per family


def _llama(c: _Config) -> dict:
    # LlamaConfig: num_key_value_heads and head_dim default from the heads and width.
    entry = _decoder(c, tied=False, kv_from_heads=True, head_dim_from_width=True, family="llama")
    return entry | _attention_biases(c)


def _mistral(c: _Config) -> dict:
    # MistralConfig's num_key_value_heads default is a constant 8; its sliding_window default is 4096.
    entry = _decoder(c, tied=False, kv_from_heads=False, head_dim_from_width=True, family="mistral")
    return entry | _window_all_layers(c, entry, default=4096)


def _mixtral(c: _Config) -> dict:
    # Every layer routes to num_experts_per_tok of num_local_experts SwiGLU experts of intermediate_size.
    entry = _decoder(c, tied=False, kv_from_heads=False, head_dim_from_width=True, family="mixtral")
    moe = _moe(entry, experts=c.count("num_local_experts"), per_token=c.count("num_experts_per_tok"),
               width=entry["ffn_size"])
    return moe | _window_all_layers(c, entry)


def _phi3(c: _Config) -> dict:
    # Phi3Config: num_key_value_heads defaults to the heads; fused qkv_proj / gate_up_proj hold the same weights.
    entry = _decoder(c, tied=False, kv_from_heads=True, head_dim_from_width=True, family="phi")
    return entry | _window_all_layers(c, entry)


def _qwen2(c: _Config) -> dict:
    # Qwen2's Q/K/V projections always have biases; Qwen2Config's num_key_value_heads default is a constant.
    entry = _decoder(c, tied=False, kv_from_heads=False, head_dim_from_width=True, family="qwen")
    return entry | {"qkv_bias": True} | _window_qwen(c, entry, moe=False)


def _qwen3(c: _Config) -> dict:
    # Qwen3Config's head_dim default is a constant 128, so the key is required; q/k RMSNorm per head.
    entry = _decoder(c, tied=False, kv_from_heads=False, head_dim_from_width=False, family="qwen3")
    return entry | {"qk_norm": True} | _attention_biases(c) | _window_qwen(c, entry, moe=False)


def _qwen2_moe(c: _Config) -> dict:
    entry = _decoder(c, tied=False, kv_from_heads=False, head_dim_from_width=True, family="qwen")
    width, shared_width = c.count("moe_intermediate_size"), c.count("shared_expert_intermediate_size", low=0)
    if shared_width % width:
        raise InputError(f"{c.where('shared_expert_intermediate_size')} = {shared_width}; expected a multiple of "
                         f"moe_intermediate_size {width} (the catalog counts shared experts of the experts' width)")
    entry = _moe(entry, **_experts(c, "num_experts"), dense=_dense_layers(c, entry["n_layers"]),
                 shared=shared_width // width)
    # qkv_bias: Qwen2MoeConfig's switch, default true (earlier versions hard-wired the biases).
    return entry | ({"qkv_bias": True} if c.flag("qkv_bias", True) else {}) | _window_qwen(c, entry, moe=True)


def _qwen3_moe(c: _Config) -> dict:
    # Qwen3MoeConfig has no head_dim default: the attention reads an absent one as hidden / heads.
    entry = _decoder(c, tied=False, kv_from_heads=False, head_dim_from_width=True, family="qwen3")
    entry = _moe(entry, **_experts(c, "num_experts"), dense=_dense_layers(c, entry["n_layers"]))
    return entry | {"qk_norm": True} | _attention_biases(c) | _window_qwen(c, entry, moe=True)


def _gemma2(c: _Config) -> dict:
    # Gemma2Config: tied embeddings; its head_dim (256) and num_key_value_heads (4) defaults are constants.
    entry = _decoder(c, tied=True, kv_from_heads=False, head_dim_from_width=False, family="gemma")
    return entry | _attention_biases(c) | _window_pattern(c, entry, pattern=2)


def _gemma3(c: _Config) -> dict:
    # As Gemma 2 with q/k RMSNorm per head and sliding_window_pattern (default 6) local layers per global one.
    entry = _decoder(c, tied=True, kv_from_heads=False, head_dim_from_width=False, family="gemma")
    pattern = c.count("sliding_window_pattern", 6)
    return entry | {"qk_norm": True} | _attention_biases(c) | _window_pattern(c, entry, pattern)


def _opt(c: _Config) -> dict:
    """OPT: a ReLU MLP of ffn_dim, LayerNorm, biases everywhere (enable_bias, default true), multi-head
    attention, a learned position table of max_position_embeddings + 2 rows (OPTLearnedPositionalEmbedding's
    offset) and embeddings word_embed_proj_dim wide (default hidden_size), tied by default (PretrainedConfig)."""
    # OPTConfig maps hidden_size to d_model; published configs write hidden_size.
    hidden = c.count("d_model" if "d_model" in c.table and "hidden_size" not in c.table else "hidden_size")
    heads = c.count("num_attention_heads")
    bias = c.flag("enable_bias", True)
    embed = c.count("word_embed_proj_dim", hidden)
    entry = {
        "family": "opt", "n_layers": c.count("num_hidden_layers"), "hidden_size": hidden, "n_heads": heads,
        "ffn_size": c.count("ffn_dim"), "ffn_type": "mlp", "vocab_size": c.count("vocab_size"),
        "tied_embeddings": c.flag("tie_word_embeddings", True), "norm": "layernorm",
        "learned_positions": c.count("max_position_embeddings") + 2,
    }
    if bias:
        entry.update(qkv_bias=True, linear_bias=True)
    return entry | ({"embed_dim": embed} if embed != hidden else {})


def _deepseek_v3(c: _Config) -> dict:
    """DeepSeek-V3: multi-head latent attention (head_dim = qk_nope_head_dim; q_lora_rank null: no query
    bottleneck), first_k_dense_replace dense layers, then n_routed_experts routed plus n_shared_experts shared
    experts of moe_intermediate_size. num_key_value_heads is not read: latent attention caches no KV heads.
    num_nextn_predict_layers (DeepSeek's key; absent: none) is the MTP modules the checkpoint ships."""
    hidden, heads = c.count("hidden_size"), c.count("num_attention_heads")
    if c.count("moe_layer_freq", 1) != 1:
        raise InputError(f"{c.where('moe_layer_freq')} = {c.table['moe_layer_freq']}; expected 1 (every layer "
                         "after the dense ones an MoE layer, as transformers builds DeepSeek-V3)")
    entry = {
        "family": "deepseek", "n_layers": c.count("num_hidden_layers"), "hidden_size": hidden, "n_heads": heads,
        "head_dim": c.count("qk_nope_head_dim"), "ffn_size": c.count("intermediate_size"), "ffn_type": "swiglu",
        "vocab_size": c.count("vocab_size"), "tied_embeddings": c.flag("tie_word_embeddings", False),
        "kv_lora_rank": c.count("kv_lora_rank"),
        "q_lora_rank": 0 if c.raw("q_lora_rank") is None else c.count("q_lora_rank"),
        "qk_rope_head_dim": c.count("qk_rope_head_dim"), "v_head_dim": c.count("v_head_dim"),
    }
    entry = _moe(entry, **_experts(c, "n_routed_experts"), dense=c.count("first_k_dense_replace", low=0),
                 shared=c.count("n_shared_experts", low=0))
    mtp = c.count("num_nextn_predict_layers", 0, low=0)
    return entry | ({"mtp_layers": mtp} if mtp else {})


_TRANSLATE = {
    "llama": _llama, "mistral": _mistral, "qwen2": _qwen2, "qwen3": _qwen3, "qwen2_moe": _qwen2_moe,
    "qwen3_moe": _qwen3_moe, "gemma2": _gemma2, "gemma3_text": _gemma3, "gemma3": _gemma3, "opt": _opt,
    "phi3": _phi3, "mixtral": _mixtral, "deepseek_v3": _deepseek_v3,
}
