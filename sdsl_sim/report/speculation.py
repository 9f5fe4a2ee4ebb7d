"""Which speculation: speedup against batch of a draft model at its hardware N*, an EAGLE-3 chain and its
best tree, MTP-style heads and n-gram lookup, for two dense Llama targets and the MoE DeepSeek-V3, each on
two GPUs.

Data: the acceptance inputs in `sdsl_sim/data/speculation_acceptance.toml` (published mean acceptance
lengths, each with its source) and expected-value step costs (`step.StepPricer`, `tree_size`,
`draft_size`); no sweep file, no randomness.
"""

from importlib.resources import files

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

from ..analytic import alpha_from_expected_tokens, expected_tokens_per_iteration, node_depths
from ..costs import Deployment, experts_touched
from ..draft_size import hardware_n_star
from ..hardware import load_gpu, load_runtime
from ..models import load_model
from ..speculation import Shape, head_model
from ..step import StepPricer
from ..tomlfile import read_toml
from ..tree_size import hardware_tree, pricer_for, tree_accept_for_budget
from .axes import batch_axis
from .page import REVISION_FIGURES, REVISION_ROW_TILES, Page

TITLE = "Which speculation: draft model, EAGLE-3 chain or tree, MTP heads or n-gram, against batch"
# target -> (tp, weight dtype, GPUs). DeepSeek-V3 is the MoE target: 671B in its native fp8 needs 8 GPUs of
# more than 80 GB, so its first panel is the H200 (the H100 with 141 GB) rather than the H100.
SETUPS = {"llama-3.1-8b": (1, "bf16", ("h100-sxm", "b200")),
          "llama-3.1-70b": (4, "bf16", ("h100-sxm", "b200")),
          "deepseek-v3": (8, "fp8", ("h200-sxm", "b200"))}
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTEXT = 1024  # tokens in each KV cache
RUNTIME = "vllm"
DRAFT_VOCAB = 32000  # EAGLE-3 heads' reduced vocabulary (yuhuili/EAGLE3-LLaMA3.1-Instruct-8B config)
METHODS = ("draft model at hardware N*", "EAGLE-3 chain", "EAGLE-3 best tree", "MTP heads", "n-gram")
COLORS = dict(zip(METHODS, ("tab:grey", "tab:blue", "tab:purple", "tab:green", "tab:orange")))


def _inputs() -> dict:
    return read_toml(files("sdsl_sim") / "data" / "speculation_acceptance.toml", "data/speculation_acceptance.toml")


def _chain(pricer, alpha, gamma, batch, expected=None):
    """(speedup, gamma) of the TPOT-best lookahead 0..gamma."""
    tokens = expected_tokens_per_iteration(alpha, np.arange(gamma + 1)) if expected is None else expected
    tpot = pricer.tpot_by_gamma(batch, float(CONTEXT), tokens)
    best = int(np.argmin(tpot))
    return float(tpot[0] / tpot[best]), best


