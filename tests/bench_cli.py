"""Start-up cost of the command line, as a ratio to `python -c "import numpy"` measured in the same run.

Run: .venv/bin/python -m pytest tests/bench_cli.py -m benchmark -s -q
Every command's parser is built before any handler runs, so a library that one command needs (scipy for
`analytic`, pandas for traces and sweeps) must not load at import: `--version`, `--help`, `list` and
`latency` should cost a small multiple of importing numpy. The figures are reported, never asserted.
"""

import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.benchmark

COMMANDS = (["--version"], ["--help"], ["list", "hardware"],
            ["latency", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"],
            ["analytic", "throughput", "--alpha", "0.8", "--target-params", "70B", "--draft-params", "1B"])


def wall_s(argv, repeat=5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        best = min(best, time.perf_counter() - started)
        assert done.returncode == 0, done.stderr
    return best


def test_cli_start_up_cost():
    baseline_s = wall_s([sys.executable, "-c", "import numpy"])
    print(f"\npython -c 'import numpy' (baseline): {baseline_s * 1e3:7.0f} ms")
    for argv in COMMANDS:
        cost_s = wall_s([sys.executable, "-m", "sdsl_sim", *argv])
        print(f"sdsl-sim {' '.join(argv):<70} {cost_s * 1e3:7.0f} ms  ({cost_s / baseline_s:.1f}x baseline)")
