"""Uploads: type from content, limits from the header before decoding, same pixels as sonorad's readers."""

import tracemalloc

import numpy as np
import pytest

from sonorad.imaging import read_image, read_mask
from sonorad.imaging.formats import format_from_bytes
from sonorad.serve.uploads import (
    UploadError,
    UploadLimits,
    check_upload,
    read_uploaded_image,
    read_uploaded_mask,
)

from .conftest import dicom_bytes, encode, png_bytes

LIMITS = UploadLimits()


def _same_as_reader(tmp_path, data: bytes, name: str):
    """The upload route and read_image on the same bytes written to a file agree exactly."""
    path = tmp_path / name
    path.write_bytes(data)
    expected = read_image(path)
    got = read_uploaded_image(data, LIMITS, filename=name)
    np.testing.assert_array_equal(got.pixels, expected.pixels)
    assert got.pixels.dtype == expected.pixels.dtype == np.float32
    assert got.spacing == expected.spacing
    assert got.meta["spacing_source"] == expected.meta["spacing_source"]
    assert got.path == name
    return got


@pytest.mark.parametrize("fmt, shape, dtype", [
    ("PNG", (40, 50), np.uint8), ("PNG", (40, 50, 3), np.uint8), ("PNG", (40, 50, 4), np.uint8),
    ("PNG", (40, 50), np.uint16), ("JPEG", (40, 50, 3), np.uint8), ("BMP", (40, 50, 3), np.uint8),
])
def test_pillow_formats_read_as_the_readers_do(tmp_path, fmt, shape, dtype):
    rng = np.random.default_rng(1)
    array = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)
    got = _same_as_reader(tmp_path, encode(array, fmt), f"x.{fmt.lower()}")
    assert got.shape == shape[:2]


def test_sixteen_bit_colour_png_keeps_all_bits(tmp_path):
    """Pillow would cut a 16-bit RGB PNG to 8 bits; the readers use ITK, and so does the upload route."""
    import SimpleITK as sitk

    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 65535, size=(20, 30, 3), dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(path))
    got = _same_as_reader(tmp_path, path.read_bytes(), "rgb16.png")
    assert got.pixels.max() > 255


def test_dicom_keeps_spacing_and_colour_rule(tmp_path):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, size=(30, 40, 3), dtype=np.uint8)
    data = dicom_bytes(rgb, "RGB", PixelSpacing=[0.1, 0.12])
    got = _same_as_reader(tmp_path, data, "case.dcm")
    assert got.spacing == (0.1, 0.12) and got.meta["format"] == "dicom"


def test_format_comes_from_content_not_name(tmp_path):
    png = png_bytes(np.zeros((8, 8), np.uint8))
    assert format_from_bytes(png) == "png"
    # A PNG called .dcm is read as the PNG it is.
    assert read_uploaded_image(png, LIMITS, filename="scan.dcm").meta["format"] == "png"
    # Text called .png is refused as not an image (415), naming what it starts with.
    with pytest.raises(UploadError) as err:
        check_upload(b"<html><script>alert(1)</script></html>", LIMITS)
    assert err.value.status == 415 and "b'<html><s'" in err.value.message
    # GIF and TIFF are images, but not accepted formats of the calculator.
    for data in (b"GIF89a" + bytes(40), b"II*\x00" + bytes(40)):
        with pytest.raises(UploadError) as err:
            check_upload(data, LIMITS)
        assert err.value.status == 415


def test_empty_and_truncated_files():
    with pytest.raises(UploadError, match="empty"):
        check_upload(b"", LIMITS)
    png = png_bytes(np.zeros((8, 8), np.uint8))
    with pytest.raises(UploadError, match="header is corrupt or truncated"):
        check_upload(png[:20], LIMITS)
    jpeg = encode(np.zeros((8, 8), np.uint8), "JPEG")
    with pytest.raises(UploadError, match="header is corrupt or truncated"):
        check_upload(jpeg[:12], LIMITS)
    noisy = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(UploadError) as err:  # header fine, pixel data cut: the reader's own message
        read_uploaded_image(noisy[: len(noisy) // 2], LIMITS, filename="cut.png")
    assert "'cut.png'" in err.value.message and "/proc/" not in err.value.message


def test_pixel_limit_from_the_header():
    png = png_bytes(np.zeros((100, 100), np.uint8))
    check_upload(png, UploadLimits(max_pixels=10000))
    with pytest.raises(UploadError) as err:
        check_upload(png, UploadLimits(max_pixels=9999))
    assert err.value.status == 413 and "100 x 100" in err.value.message and "not decoded" in err.value.message
    dcm = dicom_bytes(np.zeros((100, 100), np.uint8))
    with pytest.raises(UploadError, match="100 x 100"):
        check_upload(dcm, UploadLimits(max_pixels=9999))


def test_byte_limit():
    png = png_bytes(np.zeros((100, 100), np.uint8))
    with pytest.raises(UploadError) as err:
        check_upload(png, UploadLimits(max_upload_bytes=len(png) - 1))
    assert err.value.status == 413


def test_decompression_bomb_is_refused_without_decoding(bomb_png):
    """20000 x 20000 pixels (400 MB decoded) in a few hundred KB: refused, memory stays small."""
    assert len(bomb_png) < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(UploadError) as err:
            read_uploaded_image(bomb_png, LIMITS, filename="bomb.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.status == 413
    assert "20000 x 20000" in err.value.message
    assert peak < 20_000_000, peak  # the decoded image would be 400 MB


def test_mask_upload_uses_the_mask_rules(tmp_path):
    mask = np.zeros((40, 50), np.uint8)
    mask[10:20, 10:30] = 255
    mask[0, 0] = 75  # a stray grey level below half the maximum: not lesion (half-max rule)
    data = png_bytes(mask)
    (tmp_path / "m.png").write_bytes(data)
    got = read_uploaded_mask(data, (40, 50), LIMITS, filename="m.png")
    np.testing.assert_array_equal(got, read_mask(tmp_path / "m.png"))
    assert got.sum() == 200 and not got[0, 0]
    with pytest.raises(UploadError) as err:
        read_uploaded_mask(data, (41, 50), LIMITS)
    assert err.value.field == "mask" and "40 x 50" in err.value.message


def test_keep_path_writes_the_upload(tmp_path):
    data = png_bytes(np.full((8, 9), 7, np.uint8))
    got = read_uploaded_image(data, LIMITS, filename="a.png", keep_path=tmp_path / "image.upload")
    assert (tmp_path / "image.upload").read_bytes() == data
    assert got.pixels.shape == (8, 9)