def rows() -> pd.DataFrame:
    """One row per target, GPU, batch and method the acceptance inputs cover: EAGLE-3 where the data has a
    head's measured acceptance for the target, the SDSL law's draft only for dense targets (its perplexity
    fit is for dense families), MTP and n-gram everywhere."""
    data, out = _inputs(), []
    runtime = load_runtime(RUNTIME)
    ngram = data["ngram"]
    ngram_alpha = alpha_from_expected_tokens(ngram["acceptance_length"], ngram["gamma"])
    ngram_tokens = 1 + ngram["trigger_rate"] * (
        expected_tokens_per_iteration(ngram_alpha, np.arange(ngram["gamma"] + 1)) - 1)
    for target_name, (tp, dtype, gpus) in SETUPS.items():
        target = load_model(target_name)
        chain_in, tree_in = data["eagle-chain"].get(target_name), data["eagle-tree"].get(target_name)
        for gpu_name in gpus:
            gpu = load_gpu(gpu_name)
            served = Deployment.of(target, gpu, tp=tp, weight_dtype=dtype, runtime=runtime)

            def head(method):
                return Deployment.of(head_model(method, target, draft_vocab=DRAFT_VOCAB if method == "eagle" else 0),
                                     gpu, tp=tp, weight_dtype=dtype, runtime=runtime)

            mtp = StepPricer.of(served, head("mtp"), Shape("mtp"))
            ngram_pricer = StepPricer.of(served, None, Shape("ngram", trigger_rate=ngram["trigger_rate"]))
            for batch in BATCHES:
                found, extra = {}, {}
                if not target.is_moe:
                    nstar = hardware_n_star(target, gpu, tp=tp, batch=batch, context=CONTEXT, runtime=runtime,
                                            weight_dtype=dtype)
                    found[METHODS[0]] = (nstar.at_hardware.speedup, nstar.at_hardware.gamma)
                    extra[METHODS[0]] = {"draft_params": nstar.n_star_hardware}
                if chain_in:
                    alpha = alpha_from_expected_tokens(chain_in["acceptance_length"], chain_in["gamma"])
                    found[METHODS[1]] = _chain(StepPricer.of(served, head("eagle")), alpha, chain_in["gamma"], batch)
                if tree_in:
                    accept = tree_accept_for_budget(tree_in["acceptance_length"], tree_in["nodes"], tree_in["gamma"])
                    tree = hardware_tree(pricer_for(served, head("eagle")), accept, method="eagle", batch=batch,
                                         context=CONTEXT, max_nodes=tree_in["nodes"], max_depth=tree_in["gamma"])
                    found[METHODS[2]] = (tree.baseline_tpot_s / tree.tpot_s, int(node_depths(tree.tree).max()))
                    extra[METHODS[2]] = {"tree_nodes": len(tree.tree), "expected_tokens_per_iteration": tree.expected_tokens}
                found[METHODS[3]] = _chain(mtp, data["mtp"]["acceptance_rate"], data["mtp"]["gamma"], batch)
                found[METHODS[4]] = _chain(ngram_pricer, ngram_alpha, ngram["gamma"], batch, ngram_tokens)
                for method, (speedup, gamma) in found.items():
                    out.append({"target": target_name, "tp": tp, "weight_dtype": dtype, "gpu": gpu_name,
                                "batch": batch, "method": method, "speedup_vs_autoregressive": speedup,
                                "gamma": gamma, "tree_nodes": np.nan, "expected_tokens_per_iteration": np.nan,
                                "draft_params": np.nan, **extra.get(method, {})})
    return pd.DataFrame(out)


def build(studies) -> Page:
    data, table = _inputs(), rows()
    page = Page("which-speculation", TITLE)
    page.text(_intro(data))
    page.figure("speedup", _figure(table), "Expected speedup over plain decoding against batch, one panel per "
                "target and GPU (vLLM runtime profile, 1024-token contexts). Chains pick their best lookahead up "
                "to the one their acceptance was measured at (0 = speculation off, speedup 1); the tree is the "
                "TPOT-best tree of at most 64 nodes and depth 8 at each batch.")
    page.text(_findings(table))
    page.text(_check_against_sglang(data))
    wide = table.pivot_table(index=["target", "gpu", "batch"], columns="method", values="speedup_vs_autoregressive")
    page.table(wide[list(METHODS)].reset_index())
    nodes = table[table.method == METHODS[2]].pivot_table(index="batch", columns=["target", "gpu"], values="tree_nodes")
    nodes.columns = [f"{target}, {gpu}" for target, gpu in nodes.columns]
    page.text("Nodes of the TPOT-best EAGLE-3 tree by batch:")
    page.table(nodes.reset_index(), floatfmt=".0f")
    page.text("Command: `sdsl-sim report which-speculation --out reports`; the best tree at one point: "
              "`sdsl-sim tree --target llama-3.1-8b --hardware h100-sxm --tree-accept FILE --batch B --json`.")
    page.data("which_speculation", table)
    page.text(REVISION_ROW_TILES + "The best tree's node count now never rises with batch (it rose at three "
              "batches: llama-3.1-8b on h100-sxm 26 -> 32 nodes from batch 4 to 8, on b200 13 -> 16 from 8 to 16 "
              "and 2 -> 3 from 128 to 256); 8B tree speedups at batch 64 fall by up to 0.21x.")
    page.text("**Revision (MoE target).** New: deepseek-v3 at tp 8 in fp8 on the H200 and B200 with its MTP "
              "module and n-gram lookup, and a `weight_dtype` column in the data; the Llama rows are unchanged.")
    page.text(REVISION_FIGURES + "The figure itself is unchanged.")
    return page


