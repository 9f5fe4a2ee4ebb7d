"""The Python API: what `help(sdsl_sim)` lists, the README's example, and one way to each result."""

import json
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sdsl_sim
from sdsl_sim.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_help_lists_every_public_name_and_each_resolves():
    text = pydoc.render_doc(sdsl_sim, renderer=pydoc.plaintext)
    assert f"VERSION\n    {sdsl_sim.__version__}" in text
    for name in set(sdsl_sim.__all__) - {"__version__"}:
        # listed under CLASSES or FUNCTIONS with its signature or bases, not only named in the docstring
        assert re.search(rf"^    (class )?{name}\(", text, re.M), name
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        sdsl_sim.nonesuch  # noqa: B018


def test_importing_the_package_loads_no_heavy_library():
    script = "import sdsl_sim, sys; print(','.join(m for m in ('scipy', 'pandas', 'simpy', 'matplotlib') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_the_readme_example_runs(capsys):
    text = README.read_text()
    block = re.search(r"<!-- api-example[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert block, "README lost its api-example block"
    exec(compile(block.group(1), "README.md api-example", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].endswith(" ms") and "x at gamma " in lines[0]
    assert lines[3].startswith("1 ")  # the 8B + 1B scenario without hardware.tp runs on one H100


def test_api_and_cli_give_one_result(capsys):
    args = dict(batch=2, output_tokens=64, context=128, gamma=3, alpha=0.7)
    api = sdsl_sim.simulate("llama-3.1-8b", "llama-3.2-1b", "h100-sxm", **args).to_dict()
    assert main(["simulate", "--target", "llama-3.1-8b", "--draft", "llama-3.2-1b", "--hardware", "h100-sxm",
                 "--batch", "2", "--output-tokens", "64", "--context", "128", "--gamma", "3", "--alpha", "0.7",
                 "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    api.pop("sim_wall_s"), cli.pop("sim_wall_s")
    assert json.loads(json.dumps(api, default=float).replace("NaN", "null")) == cli


def test_results_are_typed_and_framed():
    r = sdsl_sim.simulate("llama-3.1-8b", "llama-3.2-1b", "h100-sxm", batch=2, output_tokens=64, alpha=0.7)
    assert isinstance(r.tpot_ms, float) and isinstance(r.gamma, int) and r.tp == 1
    assert r.tpot_ms == r.metrics["tpot_ms"] and r.alpha == 0.7
    frame = r.to_frame()
    assert len(frame) == 1 and frame.tpot_ms_ci95_lo.iloc[0] <= r.tpot_ms <= frame.tpot_ms_ci95_hi.iloc[0]
    latency = sdsl_sim.pass_latency("llama-3.1-8b", "h100-sxm", batch=4, tokens=5, context=512)
    assert latency.to_frame()["breakdown_ms.attention"].iloc[0] == latency.breakdown_ms["attention"]
    size = sdsl_sim.hardware_n_star(70e9, "ideal")
    assert size.n_star_hardware_range[0] <= size.n_star_hardware <= size.n_star_hardware_range[1]
    assert size.to_dict()["n_star_hardware"] == size.n_star_hardware


def test_bad_api_input_raises_the_clis_error():
    with pytest.raises(sdsl_sim.InputError, match="alpha"):
        sdsl_sim.simulate("llama-3.1-8b", "llama-3.2-1b", "h100-sxm", alpha=1.5)
    with pytest.raises(sdsl_sim.InputError, match="target"):
        sdsl_sim.simulate(["llama"], "llama-3.2-1b", "h100-sxm")
