"""ROI sensitivity: the chosen model's probability on the outline eroded and dilated."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.bundle.sensitivity import roi_sensitivity
from sonorad.imaging.perturb import perturb_mask


def _square(size=20, shape=(50, 50)):
    m = np.zeros(shape, bool)
    m[15:15 + size, 15:15 + size] = True
    return m


def test_eroded_and_dilated_outlines_are_scored_and_the_range_spans_all_three():
    mask = _square()
    result, note = roi_sensitivity(lambda m: m.sum() / 1000, mask, 0.4, pixels=2)
    # a 20x20 square: eroded by a radius-2 disk 16x16; dilated 24x24 less 3 pixels at each corner
    assert result["areas_px"] == {"original": 400, "eroded": 256, "dilated": 564} and note is None
    assert result["probabilities"] == {"eroded": 0.256, "dilated": 0.564}
    assert (result["low"], result["high"], result["pixels"]) == (0.256, 0.564, 2)
    assert "eroded and dilated by 2 pixel(s)" in result["method"]


def test_the_range_is_min_and_max_including_the_original_probability():
    result, _ = roi_sensitivity(lambda m: 0.3, _square(), 0.5, pixels=1)
    assert (result["low"], result["high"]) == (0.3, 0.5)


def test_an_erosion_that_empties_the_mask_is_a_note_not_a_failure():
    mask = _square(size=3)
    result, note = roi_sensitivity(lambda m: m.sum() / 100, mask, 0.09, pixels=2)
    assert result["probabilities"]["eroded"] is None and result["areas_px"]["eroded"] == 0
    assert result["probabilities"]["dilated"] == pytest.approx(perturb_mask(mask, "dilate", 2).sum() / 100)
    assert "leaves nothing" in note and "not scored" in note


def test_an_outline_the_model_cannot_score_is_named_in_the_note():
    def score(m):
        if m.sum() < 400:
            raise ValueError("ROI too small")
        return 0.7

    result, note = roi_sensitivity(score, _square(), 0.6, pixels=2)
    assert result["probabilities"] == {"eroded": None, "dilated": 0.7} and "eroded outline (256 pixels)" in note
    assert roi_sensitivity(lambda m: 1 / 0, _square(), 0.6)[0] is None


def test_a_bundle_case_result_carries_the_roi_sensitivity_only_when_asked(bundle, small_bundle, one_case):
    image, mask, values = one_case(small_bundle.external_ids[0])
    plain = bundle.predict_case(image, mask, values, gradcam=False, explain=False)
    asked = bundle.predict_case(image, mask, values, gradcam=False, explain=False, roi_sensitivity=True)
    assert plain.roi_sensitivity is None and asked.probability == plain.probability
    s = asked.roi_sensitivity
    assert s["areas_px"] == {"original": int(mask.sum()), "eroded": int(perturb_mask(mask, "erode", 2).sum()),
                             "dilated": int(perturb_mask(mask, "dilate", 2).sum())}
    eroded = bundle.predict_case(image, perturb_mask(mask, "erode", 2), values, gradcam=False, explain=False)
    assert s["probabilities"]["eroded"] == pytest.approx(eroded.probability, abs=1e-12)
    every = [asked.probability, *s["probabilities"].values()]
    assert s["low"] == min(every) <= asked.probability <= s["high"] == max(every)
    assert asked.to_dict()["roi_sensitivity"]["pixels"] == 2
