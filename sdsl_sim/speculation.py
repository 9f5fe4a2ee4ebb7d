"""Speculation methods: what drafts the tokens a target verifies, and how many tokens each pass carries.

`[decoding] method` (issue 14):
- "draft-model": a separate checkpoint (`model.draft`) with its own KV cache, tensor parallelism and CUDA-graph
  setting (`Runtime.draft_cuda_graphs`); one draft pass per tree level.
- "eagle": an EAGLE-3 head (Li et al. 2025, arXiv 2503.01840): one decoder layer of the target's width, fed
  the target's low/mid/high features fused by a 3h -> h GEMM, and an LM head over the target's vocabulary or
  a reduced draft vocabulary (`draft_vocab`); one pass per tree level, at the target's tp and under its
  graphs. Approximations: the fuse GEMM is priced in every level's pass (EAGLE-3 runs it once per round),
  the layer's QKV takes h inputs (EAGLE-3's takes [embedding; features], 2h), and an MoE target's head is
  a dense layer of the target's active MLP width.
- "medusa": k heads on the target's last hidden state (Cai et al. 2024, arXiv 2401.10774), each a residual
  block (h -> h) and its own LM head, all run in ONE pass per iteration (k = the tree's depth or the chain
  length); priced as one stacked h -> k h GEMM and one h -> k V head.
- "mtp": a DeepSeek-V3 multi-token-prediction module per depth (DeepSeek-V3 report s.2.2): a 2h -> h
  projection of [embedding; hidden], one decoder layer of the target's own kind (MoE and latent attention
  where the target has them), the shared LM head; one pass per level, at the target's tp and graphs.
- "ngram": prompt lookup on the host (vLLM's `ngram` method): no GPU pass; each step scans every
  sequence's context (`Runtime.ngram_s_per_context_token`) and a sequence proposes only when a match
  exists, a `trigger_rate` share of its iterations; the others verify their last token alone.
Head weights come from the target's shapes: no catalog entry is needed. Their memory counts the head's own
embedding-sized table, an overestimate of one vocab x hidden matrix where the engine shares the target's.

A `Shape` says how wide an iteration is at each lookahead gamma the policy picks: a chain of gamma drafts,
or a token tree cut at depth gamma (its nodes of depth <= gamma). Verification carries the last accepted
token and every node; a sequential drafter's level-d pass carries the nodes of depth d - 1 (the root alone
at level 1).
"""

import dataclasses
from dataclasses import dataclass

import numpy as np

from .analytic.trees import node_depths
from .errors import InputError
from .models import Model

METHODS = ("draft-model", "eagle", "medusa", "mtp", "ngram")
SEQUENTIAL = ("draft-model", "eagle", "mtp")  # one draft pass per tree level
HEADS = ("eagle", "medusa", "mtp")  # drafters built from the target's shape
_NO_MOE = dict(num_experts=0, experts_per_token=0, shared_experts=0, moe_ffn_size=0, first_dense_layers=0,
               routing_skew=0.0)
_NO_MLA = dict(kv_lora_rank=0, q_lora_rank=0, qk_rope_head_dim=0, v_head_dim=0)


def head_model(method: str, target: Model, *, heads: int = 1, draft_vocab: int = 0) -> Model:
    """The drafter of a head method as a `Model` built from the target's shape (see the module doc)."""
    h = target.hidden_size
    common = dict(tied_embeddings=True, mtp_layers=0, sliding_window=0, sliding_window_layers=0)
    if method == "eagle":
        ffn = target.ffn_size or (target.experts_per_token + target.shared_experts) * target.moe_ffn_size
        head_dim = target.head_dim + target.qk_rope_head_dim if target.is_mla else target.head_dim
        kv_heads = target.n_heads if target.is_mla else target.n_kv_heads
        return dataclasses.replace(target, name=f"{target.name}:eagle3", n_layers=1, ffn_size=ffn,
                                   ffn_type="swiglu", head_dim=head_dim, n_kv_heads=kv_heads,
                                   vocab_size=draft_vocab or target.vocab_size, input_projection=(3 * h, h),
                                   **_NO_MOE, **_NO_MLA, **common)
    if method == "mtp":
        first_dense = 0 if target.is_moe else target.first_dense_layers
        return dataclasses.replace(target, name=f"{target.name}:mtp", n_layers=1, first_dense_layers=first_dense,
                                   input_projection=(2 * h, h), **common)
    if method == "medusa":
        return dataclasses.replace(target, name=f"{target.name}:medusa{heads}", n_layers=0,
                                   vocab_size=heads * target.vocab_size, input_projection=(h, heads * h),
                                   **_NO_MOE, **_NO_MLA, **common)
    raise InputError(f"method {method!r} has no head model; expected one of {', '.join(HEADS)}")


@dataclass(frozen=True)
class Shape:
    """Tokens per sequence in the passes of one iteration. `tree`: a parent list (None: a chain of the
    lookahead's length; a tree of branching 1 is stored as None, so it prices exactly as a chain)."""

    method: str = "draft-model"
    tree: tuple | None = None
    trigger_rate: float = 1.0

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"method {self.method!r} unknown; expected one of {', '.join(METHODS)}")
        if not 0.0 < self.trigger_rate <= 1.0:
            raise InputError(f"trigger_rate {self.trigger_rate!r}; expected a share in (0, 1]")
        if self.tree is not None and self.tree == tuple(range(-1, len(self.tree) - 1)):
            object.__setattr__(self, "tree", None)

    def _nodes_within(self, top: int) -> np.ndarray:
        """Nodes of depth <= g for g = 0..top (a chain: g)."""
        if self.tree is None:
            return np.arange(top + 1, dtype=float)
        counts = np.bincount(node_depths(self.tree), minlength=top + 1)[: top + 1]
        return np.cumsum(counts).astype(float)

    def verify_tokens(self, gamma):
        """Tokens per sequence the target verifies at lookahead gamma (broadcasts): 1 + the drafted nodes,
        which an n-gram drafter proposes in a `trigger_rate` share of iterations only (the mean)."""
        if self.tree is None:
            return 1.0 + self.trigger_rate * gamma
        g = np.asarray(gamma)
        nodes = self._nodes_within(int(g.max()) if g.size else 0)[g]
        return 1.0 + self.trigger_rate * nodes

    def slots(self, gamma: int) -> int:
        """Tokens per sequence a verification at lookahead gamma can carry (and KV slots it writes): the last
        accepted token and every node of depth <= gamma; the step's token budget counts these."""
        return 1 + int(self._nodes_within(gamma)[gamma]) if gamma else 1

    def draft_inputs(self, gamma: int) -> np.ndarray:
        """Tokens per sequence of each sequential draft pass up to lookahead gamma: 1, then the nodes of
        each depth below gamma."""
        if self.tree is None:
            return np.ones(gamma)
        counts = np.bincount(node_depths(self.tree), minlength=gamma + 1)
        return np.concatenate(([1.0], counts[1:gamma].astype(float)))

    def draft_passes(self, gamma):
        """GPU draft passes per iteration (broadcasts): gamma for a sequential drafter, one for Medusa's
        heads, none for n-gram lookup."""
        g = np.asarray(gamma) if np.ndim(gamma) else gamma
        if self.method in SEQUENTIAL:
            return g
        if self.method == "medusa":
            return (np.asarray(g) > 0).astype(int) if np.ndim(g) else int(g > 0)
        return 0 * g
