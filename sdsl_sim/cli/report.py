"""`sdsl-sim report NAME|all --out DIR`: regenerate study pages (markdown, figures, data)."""

import sys
import time
from pathlib import Path

from ..errors import InputError
from ..units import WORKERS
from . import add_json_flag, int_type, text_type


def report(args) -> dict:
    from ..report import build_page, page_names

    if args.name != "all" and args.name not in page_names():
        raise InputError(f"unknown report {args.name!r}; expected one of {', '.join(page_names())} or all")
    names = page_names() if args.name == "all" else [args.name]
    Path(args.out).mkdir(parents=True, exist_ok=True)  # an unusable folder fails now, not after a sweep
    pages = {}
    started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        if not (args.json or args.no_progress):
            print(f"report {name} ...", file=sys.stderr, flush=True)
        path = build_page(name, args.out, workers=args.workers, progress=not args.no_progress)
        pages[name] = {"page": str(path), "wall_s": time.perf_counter() - t0}
    return {"out": args.out, "pages": pages, "wall_s": time.perf_counter() - started}


def register(subparsers) -> None:
    from ..report import page_names

    p = subparsers.add_parser("report", help="regenerate a study page (or all of them)",
                              description="Pages: " + ", ".join(page_names()))
    p.add_argument("name", metavar="NAME", type=text_type, help="a page name or all: " + ", ".join(page_names()))
    p.add_argument("--out", default="reports", type=text_type, metavar="DIR", help="output folder (default reports)")
    p.add_argument("--workers", type=int_type(WORKERS), help="worker processes for the sweeps (default: CPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    add_json_flag(p)
    p.set_defaults(handler=report)
