"""What scoring returns: risk groups at the cut-off and the CSV tables of a batch."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
