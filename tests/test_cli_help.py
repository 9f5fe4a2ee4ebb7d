"""The command line as a user meets it: the command list, every command's help and examples, one meaning
per shared flag, shell completion."""

import argparse
import shlex
import subprocess
import sys

import pytest

from sdsl_sim import __version__
from sdsl_sim.cli import build_parser, main
from sdsl_sim.units import DEFAULT_CONTEXT


def _commands(parser, prefix=()):
    """(words, parser) for every command and nested command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _commands(sub, (*prefix, name))


COMMANDS = list(_commands(build_parser()))


def test_sdsl_sim_alone_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    top = [words[0] for words, _ in COMMANDS if len(words) == 1]
    assert len(top) >= 12 and all(name in out for name in top)
    assert "a thin layer" not in out and "examples:" in out


@pytest.mark.parametrize("words,parser", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_every_command_has_a_description_and_two_examples_that_parse(words, parser):
    assert parser.description and len(parser.description) > 60, words
    examples = [line.strip() for line in (parser.epilog or "").splitlines() if line.strip().startswith("sdsl-sim ")]
    assert len(examples) >= 2, f"{' '.join(words)}: {len(examples)} examples"
    for line in examples:
        argv = shlex.split(line.split("  #")[0])[1:]
        assert tuple(argv[:len(words)]) == words, line
        build_parser().parse_args(argv)  # a usage error would raise InputError


SHARED = {"--context": DEFAULT_CONTEXT, "--batch": 1, "--dtype": "bf16", "--kv-dtype": "bf16", "--runtime": None}


@pytest.mark.parametrize("flag", SHARED)
def test_a_shared_flag_has_one_meaning_and_one_default_everywhere(flag):
    found = [(words, action) for words, parser in COMMANDS for action in parser._actions if flag in action.option_strings]
    assert len(found) >= 3, flag
    for words, action in found:
        assert action.default == SHARED[flag], (words, action.default)
    assert len({(action.help, tuple(action.choices or ()), action.type.__name__ if action.type else None)
                for _, action in found}) == 1, f"{flag} differs between {[' '.join(w) for w, _ in found]}"


def test_version_and_completion(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sdsl-sim {__version__}"
    done = subprocess.run([sys.executable, "-m", "sdsl_sim", "--print-completion", "bash"], capture_output=True,
                          text=True, check=True)
    assert "simulate" in done.stdout and "--metric-percentiles" in done.stdout and "complete" in done.stdout
