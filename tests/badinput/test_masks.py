"""Hostile lesion masks: inverted or near-whole-image masks, and specks beside the lesion.

The images are 48x48 PNGs written by the corpus (see ``conftest.py``); each test plants one defect.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sonorad.errors import CaseError, CaseWarning
from sonorad.imaging import load_lesion_rois, load_roi
from sonorad.imaging.roi import MAX_ROI_FRACTION, MIN_REGION_FRACTION, MIN_REGION_PIXELS


def _case(corpus, name, mask):
    corpus.add(name, mask=mask)
    return corpus.path(f"{name}.png"), corpus.path(f"{name}_mask.png")


def _caught(call):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = call()
    return result, [w.message for w in seen if issubclass(w.category, CaseWarning)]


# --- inverted and near-whole-image masks ------------------------------------------------------------

def test_inverted_mask_is_refused_with_its_fraction(corpus):
    lesion = corpus.lesion_mask(box=(20, 30, 20, 32))      # 120 of 2304 pixels
    image, mask = _case(corpus, "inv", 255 - lesion)         # lesion 0, background 255
    with pytest.raises(CaseError) as info:
        load_roi(image, mask, case_id="inv")
    text = str(info.value)
    assert "[case inv]" in text and "94.8%" in text and str(mask) in text
    assert "the mask may be inverted: the lesion must be the non-zero pixels" in info.value.problem.fix


@pytest.mark.parametrize("rows", [44, 47])  # 91.7% and 97.9% of the image
def test_mask_covering_most_of_the_image_is_refused(corpus, rows):
    m = np.zeros((48, 48), np.uint8)
    m[:rows] = 255
    image, mask = _case(corpus, "big", m)
    with pytest.raises(CaseError, match=rf"{100 * rows / 48:.1f}% of the image"):
        load_roi(image, mask, case_id="big")
    with pytest.raises(CaseError, match="may be inverted"):
        load_lesion_rois(image, mask, case_id="big")


def test_large_but_plausible_lesion_is_kept(corpus):
    m = np.zeros((48, 48), np.uint8)
    rows = int(MAX_ROI_FRACTION * 48) - 1  # just under the limit
    m[:rows] = 255
    image, mask = _case(corpus, "large", m)
    assert int(load_roi(image, mask, case_id="large")[1].sum()) == rows * 48


def test_the_limit_is_documented():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "imaging.md").read_text(encoding="utf-8")
    assert f"{MAX_ROI_FRACTION:.0%}" in text and f"{MIN_REGION_PIXELS} pixels" in text
    assert f"{MIN_REGION_FRACTION:.1%}" in text


# --- specks ------------------------------------------------------------------------------------------

def _lesion_with_speck(corpus, name, speck_pixels=3):
    m = corpus.lesion_mask()               # 20 x 24 = 480 pixels
    m[2, 2:2 + speck_pixels] = 255         # a speck far from the lesion
    return _case(corpus, name, m)


def test_speck_is_dropped_with_one_note_per_case(corpus):
    image, mask = _lesion_with_speck(corpus, "speck")
    (_, roi), notes = _caught(lambda: load_roi(image, mask, case_id="speck"))
    assert int(roi.sum()) == 480
    assert len(notes) == 1 and notes[0].case_id == "speck"
    assert "dropped 1 speck" in str(notes[0]) and "3 pixels" in str(notes[0]) and "disjoint" not in str(notes[0])
    (_, roi), again = _caught(lambda: load_roi(image, mask, case_id="speck"))  # a second read of the case
    assert int(roi.sum()) == 480 and again == []


def test_speck_is_dropped_by_every_policy(corpus):
    image, mask = _lesion_with_speck(corpus, "sp2", speck_pixels=4)
    for lesions in ("union", "largest"):
        (_, roi), notes = _caught(lambda: load_roi(image, mask, case_id="sp2", lesions=lesions))
        assert int(roi.sum()) == 480 and all("speck" in str(n) for n in notes)
    rois, _ = _caught(lambda: load_lesion_rois(image, mask, case_id="sp2"))
    assert [(cid, int(m.sum())) for cid, _, m in rois] == [("sp2", 480)]


def test_real_second_region_still_warns_once_per_read(corpus):
    m = corpus.lesion_mask()
    m[2:5, 2:6] = 255                      # 12 pixels: above the speck size
    image, mask = _case(corpus, "two", m)
    (_, roi), notes = _caught(lambda: load_roi(image, mask, case_id="two"))
    assert int(roi.sum()) == 492
    assert len(notes) == 1 and "2 disjoint regions (12, 480 pixels)" in str(notes[0])
