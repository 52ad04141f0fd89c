"""Warnings for new cases unlike the training cohort's."""

from __future__ import annotations

from types import SimpleNamespace

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
    assert "150, is outside the training range" in age and "What to do: check the value" in age
    assert "the model used the typical training value" in w[(w["case_id"] == ids[1])]["message"].iloc[0]
    roi = w[(w["case_id"] == ids[2]) & (w["column"] == "area_px")]["message"]
    assert len(roi) == 1 and roi.iloc[0].startswith("The outlined lesion is larger than in 99% of the lesions")
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
    assert "50% of its 4 radiomics measures" in warnings[1]["message"]
    centers = ood_warnings(_summary_bundle(needs_center=True), inputs, X)
    assert [w["case_id"] for w in centers if w["column"] == "center"] == ["edge"]


def _ood(rois: dict, features: dict, needs_center=False, center="A") -> dict:
    """ood_warnings of one case ``c`` on the synthetic summary: column -> message."""
    from types import SimpleNamespace

    import pandas as pd

    from sonorad.bundle.checks import ood_warnings

    measures = {"area_px": 50.0, "area_mm2": 50.0, "spacing_row_mm": 0.1, "spacing_col_mm": 0.1, **rois}
    X = pd.DataFrame({**{f"f{i}": [features.get(f"f{i}", 0.5)] for i in range(4)}, "center": [center]}, index=["c"])
    found = ood_warnings(_summary_bundle(needs_center), SimpleNamespace(rois=pd.DataFrame(measures, index=["c"])), X)
    return {w["column"]: w["message"] for w in found}


def test_an_unusual_roi_is_said_in_words_with_why_and_what_to_do():
    large = _ood({"area_px": 5519.4}, {})["area_px"]
    assert large.startswith("The outlined lesion is larger than in 99% of the lesions of the training patients "
                            "(5519 pixels; training 10-100).")                          # what, with the numbers
    assert "The model has not seen such lesions, so its risk may be unreliable." in large  # why
    assert large.endswith("What to do: check that the outline covers only the lesion; interpret the risk with "
                          "caution.")                                                   # what to do
    small = _ood({"area_px": 3.0}, {})["area_px"]
    assert small.startswith("The outlined lesion is smaller than in 99%") and "covers the whole lesion" in small
    spacing = _ood({"spacing_row_mm": 0.5}, {})["spacing_row_mm"]
    assert spacing.startswith("The image's pixel height is larger than in 99% of the training images (0.5 mm")
    assert "What to do: check the pixel size given with the image" in spacing
    for message in (large, small, spacing):
        assert "area_px" not in message and "percentile" not in message and "spacing_row_mm" not in message


def test_an_image_unlike_the_training_images_is_not_to_be_used():
    from sonorad.bundle.checks import DO_NOT_USE, IMAGE_UNLIKE_FRACTION

    assert IMAGE_UNLIKE_FRACTION == 0.5
    differs = _ood({}, {"f0": 2.0, "f1": 2.0})["radiomics features"]                    # half: caution
    assert differs.startswith("The image differs from the training images: 50% of its 4 radiomics measures")
    assert "the risk may be unreliable" in differs and "What to do: check the image and the outline" in differs
    assert DO_NOT_USE not in differs
    unlike = _ood({}, {"f0": 2.0, "f1": 2.0, "f2": -1.0})["radiomics features"]          # most: do not use
    assert unlike.startswith("Do not use this result: the image does not look like the training images. "
                             "75% of its 4 radiomics measures")
    assert "its risk means nothing here" in unlike and "What to do: use a grayscale ultrasound image" in unlike


def test_an_unknown_center_is_said_in_words():
    message = _ood({}, {}, needs_center=True, center="Z")["center"]
    assert message.startswith("The center 'Z' is not one of the training centers.")
    assert "What to do: score several cases of this center together" in message


def test_a_case_s_warning_texts_put_an_unlike_image_first_and_name_no_column():
    import pandas as pd

    from sonorad.bundle.checks import DO_NOT_USE, case_warning_texts
    from sonorad.bundle.results import WARNING_COLUMNS
    from sonorad.errors import FAILURE_COLUMNS

    rows = [{"case_id": "c", "column": "area_px", "message": "The outlined lesion is larger ..."},
            {"case_id": "c", "column": "radiomics features", "message": f"{DO_NOT_USE}: the image ..."}]
    failed = [{"case_id": "c", "stage": "model knn", "error": "the model failed.", "fix": "report it"}]
    result = SimpleNamespace(warnings=pd.DataFrame(rows, columns=WARNING_COLUMNS),
                             failures=pd.DataFrame(failed, columns=FAILURE_COLUMNS), notes=["a note"])
    texts = case_warning_texts(result, ["shoe_size"])
    assert texts[0].startswith(DO_NOT_USE) and texts[1] == "The outlined lesion is larger ..."
    assert texts[2] == ("One of the bundle's models could not score this case (model knn): the model failed. "
                        "The result shown does not depend on it. What to do: report it.")
    assert texts[3] == "'shoe_size' is not a variable of this model and was ignored. What to do: check its spelling."
    assert texts[4] == "a note" and not any(t.startswith(("area_px:", "radiomics features:")) for t in texts)


def test_numbers_in_warnings_read_as_numbers():
    from sonorad.bundle.checks import _num

    assert [_num(v) for v in (26554.0, 1793.8, 12.345, 0.078125)] == ["26554", "1794", "12.35", "0.07812"]


def test_an_roi_far_larger_than_any_training_lesion_is_refused_before_extraction():
    from types import SimpleNamespace

    from sonorad.bundle.checks import implausible_roi

    levels = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    areas = [1793.8, 1936.4, 2460.4, 2851.4, 3509.6, 4580.2, 4769.6]
    bundle = SimpleNamespace(summary={"quantiles": levels, "rois": {"area_px": {"quantiles": areas}}})
    lesion = np.zeros((200, 200), dtype=bool)
    lesion[50:110, 50:110] = True  # 3600 px: a training-like lesion
    assert implausible_roi(bundle, lesion) is None
    huge = np.ones((200, 200), dtype=bool)  # 40000 px > 3509.6 + 10 x 1049.2 = 14001.6
    message = implausible_roi(bundle, huge)
    assert "40000 pixels" in message and "What to do" in message and "14002" in message
    assert implausible_roi(SimpleNamespace(summary={}), huge) is None  # an old bundle: no rule
