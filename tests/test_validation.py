"""The validation data (sdsl_sim/data/validation_measurements.toml) and how its rows are priced."""

import numpy as np
import pytest

from sdsl_sim.analytic import expected_tokens_per_iteration
from sdsl_sim.errors import InputError


@pytest.mark.parametrize("alpha, gamma", [(0.3, 2), (0.7, 4), (0.9, 7)])
def test_stated_acceptances_convert_to_the_per_token_alpha(alpha, gamma):
    from sdsl_sim.validation import per_token_alpha

    tau = float(expected_tokens_per_iteration(alpha, gamma))
    assert per_token_alpha("mean_accepted_tokens", tau, gamma) == pytest.approx(alpha, abs=1e-9)
    assert per_token_alpha("draft_acceptance_rate", (tau - 1) / gamma, gamma) == pytest.approx(alpha, abs=1e-9)
    assert per_token_alpha("per_token_alpha", alpha, gamma) == alpha
    with pytest.raises(InputError, match="tokens per iteration"):
        per_token_alpha("mean_accepted_tokens", gamma + 1.5, gamma)


def test_every_validation_row_names_its_source_and_prices_or_says_why_not():
    from sdsl_sim.validation import load_measurements, predict_row

    rows = load_measurements()
    assert len({row["id"] for row in rows}) == len(rows)
    for row in rows:
        assert row["source"].strip() and row["engine"].strip()
        priced = predict_row(row)
        assert priced["skipped"] or (np.isfinite(priced["predicted"]) and priced["predicted"] > 0), row["id"]


def test_head_rows_price_the_head_built_from_their_target():
    from sdsl_sim.validation import load_measurements, predict_row, scenario_data

    rows = {row["id"]: row for row in load_measurements()}
    eagle3 = rows["vllm-v1-i20780-l31-8b-eagle3-k4"]
    data = scenario_data(eagle3, 0.75)
    assert data["decoding"]["method"] == "eagle" and data["decoding"]["draft_vocab"] == 32000
    assert "draft" not in data["model"]  # no checkpoint: the head is built from the target
    priced = predict_row(eagle3)
    assert priced["skipped"] == "" and priced["alpha_origin"] == "stated"
    # the stated acceptance length 3.08 at gamma 4 is what the priced alpha gives
    assert expected_tokens_per_iteration(priced["alpha"], 4) == pytest.approx(3.08, rel=1e-9)
    full_vocab = predict_row({**eagle3, "draft_vocab": 0})["predicted"]
    assert full_vocab > priced["predicted"]  # a 128k-token head LM head costs more per draft pass than 32k
    assert "dynamic eagle tree" in predict_row(rows["sglang-pr4716-l33-70b-eagle3"])["skipped"]
    assert "needs a stated gamma and acceptance" in predict_row(rows["vllm-v1-pr16937-l31-8b-eagle1-k2"])["skipped"]


def test_a_whole_generate_row_pays_its_context_phase():
    """gptSessionBenchmark times one generate() of the static batch: the prompts' prefill (one pass of
    batch x prompt tokens) is part of the time its throughput divides by."""
    from sdsl_sim.costs import PassWork
    from sdsl_sim.scenario import scenario_from_dict
    from sdsl_sim.sim.run import evaluate
    from sdsl_sim.sim.setup import setup
    from sdsl_sim.validation import load_measurements, predict_row, scenario_data

    row = {r["id"]: r for r in load_measurements()}["trtllm061-h100-l2-7b-bs768"]
    assert row["includes_prefill"] is True
    whole, decode_only = predict_row(row)["predicted"], predict_row({**row, "includes_prefill": False})["predicted"]
    scenario = scenario_from_dict(scenario_data(row, None))
    tpot_s = evaluate(scenario, 0)["tpot_ms"] / 1e3
    assert decode_only == pytest.approx(768 / tpot_s)
    prefill_s = float(setup(scenario).base_timer.step(0, 0, 0.0, PassWork.group(768, 128, 0.0, prefill=True)).total_s)
    assert 768 * 128 / whole == pytest.approx(prefill_s + 127 * tpot_s, rel=1e-12)
    assert 0.05 < prefill_s / (127 * tpot_s) < 1  # a 98k-token prefill: a real share of the session, not all of it