def _intro(data) -> str:
    c8, c70 = data["eagle-chain"]["llama-3.1-8b"], data["eagle-chain"]["llama-3.1-70b"]
    t8, t70 = data["eagle-tree"]["llama-3.1-8b"], data["eagle-tree"]["llama-3.1-70b"]
    ng, mtp = data["ngram"], data["mtp"]
    return f"""
Which drafter pays at a given batch on a given GPU? Each method's acceptance is a published mean
acceptance length (tokens per target iteration, the bonus token included), used as an input and converted
by the simulator's stated rules; the costs are the simulator's step costs on the GPU profiles. Targets:
llama-3.1-8b on one GPU and llama-3.1-70b at tp 4 in bf16, and the mixture-of-experts deepseek-v3 (256
routed experts, 8 per token, MLA) at tp 8 in its native fp8 on the H200 and B200 (it does not fit on eight
80 GB H100s); the `{RUNTIME}` runtime profile, every KV cache {CONTEXT} tokens long. Acceptance inputs
(`sdsl_sim/data/speculation_acceptance.toml`):

- **Draft model at hardware N\\***: the synthetic draft that minimises TPOT at each batch, its acceptance from
  the SDSL law (`sdsl-sim nstar`); no measured acceptance. Dense targets only: the law's perplexity fit is
  for dense model families.
- **EAGLE-3 chain**: mean acceptance length {c8['acceptance_length']} at k = {c8['gamma']} for 8B ({c8['source']}),
  {c70['acceptance_length']} at k = {c70['gamma']} for 70B (Llama-3.3-70B head, temperature 1; {c70['source']}),
  each converted to the i.i.d. alpha that gives it by Leviathan's formula. The head: one decoder layer of
  the target's width, the 3h -> h feature fusion, a {DRAFT_VOCAB}-token LM head, at the target's tp.
- **EAGLE-3 best tree**: SGLang's {t8['acceptance_length']} (8B) and {t70['acceptance_length']} (70B) with
  {t8['gamma']} steps and {t70['nodes']} draft tokens ({t8['source']}; {t70['source']}), converted to the
  conditional profile q(d, r) = a / r whose best {t70['nodes']}-node tree of depth {t8['gamma']} yields that
  length (`tree_size.tree_accept_for_budget`); at each batch the TPOT-best tree for that profile (Sequoia's
  programme, every candidate priced by the step cost).
- **MTP heads**: DeepSeek-V3's one MTP module accepts its token {mtp['acceptance_rate']:.3g} of the time
  (85-90%, {mtp['source']}), so for deepseek-v3 this is its own head (one MLA + MoE block, the 2h -> h
  projection, the shared LM head, one draft token); Llama checkpoints ship no MTP module, so for them it is
  a what-if of such a head (one dense decoder layer).
- **n-gram**: vLLM prompt lookup, mean acceptance length {ng['acceptance_length']} at k = {ng['gamma']} over
  drafting steps with a match in {ng['trigger_rate']:.1%} of steps ({ng['source']}): a code-editing workload
  whose outputs copy their prompts; chat prompts match far less often. Measured on Llama-3.1-8B; for the
  other targets the same acceptance is assumed.
- EAGLE-3 for deepseek-v3: no published acceptance for a DeepSeek-V3 EAGLE-3 head is in the data, so its
  panels have none.
"""


def _findings(table: pd.DataFrame) -> str:
    lines = []
    for (target, gpu), g in table.groupby(["target", "gpu"], sort=False):
        best = g.loc[g.groupby("batch").speedup_vs_autoregressive.idxmax()]
        first, last = best.iloc[0], best.iloc[-1]
        nodes = g[g.method == METHODS[2]].tree_nodes
        tree = (f"; the best tree has {int(nodes.iloc[0])} nodes at batch 1 and {int(nodes.iloc[-1])} at batch "
                f"{int(last.batch)}" if len(nodes) else "")
        lines.append(f"- **{target} on {gpu}**: best at batch 1 is {first.method} ({first.speedup_vs_autoregressive:.2f}x), "
                     f"at batch {int(last.batch)} {last.method} ({last.speedup_vs_autoregressive:.2f}x){tree}.")
    rises = []
    for (target, gpu), g in table[table.method == METHODS[2]].groupby(["target", "gpu"], sort=False):
        n = g.sort_values("batch")
        for (b0, n0), (b1, n1) in zip(zip(n.batch, n.tree_nodes), list(zip(n.batch, n.tree_nodes))[1:]):
            if n1 > n0:
                rises.append(f"{target} on {gpu}: {int(n0)} nodes at batch {int(b0)}, {int(n1)} at {int(b1)}")
    shape = ("The node count is not monotone: it rises between some batches (" + "; ".join(rises) + ")."
             if rises else "The node count never rises with batch.")
    return ("What the curves say:\n\n" + "\n".join(lines) + "\n\nTrees win while verification is "
            "memory-bound (extra verified tokens are nearly free) and shrink as batch x (nodes + 1) turns the "
            "target pass compute-bound. " + shape + " n-gram lookup costs no GPU pass, so its gain "
            "lasts longest with batch, but only on workloads whose outputs repeat their prompts.\n\n" + _moe_shape(table))


