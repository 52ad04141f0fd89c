"""Tests of sonorad.report.tripod: TRIPOD+AI item numbering, filtering and section mapping."""

from __future__ import annotations

import pytest

from sonorad.report.tripod import TO_BE_COMPLETED, TRIPOD_AI_ITEMS, tripod_checklist


def test_items_follow_the_published_numbering():
    items = [item[0] for item in TRIPOD_AI_ITEMS]
    assert len(items) == len(set(items)) == 52
    assert items[:6] == ["1", "2", "3a", "3b", "3c", "4"]
    assert [i for i in items if i.startswith("12")] == ["12a", "12b", "12c", "12d", "12e", "12f", "12g"]
    assert [i for i in items if i.startswith("18")] == ["18a", "18b", "18c", "18d", "18e", "18f"]
    assert items[-3:] == ["27a", "27b", "27c"]
    numbers = [int(i.rstrip("abcdefg")) for i in items]
    assert numbers == sorted(numbers) and set(numbers) == set(range(1, 28))
    topics = {item[0]: item[2] for item in TRIPOD_AI_ITEMS}
    assert topics["13"] == "Class imbalance" and topics["14"] == "Fairness" and topics["22"] == "Model specification"


def test_checklist_maps_sections_and_marks_the_rest():
    df = tripod_checklist({"20a": "Figure 1 (cohort flow)", "20b": "Table 1", " 12e ": "Methods: statistics"})
    assert list(df.columns) == ["item", "part", "topic", "applies", "recommendation", "addressed_in"]
    assert len(df) == 52
    addressed = dict(zip(df["item"], df["addressed_in"]))
    assert addressed["20a"] == "Figure 1 (cohort flow)" and addressed["12e"] == "Methods: statistics"
    assert addressed["17"] == TO_BE_COMPLETED
    assert (df["addressed_in"] == TO_BE_COMPLETED).sum() == 49


def test_study_type_filters_items():
    development = set(tripod_checklist({}, study_type="development")["item"])
    evaluation = set(tripod_checklist({}, study_type="evaluation")["item"])
    assert {"12f", "12g", "20c", "24"}.isdisjoint(development)
    assert {"9a", "12a", "12b", "12c", "15", "22", "27a", "27b"}.isdisjoint(evaluation)
    assert {"1", "23a", "27c"} <= development & evaluation


def test_bad_items_are_named():
    with pytest.raises(ValueError, match="'12h' is not a TRIPOD\\+AI item number"):
        tripod_checklist({"12h": "Methods"})
    with pytest.raises(ValueError, match="item 24 applies to E studies only"):
        tripod_checklist({"24": "Results"}, study_type="development")
    with pytest.raises(ValueError, match="study_type"):
        tripod_checklist({}, study_type="validation")
    with pytest.raises(ValueError, match="section is empty"):
        tripod_checklist({"1": " "})


def test_automatic_rois_fill_the_predictor_measurement_items():
    from types import SimpleNamespace

    from sonorad.report.tripod import segmentation_items

    assert segmentation_items(SimpleNamespace(feature_summary={"radiomics": {}})) == {}
    items = segmentation_items(SimpleNamespace(feature_summary={"automatic_rois": {"n_automatic": 4, "n_rois": 9}}))
    assert set(items) == {"7", "9b"} and all("4 of 9 lesion ROIs" in v for v in items.values())
    table = tripod_checklist(items)
    assert "4 of 9" in table.set_index("item").at["9b", "addressed_in"]
