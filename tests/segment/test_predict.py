import numpy as np
import pandas as pd
import pytest

from sonorad.errors import CaseError
from sonorad.segment.predict import FLAGS, propose_mask, segment_cases
from tests.segment.conftest import lesion_image


def test_propose_mask_returns_mask_confidence_flags(tiny_segmenter):
    image, truth = lesion_image(np.random.default_rng(5))
    rows, cols = np.nonzero(truth)
    mask, confidence, flags = propose_mask(tiny_segmenter, image, (cols.min(), rows.min(), cols.max() + 1,
                                                                    rows.max() + 1))
    assert mask.shape == image.shape and mask.dtype == bool
    assert 0.0 <= confidence <= 1.0 and set(flags) <= set(FLAGS)
    assert mask.any() or flags == ["empty"]


@pytest.mark.parametrize("box, words", [
    ((30, 10, 20, 40), "degenerate"),
    ((-10, 0, 20, 20), "not inside"),
    ((10, 10, 12, 12), "smaller than"),
])
def test_propose_mask_refuses_bad_boxes(tiny_segmenter, box, words):
    image, _ = lesion_image(np.random.default_rng(1))
    with pytest.raises(CaseError, match=words):
        propose_mask(tiny_segmenter, image, box, case_id="X1")


def test_an_image_without_a_lesion_is_flagged_never_a_silent_empty_mask(tiny_segmenter):
    blank = np.full((48, 64), 120, np.uint8)
    mask, confidence, flags = propose_mask(tiny_segmenter, blank, (10, 10, 50, 40))
    assert flags, "a blank image must be flagged"
    assert "empty" in flags or "low_contrast" in flags
    if not mask.any():
        assert flags == ["empty"] and confidence == 0.0


def test_flags_of_a_known_mask(tiny_segmenter, monkeypatch):
    """A network answering 'everything' inside the window gives the box-filling, low-contrast flags."""
    import torch

    class Everything(torch.nn.Module):
        def forward(self, x):
            return torch.full_like(x, 10.0)

    monkeypatch.setattr(tiny_segmenter, "net", Everything())
    image, _ = lesion_image(np.random.default_rng(2))
    mask, confidence, flags = propose_mask(tiny_segmenter, image, (20, 10, 44, 38))
    assert "box_edge_all_round" in flags and confidence > 0.95


def test_segment_cases_goes_on_past_bad_boxes(tiny_segmenter, tiny_cohort, tmp_path):
    from sonorad.cohort import read_cases

    table = read_cases(tiny_cohort)
    table["box"] = ""
    table.loc["c0", "box"] = "5,5,40,40"       # a box given
    table.loc["c1", "box"] = "40,5,10,30"      # degenerate
    table.loc["c2", "box"] = "0,0,200,30"      # outside the image
    table.loc["c3", "box"] = "10,10,12,12"     # too small
    table.loc["c4", "box"] = "a,b"             # not a box
    table["box"] = table["box"].replace("", np.nan)
    result = segment_cases(tiny_segmenter, table, tmp_path / "out")
    per_case = result.per_case.set_index("case_id")
    assert list(per_case.loc[["c1", "c2", "c3", "c4"], "status"]) == ["failed"] * 4
    assert "degenerate" in per_case.loc["c1", "error"] and "not inside" in per_case.loc["c2", "error"]
    assert "smaller than" in per_case.loc["c3", "error"] and "four numbers" in per_case.loc["c4", "error"]
    assert per_case.loc["c0", "box_source"] == "box" and per_case.loc["c5", "box_source"] == "mask"
    assert pd.notna(per_case.loc["c5", "dice_vs_mask"])
    assert set(result.failures["case_id"]) >= {"c1", "c2", "c3", "c4"}
    assert (tmp_path / "out" / "segmentation.csv").exists()
