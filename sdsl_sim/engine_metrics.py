"""Acceptance from an engine's metrics: a Prometheus text dump of vLLM's or SGLang's speculative-decoding
metrics (what `curl http://HOST:PORT/metrics` prints) -> the per-position profile of
`decoding.acceptance = "profile"`, r_j = P(the first j drafts of an iteration all accepted), j = 1..k.

The profile is cumulative (unconditional), not conditional: a draft token counts only if every earlier one
in its chain was accepted, so r_1 >= r_2 >= ...; the conditional acceptance at position j is r_j / r_(j-1).
k, the dump's draft length, is the number of positions it reports; the loader caps the scenario's gamma at
it (scenario.py), since positions the engine never drafted cannot be read off its counters.

vLLM (V1; vllm/v1/spec_decode/metrics.py, `SpecDecodingStats.observe_draft` and `SpecDecodingProm`, the
counters of vLLM PR #16665). Per draft (one request's proposal in one step) with n tokens accepted it adds
1 to `vllm:spec_decode_num_drafts`, the proposal's length to `..._num_draft_tokens`, n to
`..._num_accepted_tokens` and 1 to `..._num_accepted_tokens_per_pos{position="j"}` for j = 0..n-1. So the
count at 0-based position j is the number of drafts whose first j + 1 tokens were all accepted:

    r_(j+1) = accepted_per_pos[j] / num_drafts        (vLLM's own "per-position acceptance rate")

unchanged: it already is the cumulative profile. A drafter that proposes fewer than k tokens (n-gram lookup)
counts as a rejection at the positions it left out, so the profile is what the engine saw, shortfalls
included. Checks: every count finite and >= 0, the per-position counts non-increasing and at most
num_drafts, their sum equal to num_accepted_tokens (to rounding, 1e-5 relative) and accepted <= draft tokens
<= k x drafts where those counters are present.

SGLang. Released SGLang exports only window gauges over its last log interval
(python/sglang/srt/metrics/collector.py; computed in python/sglang/srt/managers/scheduler_metrics_mixin.py):
`sglang:spec_accept_length` = tokens per verification including the bonus token (1 + accepted drafts per
verify, as vLLM's mean acceptance length) and `sglang:spec_accept_rate` = that sum / (verifies x
speculative_num_draft_tokens), where a chain (speculative_eagle_topk = 1) has num_draft_tokens = k + 1.
SGLang PR #31750 (open when this was written) adds per-position gauges of the conditional rate
q_j = P(position j accepted | positions 0..j-1 accepted), over the process lifetime
(`sglang:spec_total_accept_rate_per_position`) and the window (`sglang:spec_accept_rate_per_position`); its
tracker (python/sglang/srt/speculative/spec_accept_metrics.py there) indexes positions from 0 and writes NaN
for a position no draft reached. The label is read as `position`, as vLLM's (the PR's description does not
name it). Then

    r_(j+1) = q_0 q_1 ... q_j                          (the lifetime gauge if present, else the window one)

and positions after the first NaN are left out (not reached, so not measured).

Only aggregates. Without per-position metrics (vLLM without `..._per_pos`, released SGLang) the mean
acceptance length L (vLLM: 1 + accepted / drafts; SGLang: spec_accept_length) at draft length k (vLLM:
draft tokens / drafts; SGLang: spec_accept_length / spec_accept_rate - 1) becomes the constant alpha that
gives it, (1 - alpha^(k+1)) / (1 - alpha) = L (Leviathan eq. 1), and r_j = alpha^j: the same mean, the
position dependence unknown. A k that is not a whole number (drafts of varying length) is an error asking
for the per-position metric.

Label sets. A metric may appear once per label set (`engine="0"`, `engine="1"` of a data-parallel vLLM;
SGLang's `tp_rank`, `dp_rank`, ...). Counters are summed over every label set, per position, which pools
the engines' drafts; SGLang's gauges are rates with no count to weight them by, so their label sets are
averaged, unweighted. A dump of a server holding several models pools them too: cut it to one model first.

Every way a dump can be wrong (unreadable, not Prometheus text, a needed metric missing, a value not a
finite number, counts that contradict each other, a position whose profile leaves (0, 1)) is one InputError
naming the file and the metric.
"""

