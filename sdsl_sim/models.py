"""Transformer architectures: the model catalog (`data/models.toml`), model files and synthetic models by size.

A `Model` holds only the shape facts the cost model needs (layers, widths, heads, FFN type, vocab,
tied embeddings, biases); its parameter count is computed from them, never typed in, so the catalog
can be checked against published sizes. `synthetic_model(params)` builds a Llama-shaped model of a
requested size for sweeps over draft size. `load_model` also reads a model from a file: a Hugging Face
config.json (translated by `hf_config`) or a TOML file of one catalog entry's keys.
"""

import difflib
import json
import math
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path

from . import hf_config
from .errors import InputError
from .units import MAX_DIM, MAX_PARAMS

FFN_TYPES = ("mlp", "swiglu")
NORM_TYPES = ("layernorm", "rmsnorm")
# Bytes per weight, quantisation scales included where they matter: int4 weight-only checkpoints (GPTQ,
# AWQ, Marlin) carry an fp16 scale per group of 128 input weights, 2/128 byte per weight (the byte count in
# IST-DASLab/marlin's README benchmark script: k n / 2 + 2 (k / 128) n). fp8's per-tensor or per-channel and
# int8's per-channel scales are negligible. The 4-bit floats carry a scale per block: NVFP4 (`fp4`) an FP8
# E4M3 scale per 16 weights, 1/16 byte per weight; MXFP4 (OCP microscaling, gpt-oss's checkpoints) an E8M0
# scale per 32, 1/32 byte (NVIDIA "Introducing NVFP4" blog, June 2025; OCP MX specification v1.0, 2023).
DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5 + 2.0 / 128,
               "fp4": 0.5 + 1.0 / 16, "mxfp4": 0.5 + 1.0 / 32}
FP4_DTYPES = ("fp4", "mxfp4")  # weight dtypes FP4 tensor cores compute in

_REQUIRED = {
    "n_layers": int,
    "hidden_size": int,
    "n_heads": int,
    "ffn_size": int,
    "ffn_type": str,
    "vocab_size": int,
    "tied_embeddings": bool,
}
_OPTIONAL = {
    "n_kv_heads": int,
    "head_dim": int,
    "qkv_bias": bool,
    "linear_bias": bool,
    "qk_norm": bool,
    "norm": str,
    "learned_positions": int,
    "embed_dim": int,
    "num_experts": int,
    "experts_per_token": int,
    "shared_experts": int,
    "moe_ffn_size": int,
    "first_dense_layers": int,
    "routing_skew": float,
    "kv_lora_rank": int,
    "q_lora_rank": int,
    "qk_rope_head_dim": int,
    "v_head_dim": int,
    "sliding_window": int,
    "sliding_window_layers": int,
    "mtp_layers": int,
    "family": str,
    "source": str,
}
# Keys that come together: a mixture-of-experts MLP, multi-head latent attention, a sliding window.
_GROUPS = {
    "mixture of experts": ("num_experts", "experts_per_token", "moe_ffn_size"),
    "multi-head latent attention": ("kv_lora_rank", "qk_rope_head_dim", "v_head_dim"),
    "sliding-window attention": ("sliding_window", "sliding_window_layers"),
}
_ZERO_OK = ("learned_positions", "embed_dim", "shared_experts", "first_dense_layers", "q_lora_rank", "mtp_layers")
MAX_ROUTING_SKEW = 4.0


