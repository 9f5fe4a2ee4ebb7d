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
