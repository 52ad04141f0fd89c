"""Opt-in checks on the real cohorts in ../shared/data (skipped when absent)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from sonorad.imaging import crop_to_roi, load_roi, perturbed_masks, read_mask

pytestmark = pytest.mark.data


def _rows(folder, n):
    with open(folder / "cases.csv", newline="") as fh:
        return list(csv.DictReader(fh))[:n]


@pytest.mark.parametrize("cohort", ["breast_lesions_usg", "bus_bra"])
def test_five_cases_load_with_matching_shapes_and_nonempty_rois(shared_data, cohort):
    folder = shared_data / cohort
    for row in _rows(folder, 5):
        img, mask = load_roi(folder / row["image"], folder / row["mask"], case_id=row["case_id"])
        assert img.pixels.shape == mask.shape
        assert mask.sum() >= 2
        assert 0 <= img.pixels.min() and img.pixels.max() <= 255  # 8-bit sources keep their scale
        crop, crop_mask = crop_to_roi(img.pixels, mask)
        assert crop.shape[0] == crop.shape[1] and crop_mask.sum() == mask.sum()
        assert all(p.sum() > 0 for p in perturbed_masks(mask, seed=0))
    expected_mode = "RGBA" if cohort == "breast_lesions_usg" else "L"
    assert img.meta["mode"] == expected_mode


def test_breast_case010_stray_alpha_75_is_thresholded(shared_data):
    # breast_010's mask is the only one of the 252 whose RGBA values are not all 0 / 255: two pixels
    # are white with alpha 75. Alpha counts as coverage, so they read 75 and fall below half of 255.
    path = shared_data / "breast_lesions_usg" / "masks" / "case010_tumor.png"
    with Image.open(path) as im:
        rgba = np.asarray(im)
    alpha = rgba[..., 3]
    assert set(np.unique(alpha).tolist()) == {0, 75, 255}
    stray = alpha == 75
    mask = read_mask(path)
    assert not mask[stray].any()
    np.testing.assert_array_equal(mask, alpha == 255)
    assert mask.sum() == (rgba[..., :3].max(axis=-1) > 0).sum() - stray.sum()
