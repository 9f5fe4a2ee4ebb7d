"""The `sdsl-sim` command line: a thin layer over the library.

Every command module in this package defines `register(subparsers)`, which adds its sub-command and
sets `handler` to a function of the parsed arguments. A handler returns a dict (printed as one JSON
object with `--json`, else as aligned `key: value` lines) or None when it printed its own output.
Bad input anywhere raises `InputError` and ends as one `error: ...` line on stderr, exit status 2.
"""

import argparse
import importlib
import json
import math
import sys

from ..errors import InputError
from ..units import DEFAULT_TRAIN_TOKENS, GAMMA, PARAMS, TRAIN_TOKENS, Range, parse_count, parse_int, parse_real

# Order is the order of `sdsl-sim --help`.
COMMAND_MODULES = ("analytic", "hardware", "sweep", "simulate", "nstar", "tree", "report")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as InputError (one line, exit 2) instead of usage text."""

    def error(self, message):
        raise InputError(f"{self.prog}: {message}")


def arg_type(parse):
    """Wrap a parser that raises InputError as an argparse `type=`, so argparse names the option."""

    def convert(text):
        try:
            return parse(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def count_type(what: str = "value", bounds: Range = PARAMS):
    """argparse `type=` for counts written as 70e9, 70B, 277M or 1.5T, within `bounds`."""
    return arg_type(lambda text: parse_count(text, what, bounds))


def int_type(bounds: Range):
    """argparse `type=` for an exact integer within `bounds` (`1e3` is accepted, `2.5` is not)."""
    return arg_type(lambda text: parse_int(text, bounds))


def real_type(bounds: Range):
    """argparse `type=` for a finite number within `bounds`."""
    return arg_type(lambda text: parse_real(text, bounds))


def parse_text(text: str) -> str:
    """A name or path as given; an empty or blank one is an error, never "not given"."""
    if not text.strip():
        raise InputError(f"{text!r} is empty; expected a name or a path")
    if "\0" in text:
        raise InputError(f"{text!r} holds a NUL character; expected a name or a path")
    return text


text_type = arg_type(parse_text)
ALPHA = Range(0.0, 1.0, low_open=True, high_open=True)


def parse_alpha(text: str) -> float:
    return parse_real(text, ALPHA)


alpha_type = arg_type(parse_alpha)


def parse_list(text: str, parse) -> list:
    """A comma-separated list, each item through `parse`; at least one item."""
    items = [part for part in text.split(",") if part.strip()]
    if not items:
        raise InputError(f"{text!r} is empty; expected a comma-separated list")
    return [parse(item) for item in items]


def gamma_type(*policies: str):
    """argparse `type=` for a lookahead: an integer in [0, MAX_GAMMA], or one of the named `policies`."""

    def parse(text: str):
        if text in policies:
            return text
        try:
            return parse_int(text, GAMMA)
        except InputError as exc:
            if not policies:
                raise
            raise InputError(f"{exc}, or one of {', '.join(map(repr, policies))}") from None

    return arg_type(parse)


def add_train_tokens(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-tokens", type=count_type("token count", TRAIN_TOKENS), default=DEFAULT_TRAIN_TOKENS, metavar="D",
                        help=f"pre-training tokens of both models, for the SDSL laws (default {DEFAULT_TRAIN_TOKENS:g})")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="sdsl-sim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sdsl-sim {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def _jsonable(value):
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def emit(result: dict, as_json: bool) -> None:
    result = _jsonable(result)
    if as_json:
        print(json.dumps(result))
        return
    width = max(map(len, result), default=0)
    for key, value in result.items():
        if isinstance(value, float):
            value = f"{value:.6g}"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        print(f"{key:<{width}}  {value}")


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        result = args.handler(args)
        if result is not None:
            emit(result, getattr(args, "json", False))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        sys.stderr.close()
    except OSError as exc:  # a file or folder the user named: unwritable, full, a file where a folder goes
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
