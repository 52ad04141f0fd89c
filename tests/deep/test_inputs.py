"""Crops and tensors fed to the CNNs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.deep.inputs import collect_crops, intensity_scale, normalize, resize_gray, square_pad
from sonorad.errors import CaseError, ConfigError


def test_intensity_scale():
    assert intensity_scale(np.array([0.0, 0.7])) == 1.0
    assert intensity_scale(np.array([0.0, 200.0])) == 255.0
    assert intensity_scale(np.array([0.0, 4095.0])) == 4095.0


def test_square_pad_centres():
    out = square_pad(np.ones((2, 4), np.float32))
    assert out.shape == (4, 4)
    np.testing.assert_array_equal(out[:, 0], [0, 1, 1, 0])


def test_roi_crop_margin_square_and_background():
    pytest.importorskip("sonorad.imaging.roi")
    from sonorad.deep.inputs import roi_crop, roi_crop_with_mask

    img = np.full((40, 60), 100.0, np.float32)
    mask = np.zeros((40, 60), bool)
    mask[10:20, 20:40] = True  # 10 x 20 box
    img[mask] = 200.0
    crop, cmask = roi_crop_with_mask(img, mask, margin=0.1)
    # margin 0.1 -> 12 x 24, squared -> 24 x 24
    assert crop.shape == cmask.shape == (24, 24)
    assert crop.max() == pytest.approx(200 / 255)
    assert cmask.sum() == mask.sum()
    blank = roi_crop(img, mask, margin=0.1, mask_background=True)
    assert np.all(blank[~cmask] == 0) and np.all(blank[cmask] == pytest.approx(200 / 255))


def test_resize_and_normalise_known_values():
    crops = [np.full((10, 10), 0.5, np.float32), np.zeros((7, 7), np.float32)]
    gray = resize_gray(crops, 16)
    assert gray.shape == (2, 1, 16, 16)
    x = normalize(gray, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert x.shape == (2, 3, 16, 16)
    assert float(x[0, 0, 3, 3]) == pytest.approx((0.5 - 0.485) / 0.229, abs=1e-5)
    assert float(x[1, 2, 0, 0]) == pytest.approx(-0.406 / 0.225, abs=1e-5)


def test_collect_crops_accepts_arrays_and_names_bad_input():
    crops = collect_crops(np.random.default_rng(0).uniform(0, 255, (3, 8, 6)))
    assert len(crops) == 3 and crops[0].shape == (8, 8) and crops[0].max() <= 1.0
    with pytest.raises(ConfigError, match="lacks column"):
        collect_crops(pd.DataFrame({"image": ["a.png"]}))
    with pytest.raises(ConfigError, match="cohort DataFrame or crops"):
        collect_crops(np.zeros((3, 4)))
    with pytest.raises(CaseError, match="crop 1 has shape"):
        collect_crops([np.zeros((4, 4)), np.zeros(4)])
