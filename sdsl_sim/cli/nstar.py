"""`sdsl-sim nstar`: the TPOT-optimal draft size on a GPU beside the analytic N* (sdsl_sim.draft_size)."""

from ..errors import InputError
from ..units import BATCH, CONTEXT, SCALE, TP
from . import add_json_flag, add_train_tokens, count_type, int_type, real_type, text_type

def nstar(args) -> dict:
    from ..draft_size import hardware_n_star
    from ..hardware import load_gpu, load_runtime, scale_gpu
    from ..models import load_model, synthetic_model

    if (args.target is None) == (args.target_params is None):
        raise InputError("nstar: give exactly one of --target NAME or --target-params M")
    target = load_model(args.target) if args.target else synthetic_model(args.target_params)
    gpu = scale_gpu(load_gpu(args.hardware), bandwidth=args.bandwidth_scale, flops=args.flops_scale)
    runtime = load_runtime(gpu.default_runtime if args.runtime is None else args.runtime)
    result = hardware_n_star(target, gpu, train_tokens=args.train_tokens, tp=args.tp, draft_tp=args.draft_tp,
                             batch=args.batch, context=args.context, runtime=runtime,
                             weight_dtype=args.dtype, kv_dtype=args.kv_dtype)
    return {
        "target": target.name, "target_params": target.params, "hardware": gpu.name, "tp": args.tp,
        "draft_tp": args.draft_tp, "batch": args.batch, "context": args.context, "train_tokens": args.train_tokens,
        "dtype": args.dtype, "kv_dtype": args.kv_dtype,
        **result.summary(),
    }


def register(subparsers) -> None:
    p = subparsers.add_parser("nstar", help="TPOT-optimal draft size on a GPU beside the analytic N*")
    p.add_argument("--target", type=text_type, help="target model: a catalog name (see `sdsl-sim list models`), "
                   "synthetic-<size>, or a config.json or model .toml path")
    p.add_argument("--target-params", type=count_type("target size"), metavar="M", help="synthetic target (70B)")
    p.add_argument("--hardware", required=True, type=text_type, help="GPU profile name or TOML path")
    p.add_argument("--tp", type=int_type(TP), default=1, help="tensor-parallel GPUs of the target (default 1)")
    p.add_argument("--draft-tp", type=int_type(TP), default=1,
                   help="tensor-parallel GPUs of the draft (default 1, whatever the runtime's policy: the scan's "
                   "synthetic drafts have head counts a larger tp need not divide)")
    p.add_argument("--batch", type=int_type(BATCH), default=1, help="sequences decoded together (default 1)")
    p.add_argument("--context", type=int_type(CONTEXT), default=1024, help="tokens in each KV cache (default 1024)")
    add_train_tokens(p)
    p.add_argument("--runtime", type=text_type, help="engine runtime profile (default: the GPU's)")
    p.add_argument("--dtype", default="bf16", type=text_type, help="weight dtype of both models: bf16, fp16, fp8, int8, int4")
    p.add_argument("--kv-dtype", default="bf16", type=text_type, help="KV-cache dtype (default bf16)")
    p.add_argument("--bandwidth-scale", type=real_type(SCALE), default=1.0, help="what-if HBM bandwidth factor")
    p.add_argument("--flops-scale", type=real_type(SCALE), default=1.0, help="what-if FLOP/s factor")
    add_json_flag(p)
    p.set_defaults(handler=nstar)
