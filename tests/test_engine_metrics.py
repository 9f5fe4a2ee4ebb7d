"""Acceptance from engines' metrics (issue 13): Prometheus dumps of vLLM and SGLang -> the per-position profile
r_j = P(first j drafts accepted), hand-computed here from the counters each test writes."""

import json
import math
import re

import pytest

from sdsl_sim.analytic import expected_tokens_per_iteration
from sdsl_sim.cli import main
from sdsl_sim.engine_metrics import engine_profile, read_engine_profile
from sdsl_sim.errors import InputError
from sdsl_sim.scenario import load_scenario, scenario_from_dict, scenarios_dir

MODEL = 'model_name="meta-llama/Llama-3.1-8B-Instruct"'


def vllm_dump(engines, suffix="_total") -> str:
    """A vLLM /metrics excerpt: per engine (drafts, draft tokens, accepted, [per-position counts]), in
    prometheus_client's text format (HELP and TYPE lines, one sample per engine label set)."""
    lines = ["# HELP vllm:num_requests_running Number of requests in model execution batches.",
             "# TYPE vllm:num_requests_running gauge", f'vllm:num_requests_running{{engine="0",{MODEL}}} 0.0']
    for name, field in (("num_drafts", 0), ("num_draft_tokens", 1), ("num_accepted_tokens", 2)):
        lines += [f"# HELP vllm:spec_decode_{name}{suffix} ...", f"# TYPE vllm:spec_decode_{name}{suffix} counter"]
        lines += [f'vllm:spec_decode_{name}{suffix}{{engine="{e}",{MODEL}}} {float(c[field])}'
                  for e, c in enumerate(engines)]
    lines.append(f"# TYPE vllm:spec_decode_num_accepted_tokens_per_pos{suffix} counter")
    lines += [f'vllm:spec_decode_num_accepted_tokens_per_pos{suffix}{{engine="{e}",{MODEL},position="{j}"}} {a}'
              for e, c in enumerate(engines) for j, a in enumerate(c[3])]
    return "\n".join(lines) + "\n"


# Two data-parallel engines with 3 speculative tokens; summed per position:
#   num_drafts = 600 + 400 = 1000, draft tokens = 1800 + 1200 = 3000 (k = 3000 / 1000 = 3)
#   per_pos = 450 + 250 = 700, 280 + 140 = 420, 150 + 60 = 210; accepted = 880 + 450 = 1330 = 700 + 420 + 210
#   r = 700 / 1000, 420 / 1000, 210 / 1000
ENGINES = [(600, 1800, 880, [450, 280, 150]), (400, 1200, 450, [250, 140, 60])]
VLLM_R = (0.7, 0.42, 0.21)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("suffix", ["_total", ""])
def test_vllm_counters_summed_over_engines_give_the_per_position_profile(tmp_path, suffix):
    profile = read_engine_profile(write(tmp_path, "vllm.prom", vllm_dump(ENGINES, suffix)))
    assert profile.engine == "vllm"
    assert profile.prefix_probs == pytest.approx(VLLM_R, abs=1e-15)
    assert "3 positions, 2 label sets summed" in profile.conversion


def test_one_engine_and_the_created_timestamps_beside_the_counters():
    # drafts 1000, per_pos 700, 420, 210 -> r = 0.7, 0.42, 0.21; prometheus_client's _created samples and a
    # sample's trailing timestamp are not counts
    text = vllm_dump([(1000, 3000, 1330, [700, 420, 210])]).replace(" 1000.0", " 1000.0 1712345678000")
    text += f'vllm:spec_decode_num_drafts_created{{engine="0",{MODEL}}} 1.7e9\n'
    assert engine_profile(text).prefix_probs == pytest.approx(VLLM_R, abs=1e-15)


def test_vllm_aggregates_only_give_the_iid_alpha_of_the_mean_acceptance_length():
    # no per_pos: k = 3000 / 1000 = 3, mean acceptance length L = 1 + 1330 / 1000 = 2.33, alpha solves
    # 1 + a + a^2 + a^3 = 2.33, r_j = alpha^j
    text = "\n".join(line for line in vllm_dump(ENGINES).splitlines() if "per_pos" not in line)
    r = engine_profile(text).prefix_probs
    assert len(r) == 3 and r[1] == pytest.approx(r[0] ** 2) and r[2] == pytest.approx(r[0] ** 3)
    assert expected_tokens_per_iteration(r[0], 3) == pytest.approx(2.33, abs=1e-12)


