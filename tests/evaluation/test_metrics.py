"""The performance row shared by a run's metrics table and a bundle's labelled predictions."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from sonorad.evaluation import YoudenThreshold, roc_auc_ci, threshold_metrics, wilson_ci
from sonorad.evaluation.metrics import PERFORMANCE_COLUMNS, performance_metrics


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    return y, np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)


def test_row_matches_sklearn_delong_and_wilson():
    y, p = _data()
    row = performance_metrics(y, p, 0.45, random_state=2)
    assert list(row) == PERFORMANCE_COLUMNS
    tn, fp, fn, tp = confusion_matrix(y, p >= 0.45).ravel()
    assert (row["tp"], row["fp"], row["tn"], row["fn"]) == (tp, fp, tn, fn)
    assert row["n"] == 60 and row["positives"] == y.sum() and row["threshold"] == 0.45
    assert row["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    auc = roc_auc_ci(y, p)
    assert (row["auc_low"], row["auc_high"]) == (auc.low, auc.high)
    assert row["sensitivity"] == tp / (tp + fn)
    assert (row["sensitivity_low"], row["sensitivity_high"]) == wilson_ci(tp, tp + fn)
    tm = threshold_metrics(y, p, 0.45, random_state=2).metrics
    assert (row["f1_low"], row["f1_high"]) == (tm.loc["f1", "low"], tm.loc["f1", "high"])


def test_a_youden_threshold_is_used_unchanged_and_nan_rows_are_left_out():
    y, p = _data()
    cut = YoudenThreshold().fit(y, p)
    yf, pf = y.astype(float), p.copy()
    yf[0], pf[1] = np.nan, np.nan
    row = performance_metrics(yf, pf, cut)
    assert row["threshold"] == cut.threshold_ and row["n"] == 58
    assert row == performance_metrics(y[2:], p[2:], cut.threshold_)


def test_what_cannot_be_computed_is_nan():
    row = performance_metrics([1, 1, 1], [0.2, 0.6, 0.9], 0.5)
    assert np.isnan(row["auc"]) and np.isnan(row["specificity"]) and row["sensitivity"] == pytest.approx(2 / 3)
    row = performance_metrics([0, 1], [0.2, 0.6], None)
    assert row["auc"] == 1.0 and np.isnan(row["threshold"]) and np.isnan(row["tp"])
    row = performance_metrics([np.nan], [0.3], 0.5)
    assert row["n"] == 0 and row["positives"] == 0 and np.isnan(row["accuracy"])
    with pytest.raises(ValueError, match="same length"):
        performance_metrics([0, 1], [0.5], 0.5)
