"""Warnings for new cases unlike the training cohort's."""

from __future__ import annotations

import numpy as np


def test_out_of_distribution_inputs_get_per_case_warnings(bundle, external, small_bundle, tmp_path):
    from PIL import Image

    cases = external.copy()
    ids = list(cases.index)
    cases.loc[ids[0], "age"] = 150
    cases.loc[ids[1], "age"] = np.nan
    # a lesion mask that covers 60% of the image (a mask marking 80% or more is refused as inverted):
    # an ROI far larger than any training lesion
    mask = np.asarray(Image.open(cases.loc[ids[2], "mask"]))
    big = np.zeros_like(mask)
    big[12:-12, 12:-12] = 255
    Image.fromarray(big).save(tmp_path / "big.png")
    cases.loc[ids[2], "mask"] = str(tmp_path / "big.png")
    result = bundle.predict(cases, explain=False)
    w = result.warnings
    age = w[(w["case_id"] == ids[0]) & (w["column"] == "age")]["message"].iloc[0]
    assert "150 is outside the training range" in age
    assert "no value; imputed with the training value" in w[(w["case_id"] == ids[1])]["message"].iloc[0]
    roi = w[(w["case_id"] == ids[2]) & (w["column"] == "area_px")]["message"]
    assert len(roi) == 1 and "far from the training cohort" in roi.iloc[0]
    assert set(result.scored_cases) == set(ids)


def _summary_bundle(needs_center=False):
    from types import SimpleNamespace

    rois = {c: {"quantiles": [10.0, 100.0]} for c in ("area_px", "area_mm2")}
    rois.update({c: {"quantiles": [0.1, 0.1]} for c in ("spacing_row_mm", "spacing_col_mm")})
    columns = {f"f{i}": {"quantiles": [0.0, 1.0]} for i in range(4)}
    return SimpleNamespace(summary={"rois": rois, "columns": columns, "centers": ["A", "B"]},
                           features={"column_kinds": {**{f"f{i}": "radiomics" for i in range(4)}, "center": "center"}},
                           needs_center=needs_center)


def test_ood_warnings_on_a_synthetic_summary():
    from types import SimpleNamespace

    import pandas as pd

    from sonorad.bundle.checks import ood_warnings

    rois = pd.DataFrame({"area_px": [50.0, 104.0, 106.0], "area_mm2": [50.0, 50.0, 50.0],
                         "spacing_row_mm": [0.1] * 3, "spacing_col_mm": [0.1] * 3}, index=["ok", "edge", "far"])
    X = pd.DataFrame({"f0": [0.5, 0.5, 2.0], "f1": [0.5, 0.5, 2.0], "f2": [0.5, 0.5, 0.5], "f3": [0.5, 2.0, 0.5],
                      "center": ["A", "C", "B"]}, index=rois.index)
    inputs = SimpleNamespace(rois=rois)
    warnings = ood_warnings(_summary_bundle(), inputs, X)
    # 104 is within the 5% tolerance of 100; 106 is not; one feature in four (25%) is not "more than a quarter"
    assert [(w["case_id"], w["column"]) for w in warnings] == [("far", "area_px"), ("far", "radiomics features")]
    assert "50% of the 4 radiomics features" in warnings[1]["message"]
    centers = ood_warnings(_summary_bundle(needs_center=True), inputs, X)
    assert [w["case_id"] for w in centers if w["column"] == "center"] == ["edge"]
