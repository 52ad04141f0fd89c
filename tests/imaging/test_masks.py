"""Mask reading: binary, stray grey levels, JPEG artefacts, alpha as coverage, label maps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sonorad.imaging import ImageReadError, binarize_mask, read_mask


def square(n=20, lo=5, hi=15, value=255, dtype=np.uint8):
    a = np.zeros((n, n), dtype)
    a[lo:hi, lo:hi] = value
    return a


def test_binary_png_nonzero_is_lesion(save_png):
    m = read_mask(save_png("m.png", square()))
    assert m.dtype == bool and m.sum() == 100 and m[5:15, 5:15].all()


def test_0_1_mask_and_16bit_mask(save_png):
    assert read_mask(save_png("m01.png", square(value=1))).sum() == 100
    assert read_mask(save_png("m16.png", square(value=65535, dtype=np.uint16))).sum() == 100


def test_stray_grey_level_is_thresholded_at_half_max(save_png):
    a = square()
    a[0, 0] = 75  # a stray level among 0/255
    a[5, 5] = 200  # an edge pixel above half the maximum stays lesion
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1 pixel out of 101: no label-map warning
        m = read_mask(save_png("stray.png", a))
    assert not m[0, 0] and m[5, 5] and m.sum() == 100


def test_jpeg_mask_artefacts_are_removed(save_png):
    path = save_png("m.jpg", square(32, 5, 22), quality=75)
    from PIL import Image

    with Image.open(path) as im:
        raw = np.asarray(im)
    assert len(np.unique(raw)) > 2  # the JPEG really has artefacts
    m = read_mask(path)
    np.testing.assert_array_equal(m, square(32, 5, 22) > 0)


def test_binarize_rules_on_arrays():
    assert binarize_mask(np.array([[0, 75] + [255] * 10])).tolist() == [[False, False] + [True] * 10]
    assert binarize_mask(np.array([[0.0, 0.4, 1.0, np.nan]])).tolist() == [[False, False, True, False]]
    assert binarize_mask(np.array([[0, 3, 3]])).tolist() == [[False, True, True]]


def test_label_map_selects_label_and_names_present_ones(save_png):
    a = np.zeros((10, 10), np.uint8)
    a[1:4, 1:4] = 1
    a[6:9, 6:9] = 2
    path = save_png("labels.png", a)
    assert read_mask(path, label=2).sum() == 9 and read_mask(path, label=2)[7, 7]
    with pytest.raises(ImageReadError, match=r"label 3 not found.*values present: 0, 1, 2") as info:
        read_mask(path, label=3)
    assert info.value.kind == "label"
    with pytest.raises(TypeError, match="label"):
        read_mask(path, label=1.5)


def test_label_map_without_label_is_an_error_naming_the_labels():
    a = np.zeros((10, 10))
    a[1:4, 1:4] = 1
    a[6:9, 6:9] = 3
    with pytest.raises(ImageReadError, match=r"several labels \(1 \(9 px\), 3 \(9 px\)\).*mask_label") as info:
        binarize_mask(a)
    assert info.value.kind == "label"
    assert binarize_mask(a, label=1).sum() == 9


def test_grey_level_regions_are_a_label_map_but_a_thin_grey_rim_is_not():
    a = np.zeros((20, 20))
    a[2:8, 2:8] = 100  # two regions painted with two grey levels: the darker would be dropped
    a[10:18, 10:18] = 255
    with pytest.raises(ImageReadError, match="label map"):
        binarize_mask(a)
    b = np.zeros((20, 20))
    b[4:16, 4:16] = 255
    b[3, 4:16] = 100  # an anti-aliased rim: 12 of 156 pixels, below the 10% that signals a label map
    assert binarize_mask(b).sum() == 144


def test_rgba_mask_opaque_alpha_is_ignored(save_png):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[5:15, 5:15, :3] = 255
    assert read_mask(save_png("opaque.png", rgba)).sum() == 100


def test_rgba_mask_shape_in_alpha_only(save_png):
    rgba = np.full((20, 20, 4), 255, np.uint8)  # white everywhere, lesion drawn in alpha
    rgba[..., 3] = square()
    assert read_mask(save_png("alpha.png", rgba)).sum() == 100


def test_rgba_mask_faint_alpha_pixels_are_dropped(save_png):
    # The BrEaST layout: background (0,0,0,0), lesion (255,255,255,255), two stray pixels with alpha 75.
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[5:15, 5:15] = 255
    rgba[0, 0:2] = (255, 255, 255, 75)
    m = read_mask(save_png("stray_alpha.png", rgba))
    assert m.sum() == 100 and not m[0, 0:2].any()


def test_la_mask_alpha_is_coverage(save_png):
    la = np.dstack([np.full((20, 20), 255, np.uint8), square()])
    assert read_mask(save_png("la.png", la)).sum() == 100


def test_colour_mask_red_lesion(save_png):
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[5:15, 5:15, 0] = 255  # red outline tools: gray 76, non-zero
    assert read_mask(save_png("red.png", rgb)).sum() == 100


def test_nifti_float_mask(tmp_path):
    import SimpleITK as sitk

    a = square(dtype=np.float32, value=1.0)[None]
    path = tmp_path / "m.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(a), str(path))
    assert read_mask(path).sum() == 100


def test_missing_mask_file(tmp_path):
    with pytest.raises(ImageReadError, match="file not found"):
        read_mask(tmp_path / "none.png")
