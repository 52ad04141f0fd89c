"""One case at a time: 16-bit images, label maps, disjoint lesions, library warnings (items 5-7, 10)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sonorad.errors import CaseError, CaseWarning, case_warnings
from sonorad.features.radiomics import MAX_GRAY_LEVELS, extract_case, gray_levels, to_8bit_scale
from sonorad.imaging import load_lesion_rois, load_roi, read_image


def _features(corpus, case_id):
    row = next(r for r in corpus.rows if r["case_id"] == case_id)
    image, mask = load_roi(corpus.root / row["image"], corpus.root / row["mask"], case_id=case_id)
    return image, extract_case(image, mask, corpus.fast_params, case_id=case_id)


# --- item 5: 16-bit images --------------------------------------------------------------------------

def test_16bit_export_of_an_8bit_image_gives_the_8bit_features(corpus):
    pixels = corpus.ultrasound_image(4)
    corpus.add("eight", image=pixels)
    corpus.add("sixteen", image=pixels.astype(np.uint16) * 257)  # what a 16-bit re-export does
    image16, f16 = _features(corpus, "sixteen")
    _, f8 = _features(corpus, "eight")
    assert image16.meta["bit_depth"] == 16 and image16.pixels.max() > 255  # read on its own scale...
    assert f16 == pytest.approx(f8, rel=1e-6)  # ...and binned on the 8-bit one


def test_rescaling_rule():
    assert to_8bit_scale(np.array([0.0, 257.0, 65535.0]), 16).tolist() == [0.0, 1.0, 255.0]
    assert to_8bit_scale(np.array([4095.0]), 12).tolist() == [255.0]
    same = np.array([3.0, 200.0])
    assert to_8bit_scale(same, 8) is same and to_8bit_scale(same, None) is same


def test_work_per_case_is_bounded_with_a_clear_error(corpus):
    from sonorad.imaging import UltrasoundImage

    pixels = corpus.ultrasound_image(2).astype(np.float32) * 300.0  # a float export: ~9000 levels
    mask = corpus.lesion_mask() > 0
    assert gray_levels(pixels, mask, {"binWidth": 5}) > MAX_GRAY_LEVELS
    with pytest.raises(CaseError, match=r"\[case f1\] the ROI's gray levels span .* bins of binWidth 5") as info:
        extract_case(UltrasoundImage(pixels), mask, corpus.fast_params, case_id="f1")
    assert "binCount" in info.value.problem.fix
    params = {**corpus.fast_params, "setting": {**corpus.fast_params["setting"], "binCount": 64}}
    del params["setting"]["binWidth"]
    assert extract_case(UltrasoundImage(pixels), mask, params, case_id="f1")  # the fix works


# --- item 6: label maps -----------------------------------------------------------------------------

def _label_map(corpus):
    labels = np.zeros_like(corpus.lesion_mask())
    labels[5:15, 5:15] = 1
    labels[25:40, 25:40] = 3
    corpus.add("lab", mask=labels)
    return corpus.root / "img" / "lab.png", corpus.root / "img" / "lab_mask.png"


def test_label_map_without_a_choice_names_the_case_and_labels(corpus):
    image, mask = _label_map(corpus)
    with pytest.raises(CaseError, match=r"\[case lab\] mask .* several labels \(1 \(100 px\), 3 \(225 px\)\)"):
        load_roi(image, mask, case_id="lab")


@pytest.mark.parametrize("label, pixels", [(1, 100), (3, 225)])
def test_label_map_with_a_choice_uses_that_label(label, pixels, corpus):
    image, mask = _label_map(corpus)
    assert load_roi(image, mask, case_id="lab", label=label)[1].sum() == pixels


# --- item 7: disjoint lesions -----------------------------------------------------------------------

def _two_lesions(corpus):
    mask = corpus.lesion_mask()
    mask[2:8, 2:8] = 255
    corpus.add("two", mask=mask)
    return corpus.root / "img" / "two.png", corpus.root / "img" / "two_mask.png"


def test_disjoint_lesions_warn_by_case_and_each_policy_is_honoured(corpus):
    image, mask = _two_lesions(corpus)
    with pytest.warns(CaseWarning, match=r"case two: .*2 disjoint regions \(36, 480 pixels\)") as seen:
        assert load_roi(image, mask, case_id="two")[1].sum() == 516
    assert seen[0].message.case_id == "two"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_roi(image, mask, case_id="two", lesions="union")[1].sum() == 516
    with pytest.warns(CaseWarning, match="keeps the largest"):
        assert load_roi(image, mask, case_id="two", lesions="largest")[1].sum() == 480
    rois = load_lesion_rois(image, mask, case_id="two")
    assert [(cid, int(m.sum())) for cid, _, m in rois] == [("two-lesion1", 36), ("two-lesion2", 480)]


# --- item 9: a whole-image mask reaching radiomics directly ---------------------------------------

def test_whole_image_mask_is_not_called_empty(corpus):
    from sonorad.imaging import UltrasoundImage

    with pytest.raises(CaseError, match=r"\[case w\] the mask covers the whole image.*inverted") as info:
        extract_case(UltrasoundImage(corpus.ultrasound_image(1)), np.ones((48, 48), bool),
                     corpus.fast_params, case_id="w")
    assert "No labels found" not in str(info.value)


# --- item 10: library warnings carry the case id ----------------------------------------------------

def test_pillow_decompression_bomb_warning_names_the_case(corpus, monkeypatch):
    from PIL import Image

    corpus.add("big")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 48 * 48 - 1)  # over the limit, under twice it
    with pytest.warns(CaseWarning, match=r"case big: DecompressionBombWarning") as seen:
        load_roi(corpus.root / "img" / "big.png", corpus.root / "img" / "big_mask.png", case_id="big")
    assert not [w for w in seen if not isinstance(w.message, CaseWarning)]  # no raw copy of it


def test_numpy_warning_inside_a_case_names_the_case():
    with pytest.warns(CaseWarning, match=r"case c9: RuntimeWarning: overflow") as seen:
        with case_warnings("c9"):
            np.float32(3e38) * np.float32(10)
    assert len(seen) == 1


def test_read_image_itself_keeps_the_source_scale(corpus):
    corpus.add("s16", image=corpus.ultrasound_image(3).astype(np.uint16) * 257)
    assert read_image(corpus.root / "img" / "s16.png").pixels.max() > 255  # readers never rescale


def test_mask_label_column_reaches_the_cnn_crops(corpus):
    import pandas as pd

    from sonorad.deep.inputs import case_crop_with_mask

    image, mask = _label_map(corpus)
    row = pd.Series({"image": str(image), "mask": str(mask)})
    with pytest.raises(CaseError, match="several labels"):
        case_crop_with_mask(row, "lab")
    _, crop_mask = case_crop_with_mask(pd.Series({**row, "mask_label": 1.0}), "lab")
    assert crop_mask.any()