import math
import re
from dataclasses import dataclass

from .analytic.leviathan import alpha_from_expected_tokens
from .errors import InputError
from .units import MAX_GAMMA

VLLM_DRAFTS = "vllm:spec_decode_num_drafts"
VLLM_DRAFT_TOKENS = "vllm:spec_decode_num_draft_tokens"
VLLM_ACCEPTED = "vllm:spec_decode_num_accepted_tokens"
VLLM_PER_POS = "vllm:spec_decode_num_accepted_tokens_per_pos"
SGLANG_LENGTH = "sglang:spec_accept_length"
SGLANG_RATE = "sglang:spec_accept_rate"
SGLANG_TOTAL_PER_POS = "sglang:spec_total_accept_rate_per_position"
SGLANG_WINDOW_PER_POS = "sglang:spec_accept_rate_per_position"
METRICS = (VLLM_DRAFTS, VLLM_DRAFT_TOKENS, VLLM_ACCEPTED, VLLM_PER_POS,
           SGLANG_LENGTH, SGLANG_RATE, SGLANG_TOTAL_PER_POS, SGLANG_WINDOW_PER_POS)
POSITION = "position"
UNSEEN_NAN = (SGLANG_TOTAL_PER_POS, SGLANG_WINDOW_PER_POS)  # SGLang writes NaN for a position never reached
REL_TOL = 1e-5  # counters printed with fewer digits than a double holds still agree to this

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\\n]|\\.)*)"\s*(,?)\s*')
_VALUE = re.compile(r"[+-]?(?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class EngineProfile:
    """What a dump says: the engine, r_1..r_k, and how the profile was read from it (one line)."""

    engine: str
    prefix_probs: tuple
    conversion: str


def read_engine_profile(path, label: str | None = None) -> EngineProfile:
    """The profile of the dump at `path`; `label` names it in messages (default: the path)."""
    label = label or str(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}: not Prometheus text ({exc})") from None
    except OSError as exc:
        raise InputError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    return engine_profile(text, label)


def engine_profile(text: str, where: str = "<metrics>") -> EngineProfile:
    """The profile of a Prometheus text dump (see the module docstring); InputError naming `where`."""
    series = parse_samples(text, where)
    engines = sorted({name.split(":")[0] for name in series})
    if len(engines) != 1:
        found = "both vllm: and sglang: metrics" if engines else "no speculative-decoding metric"
        raise InputError(f"{where}: {found}; expected the {VLLM_DRAFTS} counters of one vLLM server or the "
                         f"{SGLANG_LENGTH} gauges of one SGLang server")
    return (_vllm if engines[0] == "vllm" else _sglang)(series, where)


def parse_samples(text: str, where: str) -> dict:
    """{metric: {labels (sorted pairs): value}} of the samples of METRICS in `text` (a counter's `_total`
    suffix dropped). Comments, HELP and TYPE lines and other metrics are skipped; a line that is not a
    sample, or a sample of ours that does not parse or is not a number >= 0, is an InputError naming it."""
    series = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = _NAME.match(line)
        if name is None:
            raise InputError(f"{where}: line {number} {line[:40]!r} is not a Prometheus sample; expected "
                             "`name{label=\"value\",...} value [timestamp]`")
        metric = name.group()
        if metric.endswith("_total") and metric[:-len("_total")] in METRICS:
            metric = metric[:-len("_total")]
        if metric not in METRICS:
            continue
        at = f"{where}: line {number}, metric '{metric}'"
        labels, text_value = _split_sample(line[name.end():], at)
        value = float(text_value)
        if math.isinf(value) or (math.isnan(value) and metric not in UNSEEN_NAN):
            raise InputError(f"{at} = {text_value}; expected a finite number")
        if value < 0:
            raise InputError(f"{at} = {text_value} is negative; expected a count or rate >= 0")
        if labels in series.setdefault(metric, {}):
            raise InputError(f"{at} {dict(labels)} appears twice (with and without _total?); expected one "
                             "sample per label set")
        series[metric][labels] = value
    return series


def _split_sample(rest: str, where: str) -> tuple:
    """(labels as sorted pairs, value text) of a sample line after its name:
    `{a="x",...} value [timestamp]` (anything after the value, a timestamp or an exemplar, is ignored)."""
    labels = {}
    if rest.startswith("{"):
        at = 1
        while not rest[at:].lstrip().startswith("}"):
            pair = _LABEL.match(rest, at)
            if pair is None or not (pair.group(3) or rest.startswith("}", pair.end())):
                raise InputError(f"{where}: labels {rest[:60]!r} do not parse; expected {{name=\"value\",...}}")
            if pair.group(1) in labels:
                raise InputError(f"{where}: label {pair.group(1)!r} given twice in {rest[:60]!r}; expected each once")
            labels[pair.group(1)] = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1),
                                           pair.group(2))
            at = pair.end()
        rest = rest[rest.index("}", at) + 1:]
    elif rest[:1].strip():
        raise InputError(f"{where}: {rest[:40]!r} follows the name; expected {{labels}} or a space, then the value")
    fields = rest.split()
    if not fields or not _VALUE.fullmatch(fields[0]):
        raise InputError(f"{where}: value {(fields or [''])[0]!r} is not a number")
    return tuple(sorted(labels.items())), fields[0]


