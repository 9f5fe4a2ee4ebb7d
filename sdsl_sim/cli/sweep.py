"""`sdsl-sim sweep FILE --out DIR`: run a sweep file's grid in parallel into one resumable parquet dataset."""

from ..units import WORKERS
from . import add_json_flag, command, int_type, text_type


def register(subparsers) -> None:
    parser = command(
        subparsers, "sweep", "run a sweep file's grid into a parquet dataset (resumable)",
        "Evaluate every point of a sweep file's grid and write one parquet part per finished chunk of "
        "points to DIR (read it with pandas.read_parquet(DIR), at any moment). Started again on the same "
        "DIR, it checks the parts there, moves bad ones to DIR/_quarantine/ and skips the points it "
        "keeps. One sweep at a time per DIR.",
        ("sdsl-sim sweep example-sweep --out runs/example",
         "sdsl-sim sweep my-grid.toml --out runs/grid --executor dask --scheduler tcp://10.0.0.5:8786"),
    )
    parser.add_argument("file", metavar="FILE", type=text_type, help="sweep file (.toml) or the name of one in scenarios/")
    parser.add_argument("--out", required=True, type=text_type, metavar="DIR", help="dataset directory (created if missing)")
    parser.add_argument(
        "--workers", type=int_type(WORKERS), default=None, metavar="N",
        help="local worker processes (default: the number of CPUs; never more than the points left)",
    )
    parser.add_argument(
        "--executor", choices=("local", "dask"), default=None,
        help="local processes (default) or a dask.distributed cluster (default with --scheduler)",
    )
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", type=text_type, help="dask.distributed scheduler address, for --executor dask"
    )
    parser.add_argument(
        "--allow-large", action="store_true",
        help="run a grid of more than 100,000 points (it streams: points are checked and run as they come)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_json_flag(parser)
    parser.set_defaults(handler=_handle)


def _handle(args) -> dict:
    from ..errors import InputError
    from ..sweep import load_sweep, run_sweep

    executor = args.executor or ("dask" if args.scheduler else "local")
    if args.scheduler and executor != "dask":
        raise InputError("--scheduler is for --executor dask; expected --executor dask or no --executor")
    sweep = load_sweep(args.file)
    return run_sweep(
        sweep,
        args.out,
        executor=executor,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.no_progress,
        allow_large=args.allow_large,
    )