def sglang_dump(rates_by_rank, length=None, rate=None) -> str:
    """An SGLang /metrics excerpt: the per-position conditional gauges of PR #31750 per dp rank, and the
    released spec_accept_length / spec_accept_rate gauges."""
    labels = 'engine_type="unified",{MODEL},pp_rank="0",tp_rank="0",dp_rank="{rank}"'
    lines = ["# TYPE sglang:spec_total_accept_rate_per_position gauge"]
    lines += [f"sglang:spec_total_accept_rate_per_position{{{labels.format(MODEL=MODEL, rank=d)},position=\"{j}\"}} {q}"
              for d, rates in enumerate(rates_by_rank) for j, q in enumerate(rates)]
    for name, value in (("spec_accept_length", length), ("spec_accept_rate", rate)):
        if value is not None:
            lines += [f"# TYPE sglang:{name} gauge", f"sglang:{name}{{{labels.format(MODEL=MODEL, rank=0)}}} {value}"]
    return "\n".join(lines) + "\n"


def test_sglang_conditional_rates_averaged_over_ranks_multiply_into_the_profile(tmp_path):
    # q per position, mean of rank 0 and 1: (0.85 + 0.75) / 2 = 0.8, (0.7 + 0.8) / 2 = 0.75, (0.5 + 0.5) / 2 = 0.5;
    # position 3 NaN on both ranks (never reached) is left out; r = 0.8, 0.8 x 0.75 = 0.6, 0.6 x 0.5 = 0.3
    text = sglang_dump([[0.85, 0.7, 0.5, "NaN"], [0.75, 0.8, 0.5, "NaN"]], length=2.7, rate=0.675)
    profile = read_engine_profile(write(tmp_path, "sglang.prom", text))
    assert profile.engine == "sglang"
    assert profile.prefix_probs == pytest.approx((0.8, 0.6, 0.3), abs=1e-15)
    assert "3 positions, 2 label sets averaged" in profile.conversion


def test_sglang_aggregate_gauges_give_k_from_the_rate_and_alpha_from_the_length():
    # spec_accept_length 2.5 over spec_accept_rate 0.625 = 4 = speculative_num_draft_tokens = k + 1, so k = 3;
    # alpha solves 1 + a + a^2 + a^3 = 2.5
    text = "\n".join(line for line in sglang_dump([], length=2.5, rate=0.625).splitlines()
                     if "per_position" not in line)
    r = engine_profile(text).prefix_probs
    assert len(r) == 3 and r[2] == pytest.approx(r[0] ** 3)
    assert 1 + sum(r) == pytest.approx(2.5, abs=1e-12)


ONE = [(1000, 3000, 1330, [700, 420, 210])]