def _label_set_names(samples: dict) -> set:
    """The label sets a metric has, its position label aside (engines, ranks)."""
    return {tuple(pair for pair in labels if pair[0] != POSITION) for labels in samples}


def _label_sets(samples: dict) -> int:
    return len(_label_set_names(samples))


def _by_position(samples: dict, metric: str, where: str) -> list:
    """[values over label sets] per position 0..k-1 of a per-position metric, none missing."""
    out = {}
    for labels, value in samples.items():
        text = dict(labels).get(POSITION)
        if text is None or not re.fullmatch(r"0|[1-9][0-9]*", text) or int(text) >= MAX_GAMMA:
            raise InputError(f"{where}: metric '{metric}' {dict(labels)}: label {POSITION}={text!r}; expected "
                             f"a 0-based draft position below MAX_GAMMA = {MAX_GAMMA}")
        out.setdefault(int(text), []).append(value)
    missing = sorted(set(range(max(out) + 1)) - set(out))
    if missing:
        raise InputError(f"{where}: metric '{metric}' has no {POSITION}=\"{missing[0]}\" below "
                         f"{POSITION}=\"{max(out)}\"; expected every position from 0")
    return [out[j] for j in range(len(out))]


def _vllm_total(series: dict, metric: str, where: str, required: bool):
    """The sum of a vLLM counter over its label sets; None when absent and not `required`."""
    if metric in series:
        return math.fsum(series[metric].values())
    if required:
        raise InputError(f"{where}: metric '{metric}' missing; expected it in a vLLM dump (vLLM V1 with "
                         "speculative decoding on)")
    return None


