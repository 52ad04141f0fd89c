"""Tests of training-fitted cut-offs and threshold metrics."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from sonorad.evaluation.thresholds import YoudenThreshold, threshold_metrics, wilson_ci


def test_youden_threshold_maximises_j_on_training(asah):
    y, s = asah.poor_outcome.to_numpy(), asah.s100b.to_numpy()
    t = YoudenThreshold().fit(y, s)
    # brute force over every observed value as a ">=" cut-off
    js = [(s[y == 1] >= c).mean() + (s[y == 0] < c).mean() - 1 for c in np.unique(s)]
    best = np.unique(s)[int(np.argmax(js))]
    assert t.sensitivity_ + t.specificity_ - 1 == pytest.approx(max(js))
    # pROC reports midpoints between consecutive values: 0.205 lies between 0.19 and 0.22
    assert t.threshold_ == pytest.approx(0.205)
    assert best == pytest.approx(0.22)
    assert (t.sensitivity_, t.specificity_) == pytest.approx((26 / 41, 58 / 72))


def test_threshold_learned_on_train_is_applied_unchanged_to_test():
    rng = np.random.default_rng(0)
    y_tr = rng.integers(0, 2, 120)
    s_tr = y_tr + rng.normal(0, 1, 120)
    y_te = rng.integers(0, 2, 80)
    s_te = y_te + rng.normal(0, 1, 80)
    t = YoudenThreshold().fit(y_tr, s_tr)
    m = threshold_metrics(y_te, s_te, t)
    assert m.threshold == t.threshold_
    call = s_te >= t.threshold_
    assert m.tp == int((call & (y_te == 1)).sum()) and m.fn == int((~call & (y_te == 1)).sum())
    assert m.metrics.loc["sensitivity", "estimate"] == pytest.approx(m.tp / (m.tp + m.fn))
    refit = YoudenThreshold().fit(y_te, s_te).threshold_
    assert refit != t.threshold_  # the test cohort would pick another cut-off


def test_metrics_by_hand_and_wilson_matches_statsmodels():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.4, 0.7, 0.6, 0.2, 0.1, 0.3, 0.2, 0.1])
    m = threshold_metrics(y, s, 0.5)
    assert (m.tp, m.fn, m.fp, m.tn) == (3, 1, 1, 5)
    est = m.metrics["estimate"]
    assert est["accuracy"] == pytest.approx(0.8)
    assert est["sensitivity"] == pytest.approx(0.75)
    assert est["specificity"] == pytest.approx(5 / 6)
    assert est["ppv"] == pytest.approx(0.75)
    assert est["npv"] == pytest.approx(5 / 6)
    assert est["f1"] == pytest.approx(0.75)
    lo, hi = proportion_confint(3, 4, alpha=0.05, method="wilson")
    assert (m.metrics.loc["sensitivity", "low"], m.metrics.loc["sensitivity", "high"]) == \
        pytest.approx((lo, hi), rel=1e-10)
    assert wilson_ci(81, 263) == pytest.approx(proportion_confint(81, 263, method="wilson"), rel=1e-10)
    cm = m.confusion_matrix()
    assert cm.loc["positive", "called positive"] == 3 and cm.to_numpy().sum() == 10
    boot = threshold_metrics(y, s, 0.5, ci="bootstrap", n_boot=200, random_state=1)
    assert boot.metrics.loc["accuracy", "low"] <= 0.8 <= boot.metrics.loc["accuracy", "high"]


def test_sensitivity_and_specificity_targets():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = y + rng.normal(0, 1, 200)
    t = YoudenThreshold("sensitivity", target=0.9).fit(y, s)
    assert t.sensitivity_ >= 0.9
    # the highest cut-off that still reaches the target: one step up would miss it
    above = np.unique(s)[np.unique(s) >= t.threshold_][0]
    assert (s[y == 1] >= above + 1e-9).mean() < 0.9
    sp = YoudenThreshold("specificity", target=0.8).fit(y, s)
    assert sp.specificity_ >= 0.8
    assert YoudenThreshold("fixed", target=0.3).fit(y, s).threshold_ == 0.3


def test_bad_input():
    with pytest.raises(ValueError, match="target"):
        YoudenThreshold("sensitivity").fit([0, 1], [0.1, 0.9])
    with pytest.raises(ValueError, match="method"):
        YoudenThreshold("closest").fit([0, 1], [0.1, 0.9])
    with pytest.raises(ValueError, match="not fitted"):
        YoudenThreshold().predict([0.1])
    with pytest.raises(ValueError, match="one class only"):
        threshold_metrics([1, 1], [0.1, 0.9], 0.5)
    with pytest.raises(ValueError, match="length mismatch"):
        threshold_metrics([0, 1], [0.1, 0.9, 0.3], 0.5)


def test_one_class_is_allowed_on_request_and_gives_nan_where_undefined():
    from sonorad.evaluation import threshold_metrics

    with pytest.raises(ValueError, match="one class only"):
        threshold_metrics([1, 1, 1], [0.2, 0.6, 0.9], 0.5)
    m = threshold_metrics([1, 1, 1], [0.2, 0.6, 0.9], 0.5, allow_one_class=True)
    assert (m.tp, m.fn, m.tn, m.fp) == (2, 1, 0, 0)
    assert np.isnan(m.metrics.loc["specificity", "estimate"]) and np.isnan(m.metrics.loc["specificity", "low"])
    assert m.metrics.loc["sensitivity", "estimate"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="only 0 and 1"):
        threshold_metrics([1, 2], [0.2, 0.6], 0.5, allow_one_class=True)
