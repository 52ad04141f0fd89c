"""Pillow and SimpleITK readers, the colour rule, format detection and read errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sonorad.imaging import ImageReadError, UltrasoundImage, detect_format, read_image, rgb_to_gray, to_sitk


def pillow_gray(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb.astype(np.uint8)).convert("L"))


# ------------------------------------------------------------------------- colour rule


def test_bt601_known_values():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30]]], dtype=np.uint8)
    # 0.299*255 = 76.245, 0.587*255 = 149.685, 0.114*255 = 29.07; 0.299*10+0.587*20+0.114*30 = 18.15
    assert rgb_to_gray(rgb).tolist() == [[76, 150, 29, 255, 18]]


def test_gray_rule_equals_pillow_L_on_every_channel_combination_sampled():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(rgb_to_gray(rgb), pillow_gray(rgb))


def test_float_rgb_uses_exact_weights():
    rgb = np.array([[[1.0, 0.5, 0.25]]])
    assert rgb_to_gray(rgb)[0, 0] == pytest.approx(0.299 + 0.5 * 0.587 + 0.25 * 0.114)


def test_rgb_to_gray_rejects_gray_input():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        rgb_to_gray(np.zeros((4, 2)))


# ------------------------------------------------------------------------- Pillow formats


def test_png_8bit_gray_keeps_values(save_png):
    a = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = read_image(save_png("g.png", a))
    assert isinstance(img, UltrasoundImage)
    assert img.pixels.dtype == np.float32 and img.pixels.shape == (16, 16)
    np.testing.assert_array_equal(img.pixels, a)
    assert img.spacing == (1.0, 1.0)
    assert img.meta["format"] == "png" and img.meta["mode"] == "L" and img.meta["bit_depth"] == 8


def test_png_16bit_gray_is_not_rescaled(save_png):
    a = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    img = read_image(save_png("g16.png", a))
    np.testing.assert_array_equal(img.pixels, a)
    assert img.meta["bit_depth"] == 16


def test_png_16bit_rgb_keeps_16_bits(tmp_path):
    import SimpleITK as sitk

    a = np.array([[[3000, 4000, 5000], [65535, 0, 0]]], dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    sitk.WriteImage(sitk.GetImageFromArray(a, isVector=True), str(path))
    img = read_image(path)
    expected = [(3000 * 19595 + 4000 * 38470 + 5000 * 7471 + 32768) >> 16, (65535 * 19595 + 32768) >> 16]
    assert img.pixels[0].tolist() == expected  # [3701, 19595]: on the 16-bit scale
    assert img.meta["bit_depth"] == 16


def test_png_rgb_and_rgba_alpha_ignored(save_png):
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [200, 100, 50]]], dtype=np.uint8)
    rgba = np.dstack([rgb, np.array([[255, 0], [128, 0]], dtype=np.uint8)])
    img_rgb = read_image(save_png("c.png", rgb))
    img_rgba = read_image(save_png("ca.png", rgba))
    assert img_rgb.pixels.tolist() == [[76, 150], [29, 124]]  # 59.8 + 58.7 + 5.7 = 124.2
    np.testing.assert_array_equal(img_rgba.pixels, img_rgb.pixels)
    assert img_rgba.meta["mode"] == "RGBA"


def test_png_palette_with_transparency_is_expanded(save_png):
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 255, 0, 40, 40, 40] + [0] * (256 * 3 - 9))
    im.putdata([0, 1, 2])
    path = save_png("p.png", im, transparency=0)
    with Image.open(path) as check:
        assert check.mode == "P" and "transparency" in check.info
    img = read_image(path)
    # the transparent red pixel keeps its palette colour: alpha is ignored for images
    assert img.pixels.tolist() == [[76, 150, 40]]
    assert img.meta["mode"] == "P"


def test_png_la_and_1bit(save_png):
    la = np.dstack([np.array([[10, 200]], np.uint8), np.array([[0, 255]], np.uint8)])
    assert read_image(save_png("la.png", la)).pixels.tolist() == [[10, 200]]
    bits = np.array([[True, False]])
    img = read_image(save_png("b.png", Image.fromarray(bits)))
    assert img.pixels.tolist() == [[255, 0]] and img.meta["bit_depth"] == 1


def test_jpeg_matches_pillow_decoder(save_png):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    path = save_png("c.jpg", rgb, quality=95)
    img = read_image(path)
    with Image.open(path) as im:
        decoded = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(img.pixels, rgb_to_gray(decoded))
    assert img.meta["format"] == "jpeg"


def test_bmp_rgb(save_png):
    rgb = np.array([[[255, 0, 0], [10, 20, 30]]], dtype=np.uint8)
    assert read_image(save_png("c.bmp", rgb)).pixels.tolist() == [[76, 18]]


def test_tiff_16bit_float_and_pages(tmp_path, save_png):
    a16 = np.array([[0, 65535]], dtype=np.uint16)
    assert read_image(save_png("a.tif", a16)).pixels.tolist() == [[0, 65535]]
    af = np.array([[0.25, -1.5]], dtype=np.float32)
    assert read_image(save_png("f.tiff", af)).pixels.tolist() == [[0.25, -1.5]]
    pages = [Image.fromarray(np.full((2, 3), v, np.uint8)) for v in (10, 20, 30)]
    path = tmp_path / "cine.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    img = read_image(path, frame=2)
    assert img.pixels.tolist() == [[30] * 3] * 2 and img.meta["n_frames"] == 3
    with pytest.raises(ImageReadError, match=r"3 frames.*frame=0\.\.2"):
        read_image(path)
    with pytest.raises(ImageReadError, match=r"frame 3 is out of range.*0\.\.2"):
        read_image(path, frame=3)


def test_content_wins_over_extension(save_png, tmp_path):
    src = save_png("real.jpg", np.full((8, 8), 100, np.uint8))
    fake = tmp_path / "named.png"
    fake.write_bytes(src.read_bytes())
    assert detect_format(fake) == "jpeg"
    assert read_image(fake).pixels.shape == (8, 8)


def test_frame_from_cohort_table_float_and_nan(save_png):
    path = save_png("g.png", np.zeros((2, 2), np.uint8))
    assert read_image(path, frame=float("nan")).meta["frame"] == 0
    assert read_image(path, frame=0.0).meta["frame"] == 0
    with pytest.raises(TypeError, match="frame"):
        read_image(path, frame="first")


# ------------------------------------------------------------------------- SimpleITK formats


def _sitk_write(array, path, spacing):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))
    return path


@pytest.mark.parametrize("name", ["one.nii", "one.nii.gz", "one.nrrd", "one.nhdr"])
def test_one_slice_volume_is_read_as_2d_with_spacing(tmp_path, name):
    a = np.arange(12, dtype=np.int16).reshape(1, 3, 4)  # (z, y, x)
    path = _sitk_write(a, tmp_path / name, (0.1, 0.2, 3.0))  # ITK order (x, y, z)
    img = read_image(path)
    np.testing.assert_array_equal(img.pixels, a[0])
    assert img.spacing == pytest.approx((0.2, 0.1))  # (row, col)
    assert img.meta["format"] == ("nifti" if ".nii" in name else "nrrd")


def test_volume_needs_frame(tmp_path):
    a = np.stack([np.full((3, 4), v, np.uint8) for v in (5, 6)])
    path = _sitk_write(a, tmp_path / "vol.nii.gz", (0.5, 0.5, 1.0))
    with pytest.raises(ImageReadError, match=r"2 slices.*frame=0\.\.1"):
        read_image(path)
    assert read_image(path, frame=1).pixels.max() == 6
    with pytest.raises(ImageReadError, match=r"frame -1 is out of range"):
        read_image(path, frame=-1)


def test_2d_nrrd_rgb_vector(tmp_path):
    import SimpleITK as sitk

    a = np.array([[[255, 0, 0], [10, 20, 30]]], dtype=np.uint8)
    path = tmp_path / "c.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(a, isVector=True), str(path))
    assert read_image(path).pixels.tolist() == [[76, 18]]


def test_to_sitk_spacing_order():
    img = to_sitk(np.zeros((3, 5), bool), spacing=(0.2, 0.1))
    assert img.GetSize() == (5, 3) and img.GetSpacing() == pytest.approx((0.1, 0.2))


# ------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="file not found") as info:
        read_image(tmp_path / "nope.png")
    assert info.value.kind == "missing" and "nope.png" in str(info.value)


def test_corrupt_bytes_named_as_corrupt(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not an image at all")
    with pytest.raises(ImageReadError, match=r"bad\.png.*not a valid PNG"):
        read_image(bad)


def test_truncated_png(save_png, tmp_path):
    good = save_png("g.png", np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ImageReadError, match=r"cut\.png: cannot decode the PNG file, it is corrupt or truncated"):
        read_image(cut)


def test_corrupt_nifti(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ImageReadError, match="NIfTI"):
        read_image(bad)


def test_empty_file_and_folder(tmp_path):
    empty = tmp_path / "e.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(empty)
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_unknown_extension_lists_supported_formats(tmp_path):
    odd = tmp_path / "scan.xyz"
    odd.write_bytes(b"some bytes here")
    with pytest.raises(ImageReadError, match=r"unsupported image format '\.xyz'.*PNG.*DICOM.*NIfTI.*NRRD") as info:
        read_image(odd)
    assert info.value.kind == "unsupported"


def test_ultrasound_image_validates():
    with pytest.raises(ValueError, match="2D"):
        UltrasoundImage(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="spacing"):
        UltrasoundImage(np.zeros((2, 2)), spacing=(0.0, 1.0))


def test_read_error_survives_pickling(tmp_path):
    import pickle

    with pytest.raises(ImageReadError) as info:
        read_image(tmp_path / "nope.png")
    again = pickle.loads(pickle.dumps(info.value))
    assert (again.path, again.kind, str(again)) == (info.value.path, "missing", str(info.value))


def test_probe_bit_depth_reads_headers_only(save_png, tmp_path):
    from sonorad.imaging import probe_bit_depth

    assert probe_bit_depth(save_png("g8.png", np.zeros((4, 4), np.uint8))) == 8
    assert probe_bit_depth(save_png("g16.png", np.zeros((4, 4), np.uint16))) == 16
    assert probe_bit_depth(save_png("rgb.png", np.zeros((4, 4, 3), np.uint8))) == 8
    (tmp_path / "notes.txt").write_text("x")
    assert probe_bit_depth(tmp_path / "notes.txt") is None


def test_symlink_loop_and_dangling_link_are_named(tmp_path):
    import os

    from sonorad.imaging.readers import symlink_loop

    loop, dangling = tmp_path / "loop.png", tmp_path / "dangling.png"
    os.symlink(loop, loop)
    os.symlink(tmp_path / "gone.png", dangling)
    assert "loops back on itself" in symlink_loop(loop)
    assert "dangling" in symlink_loop(dangling)
    assert symlink_loop(tmp_path) is None
    with pytest.raises(ImageReadError, match="loops back on itself"):
        read_image(loop)