def _moe_shape(table: pd.DataFrame) -> str:
    """The MoE target's MTP curve: where verification's expert union costs most."""
    moe = next(load_model(t) for t in SETUPS if load_model(t).is_moe)

    def union(tokens):
        return float(experts_touched(moe.num_experts, moe.experts_per_token, tokens))

    parts = []
    for gpu, g in table[(table.target == moe.name) & (table.method == METHODS[3])].groupby("gpu", sort=False):
        g = g.set_index("batch").speedup_vs_autoregressive
        parts.append(f"on {gpu} {g.iloc[0]:.2f}x at batch 1, {g.min():.2f}x at batch {int(g.idxmin())}, "
                     f"{g.iloc[-1]:.2f}x at batch {int(g.index[-1])}")
    return (f"**The MoE target.** {moe.name}'s MTP speedup is not monotone in batch (" + "; ".join(parts) + "). "
            "A verification of 2 tokens per sequence routes twice the tokens, and until a step's tokens touch "
            "every expert that reads more distinct experts than a plain step (`costs.experts_touched`, per "
            f"layer: {union(1):.0f} of {moe.num_experts} at batch 1 against {union(2):.1f}; {union(16):.0f} at "
            f"batch 16 against {union(32):.0f}), so verifying costs more than on a dense target, most where "
            "expert reads dominate the pass; once a plain step already touches every expert, the extra token "
            "reads no new weights and the speedup recovers, as MoESD (arXiv 2505.19645) reports for MoE "
            f"targets at medium batch. DeepSeek-V3's report measured {_inputs()['mtp']['measured_tps_ratio']}x "
            "tokens per second with this module, its serving setup not stated: the same order as the batch-1 "
            "values here.")


def _check_against_sglang(data) -> str:
    """The 70B tree row's own measured speedup beside this page's prediction for its setup (H100, its tp,
    batch 1): the one published tree measurement with a baseline, so not used to set anything."""
    row = data["eagle-tree"]["llama-3.1-70b"]
    target, gpu, runtime = load_model("llama-3.1-70b"), load_gpu("h100-sxm"), load_runtime("sglang")
    tp = row["measured_tp"]
    served = Deployment.of(target, gpu, tp=tp, runtime=runtime)
    eagle = Deployment.of(head_model("eagle", target, draft_vocab=DRAFT_VOCAB), gpu, tp=tp, runtime=runtime)
    accept = tree_accept_for_budget(row["acceptance_length"], row["nodes"], row["gamma"])
    tree = hardware_tree(pricer_for(served, eagle), accept, method="eagle", batch=1, context=CONTEXT,
                         max_nodes=row["nodes"], max_depth=row["gamma"])
    measured = row["measured_tokens_per_s"] / row["baseline_tokens_per_s"]
    predicted = tree.baseline_tpot_s / tree.tpot_s
    return (f"**Against a measurement.** The 70B tree row's source also measured its speedup: "
            f"{row['measured_tokens_per_s']} against {row['baseline_tokens_per_s']} tokens/s at batch 1 on "
            f"{tp} x H100, {measured:.2f}x. This page's model of that setup (tp {tp}, the `sglang` runtime profile, "
            f"its best tree for the same acceptance) predicts {predicted:.2f}x, {predicted / measured - 1:+.0%}. "
            "The gap is the engine's tree work the runtime profiles do not price per tree (top-k selection, "
            "tree masks and position ids built each step) and a "
            "dynamic tree that differs from the optimal one: read the tree curves as an upper bound.")


def _figure(table: pd.DataFrame):
    """One row of panels per target, one column per GPU."""
    panels = list(table.groupby(["target", "gpu"], sort=False))
    columns = max(len(gpus) for _, _, gpus in SETUPS.values())
    fig, axes = plt.subplots(len(SETUPS), columns, figsize=(4.6 * columns, 3.4 * len(SETUPS)), sharey=True,
                             squeeze=False)
    for ax, ((target, gpu), g) in zip(axes.flat, panels):
        for method in METHODS:
            m = g[g.method == method]
            ax.plot(m.batch, m.speedup_vs_autoregressive, "o-", ms=3.5, color=COLORS[method], label=method)
        ax.axhline(1.0, color="black", lw=0.8)
        batch_axis(ax, g.batch)
        ax.set_title(f"{target}, {gpu}", fontsize=10)
        ax.set_xlabel("batch")
    for row in axes:
        row[0].set_ylabel("speedup over plain decoding (x)")
    axes[0][0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
