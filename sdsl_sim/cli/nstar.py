"""`sdsl-sim nstar`: the TPOT-optimal draft size on a GPU beside the analytic N* (sdsl_sim.draft_size)."""

from ..errors import InputError
from ..units import SCALE, TP
from . import (add_batch, add_context, add_dtypes, add_json_flag, add_runtime, add_train_tokens, command, count_type,
               int_type, real_type, text_type)

def nstar(args) -> dict:
    from ..api import hardware_n_star

    if (args.target is None) == (args.target_params is None):
        raise InputError("nstar: give exactly one of --target NAME or --target-params M")
    return hardware_n_star(args.target or args.target_params, args.hardware, tp=args.tp, draft_tp=args.draft_tp,
                           batch=args.batch, context=args.context, train_tokens=args.train_tokens,
                           runtime=args.runtime, dtype=args.dtype, kv_dtype=args.kv_dtype,
                           bandwidth_scale=args.bandwidth_scale, flops_scale=args.flops_scale).to_dict()


def register(subparsers) -> None:
    p = command(subparsers, "nstar", "TPOT-optimal draft size on a GPU beside the analytic N*",
                "Scan synthetic draft sizes (alpha from the SDSL law) for the one that minimises TPOT with this "
                "target on this GPU at this batch and context, and set it beside the paper's analytic N*, which "
                "assumes a pass costs time in proportion to parameters.",
                ("sdsl-sim nstar --target llama-3.1-70b --hardware h100-sxm --tp 4",
                 "sdsl-sim nstar --target-params 8B --hardware b200 --batch 32 --context 4096 --json"))
    p.add_argument("--target", type=text_type, help="target model: a catalog name (see `sdsl-sim list models`), "
                   "synthetic-<size>, or a config.json or model .toml path")
    p.add_argument("--target-params", type=count_type("target size"), metavar="M", help="synthetic target (70B)")
    p.add_argument("--hardware", required=True, type=text_type, help="GPU profile name or TOML path")
    p.add_argument("--tp", type=int_type(TP), default=1, help="tensor-parallel GPUs of the target (default 1)")
    p.add_argument("--draft-tp", type=int_type(TP), default=1,
                   help="tensor-parallel GPUs of the draft (default 1, whatever the runtime's policy: the scan's "
                   "synthetic drafts have head counts a larger tp need not divide)")
    add_batch(p)
    add_context(p)
    add_train_tokens(p)
    add_runtime(p)
    add_dtypes(p)
    p.add_argument("--bandwidth-scale", type=real_type(SCALE), default=1.0, help="what-if HBM bandwidth factor")
    p.add_argument("--flops-scale", type=real_type(SCALE), default=1.0, help="what-if FLOP/s factor")
    add_json_flag(p)
    p.set_defaults(handler=nstar)