def _vllm(series: dict, where: str) -> EngineProfile:
    drafts = _vllm_total(series, VLLM_DRAFTS, where, required=True)
    if drafts <= 0:
        raise InputError(f"{where}: metric '{VLLM_DRAFTS}' = 0: no draft was verified; expected a dump taken "
                         "after the server decoded speculatively")
    per_pos = VLLM_PER_POS in series
    accepted = _vllm_total(series, VLLM_ACCEPTED, where, required=not per_pos)
    draft_tokens = _vllm_total(series, VLLM_DRAFT_TOKENS, where, required=not per_pos)
    if accepted is not None and draft_tokens is not None and accepted > draft_tokens * (1 + REL_TOL):
        raise InputError(f"{where}: metric '{VLLM_ACCEPTED}' = {accepted:g} exceeds '{VLLM_DRAFT_TOKENS}' = "
                         f"{draft_tokens:g}; expected at most the tokens drafted")
    sets = _label_sets(series[VLLM_DRAFTS])
    if not per_pos:
        k = _draft_length(draft_tokens / drafts, where, f"{VLLM_DRAFT_TOKENS} / {VLLM_DRAFTS}")
        return _iid("vllm", 1.0 + accepted / drafts, k, where, f"1 + {VLLM_ACCEPTED} / {VLLM_DRAFTS}",
                    _sets(sets, "summed"))
    if _label_set_names(series[VLLM_PER_POS]) != _label_set_names(series[VLLM_DRAFTS]):
        # a per-position count of some engines over the drafts of all would understate every position
        raise InputError(f"{where}: metric '{VLLM_PER_POS}' has the label sets "
                         f"{sorted(map(dict, _label_set_names(series[VLLM_PER_POS])), key=str)} but '{VLLM_DRAFTS}' "
                         f"{sorted(map(dict, _label_set_names(series[VLLM_DRAFTS])), key=str)}; expected the same "
                         "engines in both (one scrape of one server)")
    counts = [math.fsum(values) for values in _by_position(series[VLLM_PER_POS], VLLM_PER_POS, where)]
    k = len(counts)
    if counts[0] > drafts:
        raise InputError(f"{where}: metric '{VLLM_PER_POS}' at position 0 = {counts[0]:g} exceeds "
                         f"'{VLLM_DRAFTS}' = {drafts:g}; expected at most one acceptance per draft")
    for j in range(1, k):
        if counts[j] > counts[j - 1]:
            raise InputError(f"{where}: metric '{VLLM_PER_POS}' rises from {counts[j - 1]:g} at position {j - 1} "
                             f"to {counts[j]:g} at position {j}; expected non-increasing counts (a position is "
                             "accepted only after every earlier one)")
    if accepted is not None and not math.isclose(math.fsum(counts), accepted, rel_tol=REL_TOL, abs_tol=0.5):
        raise InputError(f"{where}: metric '{VLLM_PER_POS}' sums to {math.fsum(counts):g} over its positions but "
                         f"'{VLLM_ACCEPTED}' = {accepted:g}; expected equal (one scrape of one server)")
    if draft_tokens is not None and draft_tokens > k * drafts * (1 + REL_TOL):
        raise InputError(f"{where}: metric '{VLLM_DRAFT_TOKENS}' = {draft_tokens:g} exceeds {k} positions x "
                         f"'{VLLM_DRAFTS}' = {k * drafts:g}; expected a per-position count at every position "
                         "drafted")
    probs = tuple(c / drafts for c in counts)
    _check_unit(probs, where, f"{VLLM_PER_POS} / {VLLM_DRAFTS}")
    return EngineProfile("vllm", probs, f"vllm: r_j = {VLLM_PER_POS}[j - 1] / {VLLM_DRAFTS}, {k} positions, "
                                        f"{_sets(sets, 'summed')}")


