"""Tests of NRI and IDI on a small cohort worked by hand (Pencina et al. 2008 formulas)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sonorad.evaluation.reclassification import idi, nri

# 4 events, 4 non-events
Y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
OLD = np.array([0.20, 0.40, 0.60, 0.25, 0.30, 0.15, 0.50, 0.05])
NEW = np.array([0.35, 0.45, 0.55, 0.25, 0.10, 0.25, 0.45, 0.05])


def test_continuous_nri_by_hand():
    # events: up 2 (0.20->0.35, 0.40->0.45), down 1, unchanged 1
    # non-events: down 2 (0.30->0.10, 0.50->0.45), up 1
    r = nri(Y, OLD, NEW)
    assert r.table.loc["NRI events", "estimate"] == pytest.approx(2 / 4 - 1 / 4)
    assert r.table.loc["NRI non-events", "estimate"] == pytest.approx(2 / 4 - 1 / 4)
    assert r.estimate == pytest.approx(0.5)
    z = 0.5 / np.sqrt((2 / 4 + 1 / 4) / 4 + (1 / 4 + 2 / 4) / 4)
    assert r.z == pytest.approx(z) and r.p_value == pytest.approx(2 * stats.norm.sf(z))
    se = np.sqrt(2 * (0.75 - 0.25 ** 2) / 4)
    assert r.high - r.estimate == pytest.approx(stats.norm.ppf(0.975) * se)


def test_categorical_nri_by_hand():
    # categories <0.3, [0.3, 0.5), >=0.5
    # events: 0.20->0.35 up; 0.40->0.45 same; 0.60->0.55 same; 0.25 same  -> +1/4
    # non-events: 0.30->0.10 down; 0.15->0.25 same; 0.50->0.45 down; 0.05 same -> +2/4
    r = nri(Y, OLD, NEW, cutoffs=[0.3, 0.5])
    assert r.table.loc["NRI events", "estimate"] == pytest.approx(0.25)
    assert r.table.loc["NRI non-events", "estimate"] == pytest.approx(0.5)
    assert r.estimate == pytest.approx(0.75)
    assert "categorical" in r.method


def test_idi_by_hand():
    r = idi(Y, OLD, NEW)
    d_ev = (NEW - OLD)[Y == 1]
    d_ne = (NEW - OLD)[Y == 0]
    assert r.estimate == pytest.approx(d_ev.mean() - d_ne.mean())
    se = np.hypot(d_ev.std(ddof=1) / 2, d_ne.std(ddof=1) / 2)
    assert r.table.loc["IDI", "se"] == pytest.approx(se)
    slope_gain = (r.table.loc["discrimination slope, new", "estimate"]
                  - r.table.loc["discrimination slope, old", "estimate"])
    assert slope_gain == pytest.approx(r.estimate)


def test_identical_models_give_zero():
    r = nri(Y, OLD, OLD)
    assert r.estimate == 0 and r.p_value == 1.0
    assert idi(Y, OLD, OLD).estimate == 0


def test_bad_input():
    with pytest.raises(ValueError, match="proba_new"):
        nri(Y, OLD, NEW * 3)
    with pytest.raises(ValueError, match="cutoffs"):
        nri(Y, OLD, NEW, cutoffs=[0.3, 1.5])
    with pytest.raises(ValueError, match="length mismatch"):
        idi(Y, OLD, NEW[:5])
    with pytest.raises(ValueError, match="one class only"):
        idi(np.ones(8, int), OLD, NEW)
