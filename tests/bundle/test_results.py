"""What scoring returns: risk groups at the cut-off and the CSV tables of a batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.bundle.results import PREDICTION_COLUMNS, WARNING_COLUMNS, BundlePrediction, risk_group
from sonorad.errors import FAILURE_COLUMNS


def test_risk_group_at_and_around_the_cutoff():
    assert risk_group(0.5, 0.5) == "high" and risk_group(0.49, 0.5) == "low"
    assert risk_group(0.9, None) is None and risk_group(np.nan, 0.5) is None


def test_write_gives_every_table_and_full_precision_probabilities(tmp_path):
    p = 0.1234567890123456789
    result = BundlePrediction(
        predictions=pd.DataFrame([["c1", "m", p, "low", 0.5]], columns=PREDICTION_COLUMNS),
        warnings=pd.DataFrame(columns=WARNING_COLUMNS), failures=pd.DataFrame(columns=FAILURE_COLUMNS),
        contributions=pd.DataFrame(columns=["case_id"]))
    written = result.write(tmp_path / "out")
    assert sorted(f.name for f in written) == ["contributions.csv", "failures.csv", "predictions.csv", "warnings.csv"]
    assert pd.read_csv(tmp_path / "out" / "predictions.csv")["probability"].iloc[0] == p
    assert result.probabilities().loc["c1", "m"] == p and result.scored_cases == ["c1"]
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind


def test_performance_at_the_cutoff_has_wilson_intervals_of_known_value():
    from sonorad.bundle.results import cutoff_performance

    r = cutoff_performance(tp=8, fp=0, tn=5, fn=2, cutoff=0.3, cohort="training_cv")
    # R: binom::binom.confint(8, 10, methods = "wilson") -> 0.4901625 0.9433178
    assert r["sensitivity"] == pytest.approx({"value": 0.8, "low": 0.4901625, "high": 0.9433178}, abs=1e-6)
    # R: binom::binom.confint(0, 5, methods = "wilson") -> 0 0.4344825 (specificity 5/5 mirrors it)
    assert r["specificity"] == pytest.approx({"value": 1.0, "low": 1 - 0.4344825, "high": 1.0}, abs=1e-6)
    assert r["ppv"]["value"] == 1.0 and r["npv"]["value"] == pytest.approx(5 / 7)
    assert (r["n"], r["cutoff"], r["cohort"]) == (15, 0.3, "training (cross-validated)")
    assert "Wilson" in r["method"]
    assert cutoff_performance(tp=0, fp=3, tn=4, fn=0, cutoff=0.5, cohort="external")["sensitivity"] is None
