"""`sdsl-sim report NAME|all|calculator --out DIR [--format md|html]`: regenerate study pages (markdown,
figures, data); `--format html` adds a self-contained interactive HTML page beside each, an index and
the calculator; `report calculator` writes only the calculator."""

import sys
import time
from pathlib import Path

from ..errors import InputError
from ..units import WORKERS
from . import add_json_flag, command, int_type, text_type

FORMATS = ("md", "html")


def report(args) -> dict:
    from ..report import build_page, page_names

    if args.name not in (*page_names(), "all", "calculator"):
        raise InputError(f"unknown report {args.name!r}; expected one of {', '.join(page_names())}, calculator or all")
    Path(args.out).mkdir(parents=True, exist_ok=True)  # an unusable folder fails now, not after a sweep
    if args.name == "calculator":
        from ..report.html import write_calculator

        return {"out": args.out, "calculator": str(write_calculator(args.out))}
    names = page_names() if args.name == "all" else [args.name]
    html = args.format == "html"
    if html:
        from ..report.html import PAGE, write_calculator, write_index
    pages = {}
    started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        if sys.stderr.isatty() and not (args.json or args.no_progress):  # a log file gets no progress lines
            print(f"report {name} ...", file=sys.stderr, flush=True)
        path = build_page(name, args.out, workers=args.workers, progress=not args.no_progress, html=html)
        pages[name] = {"page": str(path), **({"html": str(path.parent / PAGE)} if html else {}),
                       "wall_s": time.perf_counter() - t0}
    result = {"out": args.out, "pages": pages}
    if html:
        result.update(index=str(write_index(args.out)), calculator=str(write_calculator(args.out)))
    return {**result, "wall_s": time.perf_counter() - started}


def register(subparsers) -> None:
    from ..report import page_names

    p = command(subparsers, "report", "regenerate a study page (or all of them)",
                "Run a study's sweeps (resumably, under DIR/.runs/) and write its page to DIR/NAME/: README.md, "
                "PNG figures and the data as CSV and parquet; --format html adds a self-contained interactive "
                "index.html beside it, DIR/index.html and the calculator DIR/calculator.html. Pages: "
                + ", ".join(page_names()) + "; `calculator` writes only the calculator.",
                ("sdsl-sim report validation --out reports",
                 "sdsl-sim report all --format html --out reports",
                 "sdsl-sim report calculator --out site"))
    p.add_argument("name", metavar="NAME", type=text_type,
                   help="a page name, all, or calculator: " + ", ".join(page_names()))
    p.add_argument("--out", default="reports", type=text_type, metavar="DIR", help="output folder (default reports)")
    p.add_argument("--format", choices=FORMATS, default="md",
                   help="md (default): README.md, PNGs and data; html: also an interactive, self-contained "
                        "index.html per page, DIR/index.html and DIR/calculator.html")
    p.add_argument("--workers", type=int_type(WORKERS), help="worker processes for the sweeps (default: CPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    add_json_flag(p)
    p.set_defaults(handler=report)
