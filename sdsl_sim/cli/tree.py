"""`sdsl-sim tree`: the token tree that minimises TPOT on a GPU for a positional acceptance
(sdsl_sim.tree_size)."""

import json
from pathlib import Path

from ..errors import InputError
from ..units import GAMMA, MAX_DIM, TP, TREE_NODES, count_range
from . import add_batch, add_context, add_dtypes, add_json_flag, add_runtime, command, int_type, text_type


def parse_tree_accept(text: str) -> list:
    """--tree-accept: an inline list of lists ("[[0.7, 0.2], [0.6]]") or a TOML file with a `tree_accept` key."""
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"--tree-accept {text!r} is not a list of lists of numbers ({exc.msg})") from None
    else:
        from ..tomlfile import read_toml

        data = read_toml(Path(text), text)
        if "tree_accept" not in data:
            raise InputError(f"{text}: no 'tree_accept' key; expected tree_accept = [[q(d1, r1), ...], ...]")
        value = data["tree_accept"]
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise InputError(f"--tree-accept {text!r}: expected a list per depth of acceptance per sibling rank")
    return value


def tree(args) -> dict:
    from ..analytic import marginal_acceptance
    from ..costs import Deployment, check_memory
    from ..hardware import load_gpu, load_runtime
    from ..models import load_model
    from ..speculation import head_model
    from ..tree_size import hardware_tree, pricer_for

    accept = parse_tree_accept(args.tree_accept)
    marginal_acceptance(accept, args.tree_accept_kind)  # one error line for a bad profile, before any pricing
    if args.max_depth is not None and args.max_depth > len(accept):
        raise InputError(f"tree --max-depth {args.max_depth}: --tree-accept gives {len(accept)} depths; expected "
                         f"at most {len(accept)} (or acceptance for every depth)")
    depth = len(accept) if args.max_depth is None else args.max_depth
    target = load_model(args.target)
    gpu = load_gpu(args.hardware)
    runtime = load_runtime(gpu.default_runtime if args.runtime is None else args.runtime)
    if args.method == "draft-model":
        if args.draft is None:
            raise InputError("tree --method draft-model: give the draft checkpoint with --draft NAME")
        drafter, draft_tp, draft_runtime = load_model(args.draft), 1, runtime.for_draft()
    else:
        if args.draft is not None:
            raise InputError(f"tree --draft {args.draft!r} with --method {args.method}: the head is built from the "
                             "target; expected no --draft")
        drafter = head_model(args.method, target, heads=depth, draft_vocab=args.draft_vocab or 0)
        draft_tp, draft_runtime = args.tp, runtime
    dtypes = dict(weight_dtype=args.dtype, kv_dtype=args.kv_dtype)
    check_memory([target, drafter], gpu, batch=args.batch, context=args.context + args.max_nodes + 1, tp=args.tp,
                 runtime=runtime, **dtypes)
    served = Deployment.of(target, gpu, tp=args.tp, runtime=runtime, **dtypes)
    draft = Deployment.of(drafter, gpu, tp=draft_tp, runtime=draft_runtime, **dtypes)
    choice = hardware_tree(pricer_for(served, draft), accept, method=args.method, batch=args.batch,
                           context=args.context, max_nodes=args.max_nodes, max_depth=depth,
                           kind=args.tree_accept_kind)
    return {"target": target.name, "method": args.method, "hardware": gpu.name, "tp": args.tp, "batch": args.batch,
            "context": args.context, "max_nodes": args.max_nodes, **choice.summary()}


def register(subparsers) -> None:
    from ..analytic.trees import ACCEPT_KINDS
    from ..speculation import HEADS

    p = command(subparsers, "tree", "the token tree that minimises TPOT on a GPU (Sequoia's programme, priced "
                "per width)",
                "Find the token tree (within --max-nodes draft nodes) that minimises the expected time per output "
                "token for a positional acceptance, with the verification and drafting of each width priced on "
                "the GPU: the best tree shrinks as the batch grows and verification turns compute-bound.",
                ("sdsl-sim tree --target llama-3.1-8b --hardware h100-sxm "
                 "--tree-accept '[[0.6, 0.2, 0.1], [0.6, 0.2], [0.6], [0.6]]' --batch 8",
                 "sdsl-sim tree --target llama-3.1-70b --hardware b200 --tp 4 --tree-accept accept.toml "
                 "--max-nodes 32 --json"))
    p.add_argument("--target", required=True, type=text_type,
                   help="target model: a catalog name (see `sdsl-sim list models`), synthetic-<size>, or a "
                   "config.json or model .toml path")
    p.add_argument("--hardware", required=True, type=text_type, help="GPU profile name or TOML path")
    p.add_argument("--tree-accept", required=True, type=text_type, metavar="FILE|LIST",
                   help="acceptance per depth and sibling rank: '[[q11, q12], [q21]]' or a TOML file with tree_accept")
    p.add_argument("--tree-accept-kind", default="conditional", choices=ACCEPT_KINDS,
                   help="conditional (default: given the parent accepted and better siblings rejected) or "
                   "marginal (Sequoia's positional acceptance)")
    p.add_argument("--method", default="eagle", choices=("draft-model", *HEADS),
                   help="what drafts the tree (default eagle: an EAGLE-3 head built from the target)")
    p.add_argument("--draft", type=text_type, help="the draft checkpoint of --method draft-model")
    p.add_argument("--draft-vocab", type=int_type(count_range(MAX_DIM, "MAX_DIM")),
                   help="eagle: the head's reduced vocabulary (EAGLE-3: 32000; default the target's)")
    p.add_argument("--tp", type=int_type(TP), default=1, help="tensor-parallel GPUs of the target (default 1)")
    add_batch(p)
    add_context(p)
    p.add_argument("--max-nodes", type=int_type(TREE_NODES), default=64, help="draft-node budget (default 64)")
    p.add_argument("--max-depth", type=int_type(count_range(GAMMA.high, "MAX_GAMMA")),
                   help="deepest level (default: the depths --tree-accept gives)")
    add_runtime(p)
    add_dtypes(p)
    add_json_flag(p)
    p.set_defaults(handler=tree)
