"""sonorad.bundle.summary: what a bundle keeps of the training cohort is aggregates, never one case's row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.bundle.summary import (MIN_CASES_PER_CENTROID, QUANTILES, pooled_quantiles, roi_measures,
                                    shap_background, training_summary)
from sonorad.study import StudyConfig


def test_shap_background_never_averages_fewer_than_five_cases():
    rng = np.random.default_rng(1)
    values = np.vstack([rng.normal(size=(40, 3)), rng.normal(8, 0.1, size=(2, 3))])  # 2 outliers
    centroids, sizes = shap_background(pd.DataFrame(values))
    assert min(sizes) >= 5 and sum(sizes) == 42 and len(centroids) == len(sizes) <= 8
    assert not any((np.abs(values - c).max(axis=1) < 1e-12).any() for c in centroids)


def test_shap_background_refuses_too_few_cases_and_missing_values():
    with pytest.raises(ValueError, match="at least 5"):
        shap_background(pd.DataFrame(np.zeros((MIN_CASES_PER_CENTROID - 1, 2))))
    values = np.arange(20.0).reshape(10, 2)
    values[3, 1] = np.nan
    with pytest.raises(ValueError, match="missing or infinite"):
        shap_background(pd.DataFrame(values))


def test_pooled_quantiles_average_k_order_statistics():
    x = np.arange(101.0)
    np.testing.assert_allclose(pooled_quantiles(x, probs=(0.0, 0.5, 1.0), k=5), [2.0, 50.0, 98.0])
    np.testing.assert_allclose(pooled_quantiles([3.0, 1.0, 2.0], k=5), np.full(len(QUANTILES), 2.0))
    assert np.isnan(pooled_quantiles([], probs=(0.5,))).all()


def test_roi_measures_use_the_pixel_spacing():
    from sonorad.imaging import UltrasoundImage

    mask = np.zeros((10, 10), bool)
    mask[1:4, 1:5] = True
    measures = roi_measures(UltrasoundImage(np.zeros((10, 10)), spacing=(0.5, 0.25)), mask)
    assert measures == {"area_px": 12.0, "area_mm2": 1.5, "spacing_row_mm": 0.5, "spacing_col_mm": 0.25}


def test_training_summary_keeps_aggregates_levels_ranges_and_centers():
    variables = StudyConfig.from_dict({
        "name": "t", "label": {"positive": 1},
        "variables": {"age": "numeric", "edge": {"type": "binary", "levels": ["smooth", "irregular"]}}}).variables
    n = 12
    f = np.arange(n, dtype=float) ** 2
    table = pd.DataFrame({"f": f, "age": [40.0 + i for i in range(n - 1)] + [np.nan],
                          "edge": ["smooth", "irregular"] * (n // 2), "center": ["A"] * 6 + ["B"] * 6},
                         index=pd.Index([f"case{i}" for i in range(n)], name="case_id"))
    rois = pd.DataFrame({"area_px": np.linspace(100, 210, n), "other": 1.0}, index=table.index)
    kinds = {"f": "radiomics", "age": "variable", "edge": "variable", "center": "center"}
    summary = training_summary(table, rois, variables, kinds)
    assert summary["n_cases"] == n and summary["quantiles"] == list(QUANTILES) and summary["centers"] == ["A", "B"]
    entry = summary["columns"]["f"]
    assert entry["kind"] == "radiomics" and entry["n"] == n and entry["n_missing"] == 0 and "range" not in entry
    assert entry["quantiles"] == pytest.approx(list(pooled_quantiles(f)))
    assert entry["mean"] == pytest.approx(f.mean()) and entry["sd"] == pytest.approx(f.std(ddof=1))
    age = summary["columns"]["age"]
    assert age["range"] == [40.0, 50.0] and age["n_missing"] == 1 and age["n"] == n - 1
    assert summary["columns"]["edge"] == {"kind": "variable", "levels_seen": ["irregular", "smooth"], "n_missing": 0}
    assert "center" not in summary["columns"]
    assert set(summary["rois"]) == {"area_px"} and summary["rois"]["area_px"]["n"] == n
    # no stored quantile is one case's value
    assert not set(entry["quantiles"]) & set(f)
    assert training_summary(table, None, variables, kinds)["rois"] == {}
