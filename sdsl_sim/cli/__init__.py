"""The `sdsl-sim` command line.

Every command module in this package defines `register(subparsers)`, which adds its sub-command with
`command` (a one-line summary, a description for users, two examples) and sets `handler` to a function of
the parsed arguments. A handler returns a dict (printed as one JSON
object with `--json`, else as aligned `key: value` lines) or None when it printed its own output.
Bad input anywhere raises `InputError` and ends as one `error: ...` line on stderr, exit status 2.
"""

import argparse
import importlib
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..units import (BATCH, CONTEXT, DEFAULT_CONTEXT, DEFAULT_TRAIN_TOKENS, GAMMA, PARAMS, TRAIN_TOKENS, Range, parse_count,
                     parse_int, parse_real)

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


def gamma_type(*policies: str, allowed=GAMMA):
    """argparse `type=` for a lookahead: an integer in `allowed` ([0, MAX_GAMMA]), or one of the named
    `policies`."""

    def parse(text: str):
        if text in policies:
            return text
        try:
            return parse_int(text, allowed)
        except InputError as exc:
            if not policies:
                raise
            raise InputError(f"{exc}, or one of {', '.join(map(repr, policies))}") from None

    return arg_type(parse)


def add_train_tokens(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-tokens", type=count_type("token count", TRAIN_TOKENS), default=DEFAULT_TRAIN_TOKENS, metavar="D",
                        help=f"pre-training tokens of both models, for the SDSL laws (default {DEFAULT_TRAIN_TOKENS:g})")


# The flags several commands share: one meaning, one default, one set of accepted forms each.


def add_batch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int_type(BATCH), default=1, help="sequences decoded together (default 1)")


def add_context(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--context", type=int_type(CONTEXT), default=DEFAULT_CONTEXT, metavar="TOKENS",
                        help="tokens already in each sequence's KV cache when decoding starts: the prompt "
                             f"(default {DEFAULT_CONTEXT})")


def add_dtypes(parser: argparse.ArgumentParser) -> None:
    from ..models import DTYPE_BYTES

    parser.add_argument("--dtype", "--weight-dtype", dest="dtype", default="bf16", choices=list(DTYPE_BYTES),
                        help="weight dtype of every model (default bf16)")
    parser.add_argument("--kv-dtype", default="bf16", choices=list(DTYPE_BYTES), help="KV-cache dtype (default bf16)")


def add_runtime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", type=text_type, metavar="NAME|PATH",
                        help="engine runtime profile: vllm, vllm-v0, sglang, trtllm, hf-transformers, gpt-fast, ... "
                             "or a .toml path (default: the GPU profile's; see `sdsl-sim list runtimes`)")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def add_result_flags(parser: argparse.ArgumentParser) -> None:
    """--json, --output FILE and --metric-percentiles: the flags of commands that print a run's result."""
    add_json_flag(parser)
    parser.add_argument("--output", metavar="FILE", type=text_type,
                        help="also write the result as one JSON object to FILE (vLLM's --result-filename)")
    parser.add_argument("--metric-percentiles", type=arg_type(parse_percentiles), metavar="P,P,...",
                        help="latency percentiles of the result's pNN_ keys, as vLLM's (default: the "
                             "scenario's run.metric_percentiles, 50,90,99)")


def parse_percentiles(text: str) -> list:
    from ..scenario import check_percentiles

    return check_percentiles(parse_list(text, lambda item: parse_real(item, PERCENTILE)), repr(text))


PERCENTILE = Range(0.0, 100.0)


@dataclass(frozen=True)
class Shown:
    """A handler's result with its own rendering for a terminal: `data` is what --json prints and --output
    writes; `render(data)` prints the human form."""

    data: dict
    render: Callable[[dict], None]


def write_json(path: str, result: dict) -> None:
    """The result as one JSON object in `path`, written whole or not at all (a temporary file renamed)."""
    target = Path(path)
    if target.parent != Path("."):
        target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(json.dumps(_jsonable(result), indent=1) + "\n")
    partial.replace(target)


DESCRIPTION = """\
Speculative decoding on real GPUs: simulate a draft and a target model on roofline GPU profiles and
engine runtimes, find the best draft size, speculation method or token tree for your hardware, and
check it all against the SDSL scaling laws' closed form. `sdsl-sim COMMAND --help` shows each
command's flags and two examples."""
EXAMPLES = """\
examples:
  sdsl-sim run                          # the embedded default scenario: 70B + 1B on 4 x H100
  sdsl-sim simulate --target llama-3.1-8b --draft llama-3.2-1b --hardware h100-sxm --batch 8
shell completion (bash, zsh, tcsh, fish, powershell):
  sdsl-sim --print-completion bash > ~/.local/share/bash-completion/completions/sdsl-sim"""


def command(subparsers, name: str, summary: str, description: str, examples: tuple[str, ...]):
    """A sub-command's parser: `summary` in the command list, `description` and the `examples` (each a
    full `sdsl-sim ...` line, checked by tests/test_cli_help.py) in its --help."""
    return subparsers.add_parser(name, help=summary, description=description,
                                 epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    import shtab

    from .. import __version__

    parser = _Parser(prog="sdsl-sim", description=DESCRIPTION, epilog=EXAMPLES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sdsl-sim {__version__}")
    shtab.add_argument_to(parser, ["--print-completion"], help="print a shell completion script for SHELL")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
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
        if argv is None:
            argv = sys.argv[1:]
        if list(argv) == ["--version"]:  # answered before the parser imports every command's module
            from .. import __version__

            print(f"sdsl-sim {__version__}")
            return 0
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:  # `sdsl-sim` alone: what it can do
            parser.print_help()
            return 0
        if getattr(args, "output", None) and Path(args.output).is_dir():  # found out now, not after the run
            raise InputError(f"--output {args.output!r} is a folder; expected a file path for the JSON result")
        result = args.handler(args)
        render = None
        if isinstance(result, Shown):
            result, render = result.data, result.render
        if result is not None:
            if getattr(args, "output", None):
                write_json(args.output, result)
            if render is None or getattr(args, "json", False):
                emit(result, getattr(args, "json", False))
            else:
                render(result)
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