@pytest.mark.parametrize("text,needle", [
    (vllm_dump(ONE).replace("num_drafts_total{", "num_draftz_total{"),
     "metric 'vllm:spec_decode_num_drafts' missing"),
    (vllm_dump([(1000, 3000, 1330, [420, 700, 210])]), "rises from 420 at position 0 to 700 at position 1"),
    (vllm_dump([(1000, 3000, 1330, [700, -420, 210])]), "= -420 is negative"),
    (vllm_dump(ONE).replace(" 3000.0", " NaN"), "metric 'vllm:spec_decode_num_draft_tokens' = NaN; expected a finite"),
    (vllm_dump(ONE).replace(" 1000.0", " +Inf"), "metric 'vllm:spec_decode_num_drafts' = +Inf; expected a finite"),
    (vllm_dump(ONE).replace(" 1330.0", " lots"), "value 'lots' is not a number"),
    (vllm_dump([(1000, 3000, 1331, [700, 420, 210])]), "sums to 1330 over its positions but"),
    (vllm_dump([(600, 3000, 1330, [700, 420, 210])]), "at position 0 = 700 exceeds 'vllm:spec_decode_num_drafts'"),
    (vllm_dump([(1000, 3000, 910, [700, 210])]).replace('position="1"', 'position="2"'), 'has no position="1"'),
    (vllm_dump([(1000, 2000, 700, [700, 0])]), "= 0 at position 1; expected a share strictly between 0 and 1"),
    (vllm_dump([(0, 0, 0, [0])]), "= 0: no draft was verified"),
    (vllm_dump([(1000, 4000, 1330, [700, 420, 210])]), "exceeds 3 positions x"),
    ("\n".join(line for line in vllm_dump([(1000, 2500, 1330, [])]).splitlines() if "per_pos" not in line),
     "draft length vllm:spec_decode_num_draft_tokens / vllm:spec_decode_num_drafts = 2.5 is not a whole number"),
    (vllm_dump(ONE) + f'vllm:spec_decode_num_drafts{{engine="0",{MODEL}}} 1000\n', "appears twice"),
    (vllm_dump(ONE) + sglang_dump([[0.8]]), "both vllm: and sglang: metrics"),
    ("# HELP up\nup 1\n", "no speculative-decoding metric"),
    ('{"num_drafts": 1000}\n', "line 1 '{\"num_drafts\": 1000}' is not a Prometheus sample"),
    (vllm_dump(ONE).replace('position="2"', 'position="two"'), "label position='two'; expected a 0-based"),
    (vllm_dump(ONE).replace('drafts_total{engine="0",', 'drafts_total{engine=0,'), "labels '{engine=0,"),
    (sglang_dump([[0.8, "NaN", 0.5]]), "is NaN at position 1 but not at a deeper one"),
    (sglang_dump([[0.8, 1.2]]), "= 1.2 at position 1; expected a conditional acceptance rate in [0, 1]"),
    (sglang_dump([], length=2.5), "metric 'sglang:spec_accept_rate' missing"),
    (sglang_dump([], length=0, rate=0), "no verification in the last log interval"),
    (sglang_dump([], length="NaN", rate=0.5), "metric 'sglang:spec_accept_length' = NaN; expected a finite"),
])
def test_a_bad_dump_is_one_error_naming_the_file_and_the_metric(tmp_path, text, needle):
    path = write(tmp_path, "bad.prom", text)
    with pytest.raises(InputError) as err:
        read_engine_profile(path)
    assert str(err.value).startswith(f"{path}: ") and needle in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_an_unreadable_dump_names_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.prom: cannot be read"):
        read_engine_profile(str(tmp_path / "missing.prom"))
    binary = tmp_path / "binary.prom"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="binary.prom: not Prometheus text"):
        read_engine_profile(str(binary))


def scenario(tmp_path, decoding: str, dump: str = vllm_dump(ENGINES)) -> str:
    (tmp_path / "metrics").mkdir(exist_ok=True)
    (tmp_path / "metrics" / "vllm.prom").write_text(dump)
    return write(tmp_path, "s.toml", f'[decoding]\nacceptance_from = "metrics/vllm.prom"\n{decoding}')


def test_a_scenario_reads_the_dump_beside_it_into_a_profile_bounded_by_its_positions(tmp_path, monkeypatch):
    monkeypatch.chdir("/")  # a relative path is read from the scenario's folder, not the working one
    dec = load_scenario(scenario(tmp_path, "gamma = 'auto'\n")).config["decoding"]
    assert dec["acceptance"] == "profile" and dec["prefix_probs"] == pytest.approx(VLLM_R, abs=1e-15)
    assert dec["max_gamma"] == 3 and dec["acceptance_from"] is None  # the config holds the profile
    assert load_scenario(scenario(tmp_path, "gamma = 2\nmax_gamma = 2\n")).config["decoding"]["max_gamma"] == 2
    # the converted config validates again as it is (a sweep point does)
    config = load_scenario(scenario(tmp_path, "gamma = 3\n")).config
    again = scenario_from_dict({t: {k: v for k, v in keys.items() if v is not None} for t, keys in config.items()})
    assert again.config["decoding"]["prefix_probs"] == pytest.approx(VLLM_R, abs=1e-15)


