"""Per-request length distributions and request traces (sdsl_sim.workload)."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtr

from sdsl_sim import workload
from sdsl_sim.errors import InputError
from sdsl_sim.workload import (MAX_TOKENS, SHAREGPT_LIKE, LengthDist, load_trace, parse_length,
                               resolve_trace_path)

WHERE = "scenarios/x.toml: key 'workload.prompt_tokens'"
ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "scenarios" / "traces"
N = 200_000

DISTS = [
    512,
    {"dist": "uniform", "low": 3, "high": 7},
    {"dist": "uniform", "low": 1, "high": 100_000},
    {"dist": "lognormal", "median": 200, "sigma": 1.0, "max": 4096},
    {"dist": "lognormal", "median": 2.5, "sigma": 1.5, "max": 50},   # the clip at 1 and the cut both matter
    {"dist": "lognormal", "median": 1000, "sigma": 0.8, "max": 1000},  # max = median: half the draws redrawn
    {"dist": "lognormal", "median": 50, "sigma": 3.0, "max": MAX_TOKENS},
    SHAREGPT_LIKE["prompt_tokens"],
    SHAREGPT_LIKE["output_tokens"],
    {"dist": "empirical", "values": [5, 80, 80, 1000]},
]


@pytest.mark.parametrize("value", DISTS, ids=lambda v: str(v))
def test_draws_stay_in_bounds_and_average_to_mean_tokens(value):
    dist = parse_length(value, WHERE)
    x = dist.draw(np.random.default_rng(1), N)
    assert x.dtype == np.int64 and x.shape == (N,)
    assert x.min() >= 1 and x.max() <= dist.max_tokens
    std = x.std(ddof=1)
    if std == 0:
        assert x.mean() == dist.mean_tokens
    else:
        assert abs(x.mean() - dist.mean_tokens) < 4 * std / math.sqrt(N)


def test_fixed_is_a_constant_array():
    dist = parse_length(7, WHERE)
    assert dist.kind == "fixed" and dist.max_tokens == 7 and dist.mean_tokens == 7.0
    assert np.array_equal(dist.draw(np.random.default_rng(0), 5), np.full(5, 7))
    assert dist.draw(np.random.default_rng(0), 0).shape == (0,)


def test_uniform_hits_both_inclusive_ends():
    x = parse_length({"dist": "uniform", "low": 3, "high": 7}, WHERE).draw(np.random.default_rng(2), 10_000)
    assert set(np.unique(x)) == {3, 4, 5, 6, 7}


def test_empirical_draws_only_listed_values():
    dist = parse_length({"dist": "empirical", "values": [5, 80, 80, 1000]}, WHERE)
    x = dist.draw(np.random.default_rng(3), 10_000)
    assert set(np.unique(x)) == {5, 80, 1000}
    assert dist.max_tokens == 1000 and dist.mean_tokens == (5 + 80 + 80 + 1000) / 4
    assert abs((x == 80).mean() - 0.5) < 0.03  # a repeated value counts twice


def test_lognormal_mean_agrees_with_a_direct_pmf_sum():
    mu, sigma, upper = math.log(30), 1.7, 500
    k = np.arange(1, upper + 1)
    cdf = lambda y: ndtr((np.log(y) - mu) / sigma)
    pmf = cdf(k + 0.5) - np.where(k == 1, 0.0, cdf(k - 0.5))  # X = 1 also takes all of Y < 1/2
    pmf /= cdf(upper + 0.5)
    dist = parse_length({"dist": "lognormal", "median": 30, "sigma": 1.7, "max": upper}, WHERE)
    assert dist.max_tokens == upper
    assert dist.mean_tokens == pytest.approx(float((k * pmf).sum()), rel=1e-12)


def test_lognormal_mean_is_quick_for_the_largest_max():
    dist = parse_length({"dist": "lognormal", "median": 10, "sigma": 4.0, "max": MAX_TOKENS}, WHERE)
    assert 1 < dist.mean_tokens < MAX_TOKENS


def test_sharegpt_like_matches_its_sources():
    """The published means (vLLM paper, Fig. 11a) and the medians computed from its artifact."""
    for key, mean, median in (("prompt_tokens", 161.31, 35), ("output_tokens", 337.99, 271)):
        dist = parse_length(SHAREGPT_LIKE[key], key)
        assert dist.kind == "lognormal" and dist.max_tokens == 2048
        assert dist.mean_tokens == pytest.approx(mean, abs=0.02)
        below, at = workload._lognormal_cdf_tokens([median - 1, median], math.log(dist.median), dist.sigma,
                                                    dist.upper)
        assert below < 0.5 <= at  # `median` is the median of the draws
        assert dist.as_toml() == SHAREGPT_LIKE[key]


@pytest.mark.parametrize("value", DISTS, ids=lambda v: str(v))
def test_as_toml_round_trips(value):
    dist = parse_length(value, WHERE)
    assert parse_length(dist.as_toml(), WHERE) == dist


BAD_LENGTHS = [
    (True, "is a bool"),
    (1.5, "is a float"),
    (512.0, "is a float"),
    (math.inf, "is a float"),
    (math.nan, "is a float"),
    (0, "expected an integer >= 1"),
    (-3, "expected an integer >= 1"),
    ("1024", "is a string"),
    (None, "expected an integer >= 1"),
    ([1, 2], "expected an integer >= 1"),
    (MAX_TOKENS + 1, "MAX_TOKENS = 10,000,000"),
    ({"low": 1, "high": 2}, "missing key 'dist'"),
    ({"dist": "gamma", "k": 2}, "dist = 'gamma' unknown"),
    ({"dist": 3}, "dist = 3 unknown"),
    ({"dist": "lognormal", "median": 10, "max": 100}, "missing key 'sigma'"),
    ({"dist": "uniform", "low": 1}, "missing key 'high'"),
    ({"dist": "uniform", "low": 1, "high": 2, "mode": 1}, "key 'mode' unknown"),
    ({"dist": "uniform", "low": 5, "high": 2}, "low = 5 > high = 2"),
    ({"dist": "uniform", "low": 1.0, "high": 2}, "low = 1.0 is a float"),
    ({"dist": "uniform", "low": 0, "high": 2}, "low = 0"),
    ({"dist": "uniform", "low": 1, "high": MAX_TOKENS + 1}, "MAX_TOKENS"),
    ({"dist": "lognormal", "median": 10, "sigma": 0, "max": 100}, "sigma = 0; expected a number > 0"),
    ({"dist": "lognormal", "median": 10, "sigma": -1.0, "max": 100}, "sigma = -1.0"),
    ({"dist": "lognormal", "median": 10, "sigma": math.inf, "max": 100}, "sigma = inf"),
    ({"dist": "lognormal", "median": 10, "sigma": math.nan, "max": 100}, "sigma = nan"),
    ({"dist": "lognormal", "median": math.nan, "sigma": 1, "max": 100}, "median = nan"),
    ({"dist": "lognormal", "median": 0.5, "sigma": 1, "max": 100}, "median = 0.5"),
    ({"dist": "lognormal", "median": "10", "sigma": 1, "max": 100}, "median = '10'"),
    ({"dist": "lognormal", "median": True, "sigma": 1, "max": 100}, "median = True"),
    ({"dist": "lognormal", "median": 500, "sigma": 1, "max": 100}, "max = 100 < median = 500"),
    ({"dist": "lognormal", "median": 10, "sigma": 1, "max": 100.0}, "max = 100.0 is a float"),
    ({"dist": "lognormal", "median": 10, "sigma": 1, "max": MAX_TOKENS + 1}, "MAX_TOKENS = 10,000,000"),
    ({"dist": "empirical", "values": []}, "expected a non-empty list"),
    ({"dist": "empirical", "values": 5}, "expected a non-empty list"),
    ({"dist": "empirical", "values": [1, 2.5]}, "values[1] = 2.5 is a float"),
    ({"dist": "empirical", "values": [1, True]}, "values[1] = True is a bool"),
    ({"dist": "empirical", "values": ["a"]}, "values[0] = 'a' is a string"),
    ({"dist": "empirical", "values": [0]}, "values[0] = 0"),
    ({"dist": "empirical", "values": [MAX_TOKENS + 1]}, "MAX_TOKENS"),
]


@pytest.mark.parametrize("value,needle", BAD_LENGTHS, ids=lambda v: repr(v)[:40])
def test_bad_lengths_raise_one_line_naming_where(value, needle):
    with pytest.raises(InputError) as info:
        parse_length(value, WHERE)
    message = str(info.value)
    assert message.startswith(WHERE) and needle in message and "\n" not in message


def test_length_dist_refuses_an_unknown_kind():
    with pytest.raises(ValueError):
        LengthDist("gamma")


# ---------------------------------------------------------------------------------------------------
# Traces


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def write_jsonl(path, header, rows):
    path.write_text("".join(json.dumps(dict(zip(header, r))) + "\n" for r in rows))
    return path


def sample_columns():
    rng = np.random.default_rng(5)
    arrival_s = np.cumsum(rng.exponential(0.7, 50)) + 3.0  # not starting at 0: kept as given
    arrival_s[10] = arrival_s[9]  # ties are allowed
    return arrival_s, rng.integers(1, 9000, 50), rng.integers(1, 900, 50)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_native_trace_round_trips_exactly(tmp_path, suffix):
    arrival_s, prompt, output = sample_columns()
    rows = [(repr(float(t)), int(p), int(o)) for t, p, o in zip(arrival_s, prompt, output)]
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        write_csv(path, workload.TRACE_COLUMNS, rows)
    else:
        write_jsonl(path, workload.TRACE_COLUMNS, [(float(t), p, o) for t, p, o in rows])
    trace = load_trace(path, WHERE)
    assert trace.arrival_s.dtype == np.float64 and trace.prompt_tokens.dtype == np.int64
    assert np.array_equal(trace.arrival_s, arrival_s)
    assert np.array_equal(trace.prompt_tokens, prompt) and np.array_equal(trace.output_tokens, output)
    assert trace.source == str(path) and len(trace) == 50
    with pytest.raises(ValueError):
        trace.arrival_s[0] = 0.0  # frozen means frozen


def test_float_columns_holding_integers_are_accepted(tmp_path):
    path = write_csv(tmp_path / "t.csv", workload.TRACE_COLUMNS, [(0, "5.0", 7), (1, 6, "8.0")])
    trace = load_trace(path, WHERE)
    assert trace.prompt_tokens.tolist() == [5, 6] and trace.output_tokens.tolist() == [7, 8]
    path = write_jsonl(tmp_path / "t.jsonl", workload.TRACE_COLUMNS, [(0, 5.0, 7), (1, 6, 8.0)])
    assert load_trace(path, WHERE).prompt_tokens.tolist() == [5, 6]


AZURE_ROWS = [("2023-11-16 18:15:46.6805900", 4808, 10),
              ("2023-11-16 18:15:50.9951690", 3180, 8),
              ("2023-11-16 18:15:50.9951690", 110, 27),
              ("2023-11-16 18:16:01", 7433, 14)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_azure_columns_parse_with_seconds_since_the_first_row(tmp_path, suffix):
    write = write_csv if suffix == ".csv" else write_jsonl
    path = write(tmp_path / f"azure{suffix}", workload.AZURE_TRACE_COLUMNS, AZURE_ROWS)
    trace = load_trace(path, WHERE)
    assert trace.arrival_s == pytest.approx([0.0, 4.314579, 4.314579, 14.31941], abs=1e-9)
    assert trace.prompt_tokens.tolist() == [4808, 3180, 110, 7433]
    assert trace.output_tokens.tolist() == [10, 8, 27, 14]


NATIVE = workload.TRACE_COLUMNS
AZURE = workload.AZURE_TRACE_COLUMNS
BAD_TRACES = [
    ("csv", NATIVE, [(0, 10, 20), (1, 0, 20)], "column 'prompt_tokens': 0 in row 2"),
    ("csv", NATIVE, [(0, 10, 20), (1, -4, 20)], "-4 in row 2"),
    ("csv", NATIVE, [(0, 10, 20), (1, 5.5, 20)], "5.5 in row 2 (counting requests from 1, header excluded) "
                                                 "is not an integer"),
    ("csv", NATIVE, [(0, 10, 20), (1, 10, "")], "column 'output_tokens': nan in row 2"),
    ("csv", NATIVE, [(0, 10, 20), (1, "many", 20)], "'many' in row 2 (counting requests from 1, header excluded) "
                                                    "is not a number"),
    ("csv", NATIVE, [(0, 10, 20), (1, "inf", 20)], "is not finite"),
    ("csv", NATIVE, [(0, MAX_TOKENS + 1, 20)], "above MAX_TOKENS = 10,000,000"),
    ("csv", NATIVE, [(0, 10, 20), ("", 10, 20)], "column 'arrival_s': nan in row 2"),
    ("csv", NATIVE, [(-1, 10, 20)], "-1.0 in row 1 (counting requests from 1, header excluded) is negative"),
    ("csv", NATIVE, [(0, 1, 1), (2, 1, 1), (1.5, 1, 1), (1, 1, 1)],
     "arrival 1.5 in row 3 (counting requests from 1, header excluded) is earlier than 2.0"),
    ("csv", NATIVE, [], "empty trace"),
    ("csv", ("arrival_s", "prompt_tokens"), [(0, 1)], "missing column 'output_tokens'; expected columns "
                                                       "(arrival_s, prompt_tokens, output_tokens) or the Azure"),
    ("csv", ("TIMESTAMP", "ContextTokens"), [("2023-11-16 18:15:46", 1)],
     "missing column 'GeneratedTokens'; expected columns (arrival_s, prompt_tokens, output_tokens) or the Azure "
     "LLM inference trace's (TIMESTAMP, ContextTokens, GeneratedTokens)"),
    ("jsonl", NATIVE, [(0, 10, 20), (1, True, 20)], "True in row 2 (counting requests from 1, header excluded) "
                                                    "is not a number"),
    ("jsonl", NATIVE, [(0, 10, 20), (1, None, 20)], "nan in row 2 (counting requests from 1, header excluded) "
                                                    "is empty (NaN)"),
    ("csv", AZURE, [("2023-11-16 18:15:46", 1, 1), ("yesterday", 1, 1)], "'yesterday' in row 2"),
    ("csv", AZURE, [("2023-11-16 18:15:46", 1, 1), ("2023-11-16 18:15:45", 1, 1)],
     "column 'TIMESTAMP': arrival -1.0 in row 2"),
    ("jsonl", AZURE, [(1700000000, 1, 1)], "1700000000 in row 1 (counting requests from 1, header excluded) is "
                                           "not a date-time string"),
    ("csv", AZURE, [("2023-11-16 18:15:46", 0, 1)], "column 'ContextTokens': 0 in row 1"),
]


@pytest.mark.parametrize("fmt,header,rows,needle", BAD_TRACES, ids=lambda v: repr(v)[:30])
def test_bad_traces_raise_one_line_naming_the_file(tmp_path, fmt, header, rows, needle):
    path = tmp_path / f"bad.{fmt}"
    if fmt == "csv":
        write_csv(path, header, rows)
    else:
        write_jsonl(path, header, rows)
    assert_trace_error(path, needle)


def assert_trace_error(path, needle):
    with pytest.raises(InputError) as info:
        load_trace(path, WHERE)
    message = str(info.value)
    assert message.startswith(f"{WHERE}: trace {str(path)!r}") and needle in message and "\n" not in message


def test_unreadable_or_unparseable_files(tmp_path):
    assert_trace_error(tmp_path / "absent.csv", "no such file")
    (tmp_path / "folder.csv").mkdir()
    assert_trace_error(tmp_path / "folder.csv", "not a regular file")
    (tmp_path / "t.txt").write_text("arrival_s,prompt_tokens,output_tokens\n0,1,1\n")
    assert_trace_error(tmp_path / "t.txt", "suffix '.txt' not supported; expected one of .csv, .jsonl")
    (tmp_path / "empty.csv").write_text("")
    assert_trace_error(tmp_path / "empty.csv", "empty trace")
    (tmp_path / "empty.jsonl").write_text("")
    assert_trace_error(tmp_path / "empty.jsonl", "empty trace")
    (tmp_path / "ragged.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0,1,1\n1,2,3,4,5\n")
    assert_trace_error(tmp_path / "ragged.csv", "not parseable as CSV")
    (tmp_path / "broken.jsonl").write_text('{"arrival_s": 0, "prompt_tokens": 1, "output_tokens": 1}\n{oops\n')
    assert_trace_error(tmp_path / "broken.jsonl", "not parseable as JSON lines")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage\n")
    assert_trace_error(tmp_path / "binary.csv", "not parseable as CSV")


def test_too_many_requests(tmp_path, monkeypatch):
    monkeypatch.setattr(workload, "MAX_TRACE_REQUESTS", 3)
    path = write_csv(tmp_path / "long.csv", NATIVE, [(i, 1, 1) for i in range(4)])
    assert_trace_error(path, "more than MAX_TRACE_REQUESTS = 3 requests")
    load_trace(write_csv(tmp_path / "ok.csv", NATIVE, [(i, 1, 1) for i in range(3)]), WHERE)


def test_trace_paths_count_from_the_scenario_file(tmp_path):
    scenario = tmp_path / "scenarios" / "x.toml"
    assert resolve_trace_path("traces/a.csv", scenario, WHERE) == tmp_path / "scenarios" / "traces" / "a.csv"
    assert resolve_trace_path(str(tmp_path / "b.csv"), scenario, WHERE) == tmp_path / "b.csv"
    assert resolve_trace_path("a.csv", None, WHERE) == Path("a.csv")
    for bad in ("", 3, None):
        with pytest.raises(InputError, match="expected a path to a .csv or .jsonl trace"):
            resolve_trace_path(bad, scenario, WHERE)


def test_example_trace_generator_reproduces_the_committed_csv(tmp_path):
    spec = importlib.util.spec_from_file_location("make_example_trace", TRACES / "make_example_trace.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = script.main(tmp_path / "again.csv")
    committed = TRACES / "example-trace.csv"
    assert out.read_bytes() == committed.read_bytes()
    trace = load_trace(committed, "example")
    assert len(trace) == 200 and trace.arrival_s[0] > 0
    assert trace.prompt_tokens.max() <= 2048 and trace.output_tokens.max() <= 2048
    # 200 requests at 2 per second span about 100 s
    assert 70 < trace.arrival_s[-1] < 130


def test_example_trace_ships_in_the_package():
    from importlib.resources import files

    assert (files("sdsl_sim") / "scenarios" / "traces" / "example-trace.csv").is_file()


def test_a_trace_owns_read_only_copies_of_its_columns():
    arrival_s = np.array([0.0, 1.0])
    trace = workload.Trace(arrival_s, [3, 4], np.array([5, 6]), source="<test>")
    arrival_s[0] = 9.0  # the caller's array stays its own
    assert trace.arrival_s.tolist() == [0.0, 1.0] and trace.prompt_tokens.dtype == np.int64
    with pytest.raises(ValueError):
        workload.Trace(np.zeros(2), [1], [1, 2], source="<test>")