def _sglang(series: dict, where: str) -> EngineProfile:
    metric = next((m for m in (SGLANG_TOTAL_PER_POS, SGLANG_WINDOW_PER_POS) if m in series), None)
    if metric is None:
        for needed in (SGLANG_LENGTH, SGLANG_RATE):
            if needed not in series:
                raise InputError(f"{where}: metric '{needed}' missing; expected {SGLANG_LENGTH} and "
                                 f"{SGLANG_RATE} (or the per-position {SGLANG_TOTAL_PER_POS}) in an SGLang dump")
        length, rate = (_mean(series[m].values()) for m in (SGLANG_LENGTH, SGLANG_RATE))
        if not (length > 1 and rate > 0):
            raise InputError(f"{where}: metric '{SGLANG_LENGTH}' = {length:g}, '{SGLANG_RATE}' = {rate:g}: no "
                             "verification in the last log interval; expected a dump taken while the server "
                             "decoded speculatively")
        k = _draft_length(length / rate - 1, where, f"{SGLANG_LENGTH} / {SGLANG_RATE} - 1")
        return _iid("sglang", length, k, where, SGLANG_LENGTH, _sets(_label_sets(series[SGLANG_LENGTH]), "averaged"))
    # The mean over the label sets that reached a position; NaN where none did.
    rates = [_mean(v for v in values if not math.isnan(v)) for values in _by_position(series[metric], metric, where)]
    reached = next((j for j, q in enumerate(rates) if math.isnan(q)), len(rates))
    if reached == 0:
        raise InputError(f"{where}: metric '{metric}' is NaN at position 0: no draft was verified; expected a "
                         "dump taken after the server decoded speculatively")
    if any(not math.isnan(q) for q in rates[reached:]):
        raise InputError(f"{where}: metric '{metric}' is NaN at position {reached} but not at a deeper one; "
                         "expected NaN only past the deepest position reached")
    rates = rates[:reached]
    for j, q in enumerate(rates):
        if q > 1:
            raise InputError(f"{where}: metric '{metric}' = {q:g} at position {j}; expected a conditional "
                             "acceptance rate in [0, 1]")
    probs = tuple(math.prod(rates[:j + 1]) for j in range(reached))
    _check_unit(probs, where, f"the product of '{metric}'")
    return EngineProfile("sglang", probs, f"sglang: r_j = the product of {metric} over positions < j, {reached} "
                                          f"positions, {_sets(_label_sets(series[metric]), 'averaged')}")


def _draft_length(k: float, where: str, what: str) -> int:
    """`k` as the whole draft length it must be (aggregates only: every draft as long as the others)."""
    whole = round(k)
    if not (1 <= whole <= MAX_GAMMA and math.isclose(k, whole, rel_tol=REL_TOL)):
        raise InputError(f"{where}: draft length {what} = {k:g} is not a whole number of tokens in [1, MAX_GAMMA = "
                         f"{MAX_GAMMA}] (drafts of varying length?); expected the per-position metric "
                         f"({VLLM_PER_POS} or {SGLANG_TOTAL_PER_POS})")
    return whole


def _iid(engine: str, length: float, k: int, where: str, what: str, sets: str) -> EngineProfile:
    """The aggregate-only profile r_j = alpha^j, alpha giving the mean acceptance length `length` at k."""
    try:
        alpha = alpha_from_expected_tokens(length, k)
    except InputError as exc:
        raise InputError(f"{where}: mean acceptance length {what}: {exc}") from None
    return EngineProfile(engine, tuple(alpha ** j for j in range(1, k + 1)),
                         f"{engine}: no per-position metric; mean acceptance length {length:.6g} at k = {k} -> "
                         f"i.i.d. alpha {alpha:.6g}, r_j = alpha^j, {sets}")


def _check_unit(probs: tuple, where: str, what: str) -> None:
    """Each r_j strictly inside (0, 1), as a profile must be (0: never accepted there, 1: always)."""
    for j, r in enumerate(probs):
        if not 0.0 < r < 1.0:
            raise InputError(f"{where}: {what} = {r:g} at position {j}; expected a share strictly between 0 and "
                             "1 (a longer run, or fewer speculative tokens, measures it)")


def _sets(n: int, how: str) -> str:
    return f"{n} label sets {how}" if n > 1 else "1 label set"


def _mean(values) -> float:
    """The mean of `values`; NaN when there are none."""
    values = list(values)
    return math.fsum(values) / len(values) if values else math.nan