@pytest.mark.parametrize("decoding,needle", [
    ("acceptance = 'profile'\n", "with decoding.acceptance; expected one source of acceptance"),
    ("prefix_probs = [0.5]\n", "with decoding.prefix_probs; expected one source of acceptance"),
    ("alpha = 0.6\n", "with decoding.alpha;"),
    ("acceptance_length = 2.0\ngamma = 3\n", "with decoding.acceptance_length;"),
    ("gamma = 4\n", "key 'decoding.gamma' = 4 with a dump of 3 draft positions"),
    ("max_gamma = 5\n", "key 'decoding.max_gamma' = 5 with a dump of 3 draft positions"),
    ("acceptance_fromm = 'x'\n", "key 'decoding.acceptance_fromm' unknown"),
])
def test_scenario_conflicts_are_one_error(tmp_path, decoding, needle):
    with pytest.raises(InputError, match=re.escape(needle)):
        load_scenario(scenario(tmp_path, decoding))


def test_a_bad_dump_in_a_scenario_names_the_scenario_and_the_dump(tmp_path):
    with pytest.raises(InputError) as err:
        load_scenario(scenario(tmp_path, "", vllm_dump([(1000, 3000, 1330, [420, 700, 210])])))
    message = str(err.value)
    assert "s.toml: decoding.acceptance_from " in message and "vllm.prom: metric" in message


def test_run_simulates_the_engines_per_position_acceptance(tmp_path, capsys):
    # the simulator's own vLLM-style counters come back to the dump's r within 4 binomial standard errors
    path = scenario(tmp_path, "gamma = 3\n[workload]\nrequests = 32\nbatch = 16\noutput_tokens = 512\n")
    assert main(["run", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["alpha_source"] == "profile" and out["gamma"] == 3
    drafts = out["spec_decode_num_drafts"]
    assert drafts > 4000
    for simulated, r in zip(out["spec_decode_per_position_acceptance_rates"], VLLM_R, strict=True):
        assert abs(simulated - r) < 4 * math.sqrt(r * (1 - r) / drafts), (simulated, r)


def test_a_bad_dump_through_the_cli_is_one_line_and_status_2(tmp_path, capsys):
    path = scenario(tmp_path, "", vllm_dump([(1000, 3000, 1330, [700, 420, -210])]))
    assert main(["run", path, "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "is negative" in err


def test_the_shipped_examples_load():
    metrics = scenarios_dir() / "metrics"
    # vllm-eagle3-llama8b.prom: drafts 12000 + 8000, per_pos 9650 + 6350, 6760 + 4440, 4400 + 2880, 2640 + 1728
    vllm = read_engine_profile(metrics / "vllm-eagle3-llama8b.prom")
    assert vllm.prefix_probs == pytest.approx((16000 / 20000, 11200 / 20000, 7280 / 20000, 4368 / 20000), abs=1e-15)
    # sglang-eagle3-llama8b.prom: q = 0.78, 0.72, 0.66 -> r = 0.78, 0.78 x 0.72, 0.78 x 0.72 x 0.66
    sglang = read_engine_profile(metrics / "sglang-eagle3-llama8b.prom")
    assert sglang.prefix_probs == pytest.approx((0.78, 0.78 * 0.72, 0.78 * 0.72 * 0.66), abs=1e-15)
    dec = load_scenario("acceptance-from-vllm").config["decoding"]
    assert dec["acceptance"] == "profile" and dec["prefix_probs"] == list(vllm.prefix_probs) and dec["gamma"] == 4


def test_per_position_counts_of_only_some_engines_are_refused():
    """num_drafts of engines 0 and 1 over per-position counts of engine 0 alone would halve every r_j."""
    text = ('vllm:spec_decode_num_drafts_total{engine="0"} 100\nvllm:spec_decode_num_drafts_total{engine="1"} 100\n'
            'vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",position="0"} 50\n')
    with pytest.raises(InputError, match="label sets"):
        engine_profile(text, "partial.prom")


@pytest.mark.parametrize("labels", ['position="00"', 'position="+1"', 'position="0",position="1"'])
def test_position_labels_are_plain_and_given_once(labels):
    text = f'vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_accepted_tokens_per_pos_total{{{labels}}} 5\n'
    with pytest.raises(InputError):
        engine_profile(text, "labels.prom")