@dataclass(frozen=True)
class Model:
    """A decoder-only transformer's shape.

    `qkv_bias`: biases on the Q, K, V projections (Qwen, OPT); `linear_bias`: biases on the output
    projection and the MLP or experts and router (OPT, gpt-oss). `qk_norm`: an RMSNorm over each head's
    queries and keys (Qwen3). `learned_positions`: rows of a learned position table (OPT; 0 for rotary).
    `embed_dim`: width of the token embedding when it differs from `hidden_size` (OPT-350m projects
    512 -> 1024 and back).

    Mixture of experts (`num_experts` > 0): every layer after the first `first_dense_layers` (which keep
    a dense MLP of `ffn_size`) routes each token to `experts_per_token` of `num_experts` experts of width
    `moe_ffn_size`, plus `shared_experts` experts every token uses; a linear router scores the experts.
    `routing_skew` s describes measured imbalance: the experts' chances of being picked fall as rank^-s
    (0: uniform routing; see `expert_pick_probabilities`).
    Multi-head latent attention (`kv_lora_rank` > 0, DeepSeek-V2/V3): keys and values are one cached
    latent of `kv_lora_rank` plus a shared rotary key of `qk_rope_head_dim` per token and layer;
    queries pass through a rank-`q_lora_rank` bottleneck (0: none); `head_dim` is the non-rotary
    query/key width per head and `v_head_dim` the value width.
    `sliding_window_layers` of the layers attend to the last `sliding_window` tokens only (gpt-oss;
    Llama 4's chunked attention is priced as a window of its chunk size).
    `mtp_layers`: multi-token-prediction modules the checkpoint ships beside the model (DeepSeek-V3); not in
    `params`, see `mtp_params`.
    `input_projection` (in, out): one GEMM before the layers (a speculation head's fused input: EAGLE-3's
    3h -> h, MTP's 2h -> h, Medusa's stacked residual blocks h -> k h; see `speculation.head_model`). Heads
    are built from their target's shape, never read from the catalog.
    """

    name: str
    n_layers: int
    hidden_size: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_size: int
    ffn_type: str
    vocab_size: int
    tied_embeddings: bool
    qkv_bias: bool = False
    linear_bias: bool = False
    qk_norm: bool = False
    norm: str = "rmsnorm"
    learned_positions: int = 0
    embed_dim: int = 0
    num_experts: int = 0
    experts_per_token: int = 0
    shared_experts: int = 0
    moe_ffn_size: int = 0
    first_dense_layers: int = 0
    routing_skew: float = 0.0
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    sliding_window: int = 0
    sliding_window_layers: int = 0
    mtp_layers: int = 0
    input_projection: tuple = ()
    family: str = ""

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def moe_layers(self) -> int:
        return self.n_layers - self.first_dense_layers if self.is_moe else 0

    @property
    def q_size(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def attention_params(self) -> int:
        """Weights and biases of one layer's attention (projections, per-head norms)."""
        h, heads = self.hidden_size, self.n_heads
        if self.is_mla:
            qk = self.head_dim + self.qk_rope_head_dim
            q_lora = self.q_lora_rank
            q = h * q_lora + q_lora + q_lora * heads * qk if q_lora else h * heads * qk
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv += self.kv_lora_rank * heads * (self.head_dim + self.v_head_dim)
            return q + kv + heads * self.v_head_dim * h
        attn = h * (self.q_size + 2 * self.kv_size) + self.q_size * h
        if self.qkv_bias:
            attn += self.q_size + 2 * self.kv_size
        if self.linear_bias:
            attn += h
        if self.qk_norm:
            attn += 2 * self.head_dim
        return attn

    def _mlp_params(self, width: int) -> int:
        h = self.hidden_size
        mlp = (2 if self.ffn_type == "mlp" else 3) * h * width
        if self.linear_bias:
            mlp += width * (1 if self.ffn_type == "mlp" else 2) + h
        return mlp

    @property
    def expert_params(self) -> int:
        """One expert's MLP (0 for a dense model)."""
        return self._mlp_params(self.moe_ffn_size) if self.is_moe else 0

    def _moe_layer_params(self, routed: int) -> int:
        router = self.num_experts * (self.hidden_size + (1 if self.linear_bias else 0))
        return (routed + self.shared_experts) * self.expert_params + router

    @property
    def _norms(self) -> int:
        return 2 * (2 * self.hidden_size if self.norm == "layernorm" else self.hidden_size)

    @property
    def layer_params(self) -> int:
        """Weights and biases of one dense decoder layer (for an MoE model, one of its first dense layers)."""
        return self.attention_params + self._mlp_params(self.ffn_size) + self._norms

    def _decoder_params(self, routed: int) -> int:
        dense = self.n_layers - self.moe_layers
        moe = self.moe_layers * (self.attention_params + self._moe_layer_params(routed) + self._norms)
        return dense * self.layer_params + moe

    @property
    def embedding_params(self) -> int:
        """Token table, learned positions and the embedding projections (not the LM head)."""
        e = self.embed_dim or self.hidden_size
        projections = 2 * e * self.hidden_size if e != self.hidden_size else 0
        return self.vocab_size * e + self.learned_positions * self.hidden_size + projections

    @property
    def lm_head_params(self) -> int:
        """Untied output projection (0 when tied: the token table is reused)."""
        return 0 if self.tied_embeddings else self.vocab_size * (self.embed_dim or self.hidden_size)

    @property
    def _outer_params(self) -> int:
        final_norm = 2 * self.hidden_size if self.norm == "layernorm" else self.hidden_size
        projection = math.prod(self.input_projection) if self.input_projection else 0
        return self.embedding_params + self.lm_head_params + final_norm + projection

    @property
    def params(self) -> int:
        """Total parameter count computed from the architecture (every expert counted)."""
        return self._decoder_params(self.num_experts) + self._outer_params

    @property
    def active_params(self) -> int:
        """Parameters one token uses: `params` with `experts_per_token` routed experts per MoE layer
        (the embedding table counted whole, as in `params`). Equal to `params` for a dense model."""
        return self._decoder_params(self.experts_per_token) + self._outer_params

    @property
    def mtp_params(self) -> int:
        """Weights of the multi-token-prediction modules: each projects [embedding; hidden] (2h -> h, two
        input norms) into one MoE decoder layer and a final norm, sharing the model's embedding and head
        (DeepSeek-V3 report, s.2.2)."""
        h = self.hidden_size
        layer = self.attention_params + self._moe_layer_params(self.num_experts) + self._norms
        return self.mtp_layers * (2 * h * h + 3 * h + layer)


def _validate(name: str, entry: dict, label: str | None = None) -> Model:
    label = label or f"sdsl_sim/data/models.toml: [{name}]"
    for key in entry:
        if key not in _REQUIRED and key not in _OPTIONAL:
            raise InputError(f"{label}: key {key!r} unknown; expected one of {', '.join([*_REQUIRED, *_OPTIONAL])}")
    moe = "num_experts" in entry
    fields = {}
    for key, typ in {**_REQUIRED, **_OPTIONAL}.items():
        if key not in entry:
            # An all-MoE model has no dense MLP width.
            if key in _REQUIRED and not (key == "ffn_size" and moe and not entry.get("first_dense_layers")):
                raise InputError(f"{label}: key {key!r} missing")
            continue
        value = entry[key]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise InputError(f"{label}: key {key!r} must be a {typ.__name__}, got {value!r}")
        if typ is int and not (0 if key in _ZERO_OK else 1) <= value <= MAX_DIM:
            low = 0 if key in _ZERO_OK else 1
            raise InputError(f"{label}: key {key!r} = {value}; expected an integer in [{low}, {MAX_DIM:,}] (MAX_DIM)")
        if typ is float and not 0.0 <= value <= MAX_ROUTING_SKEW:
            raise InputError(f"{label}: key {key!r} = {value}; expected a number in [0, {MAX_ROUTING_SKEW:g}]")
        if typ is str and not value.strip():
            raise InputError(f"{label}: key {key!r} is empty; expected a non-empty string")
        fields[key] = value
    fields.pop("source", None)
    for what, keys in _GROUPS.items():
        given = [key for key in keys if key in fields]
        if given and len(given) < len(keys):
            raise InputError(f"{label}: {what} needs all of {', '.join(keys)}; missing "
                             f"{', '.join(k for k in keys if k not in fields)}")
    for key in ("shared_experts", "first_dense_layers", "routing_skew"):
        if key in fields and not moe:
            raise InputError(f"{label}: key {key!r} needs a mixture of experts (num_experts)")
    if "q_lora_rank" in fields and "kv_lora_rank" not in fields:
        raise InputError(f"{label}: key 'q_lora_rank' needs multi-head latent attention (kv_lora_rank)")
    if moe and fields["experts_per_token"] > fields["num_experts"]:
        raise InputError(f"{label}: experts_per_token {fields['experts_per_token']} exceeds num_experts {fields['num_experts']}")
    for key in ("first_dense_layers", "sliding_window_layers"):
        if fields.get(key, 0) > fields["n_layers"]:
            raise InputError(f"{label}: key {key!r} = {fields[key]} exceeds n_layers {fields['n_layers']}")
    fields.setdefault("ffn_size", fields.get("moe_ffn_size", 0))
    if fields["ffn_type"] not in FFN_TYPES:
        raise InputError(f"{label}: key 'ffn_type' = {fields['ffn_type']!r}; expected one of {', '.join(FFN_TYPES)}")
    if fields.get("norm", "rmsnorm") not in NORM_TYPES:
        raise InputError(f"{label}: key 'norm' = {fields['norm']!r}; expected one of {', '.join(NORM_TYPES)}")
    fields.setdefault("n_kv_heads", fields["n_heads"])
    fields.setdefault("head_dim", fields["hidden_size"] // fields["n_heads"])
    if fields["head_dim"] < 1:
        raise InputError(f"{label}: hidden_size {fields['hidden_size']} < n_heads {fields['n_heads']}; expected a "
                         "head_dim of at least 1")
    if fields["n_heads"] % fields["n_kv_heads"]:
        raise InputError(f"{label}: n_heads {fields['n_heads']} is not a multiple of n_kv_heads {fields['n_kv_heads']}")
    return Model(name=name, **fields)


@cache
def _catalog() -> dict[str, Model]:
    table = tomllib.loads((files("sdsl_sim") / "data" / "models.toml").read_text())
    return {name: _validate(name, entry) for name, entry in table.items()}


def list_models() -> list[str]:
    """Names in the model catalog."""
    return list(_catalog())


MODEL_FILE_SUFFIXES = (".json", ".toml")  # a model named so is a file: a config.json or a model TOML


def is_model_path(name: str) -> bool:
    """Whether a model name is a path: a config.json or model TOML file, or a folder (written with a slash,
    ./my-model) holding a Hugging Face config.json. Catalog names and synthetic-<size> have no slash."""
    return name.endswith(MODEL_FILE_SUFFIXES) or "/" in name


def load_model(name: str) -> Model:
    """A catalog model by name, `synthetic-<size>` (e.g. `synthetic-277M`) for a synthetic one, or a file by
    path: `*.json` a Hugging Face config.json, `*.toml` one model in the catalog's keys (named by its path),
    or a folder holding a config.json (a downloaded Hugging Face model)."""
    catalog = _catalog()
    if name in catalog:
        return catalog[name]
    if str(name).endswith(MODEL_FILE_SUFFIXES):
        return load_model_file(str(name))
    if is_model_path(str(name)):  # a Hugging Face model folder
        if Path(name).is_dir():
            return load_model_file(str(Path(name) / "config.json"))
        raise InputError(f"model {name!r} names no file or folder; expected a catalog name, a config.json or "
                         "model .toml path, or a folder holding a config.json")
    if str(name).startswith("synthetic-"):
        from .units import parse_count

        return synthetic_model(parse_count(name[len("synthetic-"):], "synthetic model size"))
    close = difflib.get_close_matches(str(name), list(catalog), n=3, cutoff=0.5)
    hint = (f"did you mean {', '.join(close)}?" if close else "see `sdsl-sim list models`, use synthetic-<size> "
            "(e.g. synthetic-277M), or a config.json or model .toml path")
    raise InputError(f"unknown model {name!r}; {hint}")


def load_model_file(path: str) -> Model:
    """The model of a config.json or model TOML file at `path`; InputError naming the path if it is missing,
    unreadable or not a valid model."""
    try:
        if not Path(path).is_file():
            raise InputError(f"model file {path!r} not found; expected a Hugging Face config.json or a model .toml")
        raw = Path(path).read_bytes()
    except OSError as exc:  # a name too long, a folder without permission
        raise InputError(f"model file {path!r} cannot be read ({exc.strerror})") from None
    return _model_from_bytes(path, raw)


# Cached by the file's bytes (read afresh every load, so an edited file is never served stale): a sweep
# resolves every point's scenario.
@lru_cache(maxsize=256)
def _model_from_bytes(path: str, raw: bytes) -> Model:
    try:
        text = raw.decode("utf-8")
        table = json.loads(text) if path.endswith(".json") else tomllib.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.endswith(".json") else "TOML"
        raise InputError(f"{path}: not valid {kind} ({exc})") from None
    if path.endswith(".json"):
        return _validate(path, hf_config.catalog_entry(table, path), label=f"{path} (as catalog keys)")
    # A table pasted from models.toml with its [name] header is the same entry.
    if len(table) == 1 and isinstance(next(iter(table.values())), dict):
        table = next(iter(table.values()))
    return _validate(path, table, label=path)


def params_label(n: float) -> str:
    """A parameter count to 3 significant digits in its unit: 20M, 125M, 1.32B, 70B, 1.5T."""
    n = float(f"{n:.3g}")  # round first, so 999.6M reads 1B rather than 1e+03M
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:g}{unit}"
    return f"{n:g}"


SYNTHETIC_VOCAB = 32000
SYNTHETIC_ASPECT = 128  # hidden_size / n_layers; Llama-2-7B has 4096/32 = 128
MIN_SYNTHETIC_PARAMS = 8.3e6  # h = 128, one layer, FFN 16: the embeddings alone are 2 x 32000 x 128
SYNTHETIC_TP_HEADS = 8  # from hidden 2048 on, heads are a multiple of this so tp 1-8 can shard them


def synthetic_model(params: float) -> Model:
    """A Llama-shaped model with about `params` parameters (within 0.1% above ~50M, 2% everywhere).

    Shape rule: vocab 32000, untied embeddings, SwiGLU, RMSNorm, no biases, multi-head attention with
    head_dim 64 below hidden 2048 and 128 from there. The hidden size h solves
    12 h^3 / 128 + 2 * 32000 * h = params (layers = h / 128, FFN = 8h/3) and is rounded to a multiple
    of 64; layers = max(1, round(h / 128)). From h = 2048 on, h is then rounded to a multiple of 1024 so
    the head count is a multiple of 8 and tp 1, 2, 4 and 8 all divide it (layers keep the unrounded h);
    below, h is a multiple of head_dim. Then the FFN width is solved so the count matches `params`,
    rounded to a multiple of 16 (where rounding leaves no room for it, h steps down by head_dim). Raises
    InputError below MIN_SYNTHETIC_PARAMS.
    """
    try:
        size = float(params)
    except (TypeError, ValueError):
        size = math.nan
    if isinstance(params, bool) or not (math.isfinite(size) and 0 < size <= MAX_PARAMS):
        raise InputError(f"synthetic model size {params!r} is not a finite number in (0, {MAX_PARAMS:g}] (MAX_PARAMS)")
    v = SYNTHETIC_VOCAB
    lo, hi = 1.0, 1e6
    for _ in range(100):  # bisection on the monotone cubic
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if 12 * mid**3 / SYNTHETIC_ASPECT + 2 * v * mid < params else (lo, mid)
    h = max(128, 64 * round(lo / 64))
    if h < 2048:
        head_dim = 64
        h = head_dim * max(1, round(h / head_dim))
        n_layers = max(1, round(h / SYNTHETIC_ASPECT))
    else:
        head_dim = 128
        n_layers = round(h / SYNTHETIC_ASPECT)
        h = SYNTHETIC_TP_HEADS * head_dim * max(2, round(h / (SYNTHETIC_TP_HEADS * head_dim)))

    def ffn_width(h, n_layers):
        fixed = 2 * v * h + h + n_layers * (4 * h * h + 2 * h)
        return 16 * round((params - fixed) / (3 * h * n_layers) / 16)

    ffn = ffn_width(h, n_layers)
    # Rounding h up to its multiple can leave no room for an FFN; a narrower model then fits (small sizes only).
    while ffn < 16 and h > 2 * head_dim and h < 2048:
        h -= head_dim
        n_layers = max(1, round(h / SYNTHETIC_ASPECT))
        ffn = ffn_width(h, n_layers)
    if ffn < 16:
        raise InputError(f"synthetic model size {params:.3g} is too small; expected at least "
                         f"{MIN_SYNTHETIC_PARAMS / 1e6:g}M parameters")
    model = Model(
        name=f"synthetic-{params_label(params)}",
        n_layers=n_layers,
        hidden_size=h,
        n_heads=h // head_dim,
        n_kv_heads=h // head_dim,
        head_dim=head_dim,
        ffn_size=ffn,
        ffn_type="swiglu",
        vocab_size=v,
        tied_embeddings=False,
        family="synthetic",
    )
    return model


def kv_cache_row_bytes(model: Model, kv_dtype: str = "bf16", tp: int = 1) -> float:
    """KV-cache bytes one token occupies in one layer on one of `tp` GPUs: K and V of its
    ceil(kv_heads / tp) heads (heads are replicated when tp exceeds them), or, for latent attention, the
    latent and rotary key, which every GPU keeps whole (vLLM replicates the MLA cache across TP ranks)."""
    nbytes = dtype_bytes(kv_dtype, "kv dtype")
    if model.is_mla:
        return (model.kv_lora_rank + model.qk_rope_head_dim) * nbytes
    return 2.0 * math.ceil(model.n_kv_heads / tp) * model.head_dim * nbytes


def kv_bytes_per_token(model: Model, kv_dtype: str = "bf16", tp: int = 1) -> float:
    """KV-cache bytes one token occupies across all layers and all `tp` GPUs (2 x layers x kv_heads x
    head_dim x bytes for tp 1 and multi-head or grouped attention). Sliding-window layers are counted as
    full ones: the cache is sized for every token, as an engine without a hybrid allocator does."""
    return tp * model.n_layers * kv_cache_row_bytes(model, kv_dtype, tp)


def dtype_bytes(dtype: str, what: str = "dtype") -> float:
    """Bytes per element of a weight or KV dtype name."""
    try:
        return DTYPE_BYTES[dtype]
    except (KeyError, TypeError):
        raise InputError(f"unknown {what} {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}") from None
