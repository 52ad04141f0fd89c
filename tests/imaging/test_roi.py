"""load_roi checks and errors, multi-lesion masks, bounding boxes and crops."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sonorad.errors import CaseError
from sonorad.imaging import UltrasoundImage, bounding_box, crop_to_roi, load_roi


@pytest.fixture
def case(save_png):
    """An 8-bit image 30x40 with two lesion masks."""
    image = (np.arange(30 * 40) % 251).astype(np.uint8).reshape(30, 40)
    m1 = np.zeros((30, 40), np.uint8)
    m1[2:6, 3:9] = 255
    m2 = np.zeros((30, 40), np.uint8)
    m2[20:25, 30:35] = 255
    return image, save_png("img.png", image), save_png("m1.png", m1), save_png("m2.png", m2)


def test_load_roi_single(case):
    image, img_path, m1, _ = case
    img, mask = load_roi(img_path, m1, case_id="c1")
    assert isinstance(img, UltrasoundImage)
    np.testing.assert_array_equal(img.pixels, image)
    assert mask.dtype == bool and mask.shape == (30, 40) and mask.sum() == 24


def test_load_roi_union_and_select(case):
    _, img_path, m1, m2 = case
    assert load_roi(img_path, [m1, m2], case_id="c1")[1].sum() == 24 + 25
    assert load_roi(img_path, f"{m1};{m2}", case_id="c1")[1].sum() == 49  # the cases.csv form
    assert load_roi(img_path, [m1, m2], case_id="c1", lesions=1)[1].sum() == 25
    assert load_roi(img_path, [m1, m2], case_id="c1", lesions=-1)[1][22, 32]
    with pytest.raises(CaseError, match=r"\[case c1\] lesions=2 but the case has 2 mask") as info:
        load_roi(img_path, [m1, m2], case_id="c1", lesions=2)
    assert info.value.case_id == "c1"
    with pytest.raises(ValueError, match="lesions"):
        load_roi(img_path, [m1], case_id="c1", lesions="first")


def test_load_roi_spacing_override(case):
    _, img_path, m1, _ = case
    img, _ = load_roi(img_path, m1, case_id="c1", spacing=(0.078, 0.078))
    assert img.spacing == (0.078, 0.078) and img.meta["spacing_source"] == "given"
    with pytest.raises(CaseError, match="invalid pixel spacing"):
        load_roi(img_path, m1, case_id="c1", spacing=(0, 1))


def test_missing_image_and_mask(case, tmp_path):
    _, img_path, m1, _ = case
    with pytest.raises(CaseError, match=r"\[case c7\] image .*nope\.png: file not found.*Fix: check the path"):
        load_roi(tmp_path / "nope.png", m1, case_id="c7")
    with pytest.raises(CaseError, match=r"\[case c7\] mask .*gone\.png: file not found"):
        load_roi(img_path, tmp_path / "gone.png", case_id="c7")
    with pytest.raises(CaseError, match=r"mask 2 of 2 .*gone\.png: file not found"):
        load_roi(img_path, [m1, tmp_path / "gone.png"], case_id="c7")


def test_corrupt_files(case, tmp_path):
    _, img_path, m1, _ = case
    bad = tmp_path / "bad.png"
    bad.write_bytes(img_path.read_bytes()[:60])
    with pytest.raises(CaseError, match=r"\[case c2\] image .*bad\.png: cannot decode the PNG file"):
        load_roi(bad, m1, case_id="c2")
    with pytest.raises(CaseError, match=r"\[case c2\] mask .*bad\.png: cannot decode"):
        load_roi(img_path, bad, case_id="c2")


def test_size_mismatch_gives_both_sizes(case, save_png):
    _, img_path, _, _ = case
    small = save_png("small.png", np.full((10, 12), 255, np.uint8))
    with pytest.raises(CaseError, match=r"size mismatch: image .* is 30x40 \(rows x cols\) but mask .* is 10x12"):
        load_roi(img_path, small, case_id="c3")
    transposed = save_png("t.png", np.full((40, 30), 255, np.uint8))
    with pytest.raises(CaseError, match="transposed"):
        load_roi(img_path, transposed, case_id="c3")


def test_empty_mask_and_one_pixel_roi(case, save_png):
    _, img_path, m1, _ = case
    empty = save_png("empty.png", np.zeros((30, 40), np.uint8))
    with pytest.raises(CaseError, match=r"\[case c4\] mask .*empty\.png is empty") as info:
        load_roi(img_path, empty, case_id="c4")
    assert "draw the lesion" in str(info.value)
    with pytest.raises(CaseError, match=r"mask 2 of 2 .*empty\.png is empty"):
        load_roi(img_path, [m1, empty], case_id="c4")
    one = np.zeros((30, 40), np.uint8)
    one[5, 5] = 255
    with pytest.raises(CaseError, match=r"ROI has only 1 pixel.*at least 2"):
        load_roi(img_path, save_png("one.png", one), case_id="c4")


def test_label_not_found(case, save_png):
    _, img_path, _, _ = case
    labels = np.zeros((30, 40), np.uint8)
    labels[1:5, 1:5] = 1
    labels[10:15, 10:15] = 2
    path = save_png("labels.png", labels)
    assert load_roi(img_path, path, case_id="c5", label=2)[1].sum() == 25
    with pytest.raises(CaseError, match=r"\[case c5\] mask .*label 4 not found.*values present: 0, 1, 2"):
        load_roi(img_path, path, case_id="c5", label=4)


def test_dicom_frame_out_of_range_and_mask_volume(tmp_path, write_dicom):
    import SimpleITK as sitk

    cine = np.stack([np.full((6, 6), 10 * i, np.uint8) for i in range(3)])
    img_path = write_dicom(tmp_path / "cine.dcm", cine, frames=3)
    masks = np.zeros((3, 6, 6), np.uint8)
    masks[1, 1:3, 1:3] = 1
    masks[2, 2:5, 2:5] = 1
    mask_path = tmp_path / "masks.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(masks), str(mask_path))
    img, mask = load_roi(img_path, mask_path, case_id="c6", frame=2)  # the mask volume follows the frame
    assert img.pixels.max() == 20 and mask.sum() == 9
    with pytest.raises(CaseError, match=r"\[case c6\] image .*frame 3 is out of range.*0\.\.2"):
        load_roi(img_path, mask_path, case_id="c6", frame=3)
    with pytest.raises(CaseError, match=r"3 frames.*frame=0\.\.2"):
        load_roi(img_path, mask_path, case_id="c6")


# ------------------------------------------------------------------------- boxes and crops


def test_bounding_box_known_answers():
    m = np.zeros((20, 20), bool)
    m[5:15, 8:12] = True  # 10 x 4
    assert bounding_box(m, margin=0, square=False) == (5, 15, 8, 12)
    assert bounding_box(m, margin=0.1, square=False) == (4, 16, 8, 12)  # 1 row each side, round(0.4)=0 cols
    assert bounding_box(m, margin=0.1, square=True) == (4, 16, 4, 16)
    assert bounding_box(m, margin=0.5, square=True) == (0, 20, 0, 20)  # 20 x 8 -> 20 x 20
    odd = np.zeros((10, 10), bool)
    odd[2:5, 2:4] = True  # 3 x 2 -> 3 x 3, the extra column after the box
    assert bounding_box(odd, margin=0, square=True) == (2, 5, 2, 5)


def test_bounding_box_errors():
    with pytest.raises(ValueError, match="empty"):
        bounding_box(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="margin"):
        bounding_box(np.ones((4, 4), bool), margin=-0.1)
    with pytest.raises(ValueError, match="2D"):
        bounding_box(np.ones((4, 4, 1), bool))


def test_crop_inside_image_is_a_plain_slice():
    pixels = np.arange(400, dtype=np.float32).reshape(20, 20)
    m = np.zeros((20, 20), bool)
    m[5:15, 8:12] = True
    crop, crop_mask = crop_to_roi(pixels, m, margin=0.1, square=True)
    np.testing.assert_array_equal(crop, pixels[4:16, 4:16])
    np.testing.assert_array_equal(crop_mask, m[4:16, 4:16])
    assert crop.dtype == np.float32 and crop_mask.dtype == bool


def test_crop_pads_with_zeros_outside_the_image():
    pixels = np.full((10, 10), 7.0, np.float32)
    m = np.zeros((10, 10), bool)
    m[0:4, 0:2] = True  # at the corner: the square leaves the image on the left
    crop, crop_mask = crop_to_roi(pixels, m, margin=0.25, square=True)
    # rows 0..4 padded by 1 -> -1..5; cols 0..2 padded by 0.5 -> 1 -> -1..3, squared to 6 wide -> -2..4
    assert bounding_box(m, margin=0.25) == (-1, 5, -2, 4)
    assert crop.shape == (6, 6)
    assert (crop[0] == 0).all() and (crop[:, :2] == 0).all() and (crop[1:, 2:] == 7).all()
    assert crop_mask.sum() == m.sum() and crop_mask[1:5, 2:4].all()


def test_crop_rgb_and_image_object():
    rgb = np.ones((10, 10, 3), np.uint8)
    m = np.zeros((10, 10), bool)
    m[4:6, 4:6] = True
    crop, _ = crop_to_roi(rgb, m, margin=0)
    assert crop.shape == (2, 2, 3)
    crop, _ = crop_to_roi(UltrasoundImage(np.ones((10, 10))), m, margin=0)
    assert crop.shape == (2, 2)
    with pytest.raises(ValueError, match="share"):
        crop_to_roi(np.ones((9, 10)), m)


def test_disjoint_regions_warn_by_case_and_policies_choose(case):
    from sonorad.errors import CaseWarning
    from sonorad.imaging import load_lesion_rois

    _, img_path, m1, m2 = case
    with pytest.warns(CaseWarning, match=r"case c1: .*2 disjoint regions \(24, 25 pixels\).*own row in cases.csv"):
        assert load_roi(img_path, [m1, m2], case_id="c1")[1].sum() == 49
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_roi(img_path, [m1, m2], case_id="c1", lesions="union")[1].sum() == 49
    with pytest.warns(CaseWarning, match="keeps the largest of 2"):
        assert load_roi(img_path, [m1, m2], case_id="c1", lesions="largest")[1].sum() == 25
    rois = load_lesion_rois(img_path, f"{m1};{m2}", case_id="c1")
    assert [(cid, int(m.sum())) for cid, _, m in rois] == [("c1-lesion1", 24), ("c1-lesion2", 25)]
    assert [cid for cid, _, _ in load_lesion_rois(img_path, m1, case_id="c1")] == ["c1"]


def test_whole_image_mask_is_called_so(case, save_png):
    _, img_path, _, _ = case
    full = save_png("full.png", np.full((30, 40), 255, np.uint8))
    with pytest.raises(CaseError, match=r"\[case c1\] mask .* covers the whole image.*inverted") as info:
        load_roi(img_path, full, case_id="c1")
    assert "invert" in info.value.problem.fix
