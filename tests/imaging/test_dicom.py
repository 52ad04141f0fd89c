"""DICOM ultrasound reading: colour spaces, MONOCHROME1, cine frames, spacing sources, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sonorad.imaging import ImageReadError, read_image, rgb_to_gray

RGB = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]] * 2, dtype=np.uint8)
GRAY_OF_RGB = [76, 150, 29, 18]  # BT.601 luma of the four colours


def _region(dx_cm, dy_cm, units=3, spatial_format=1, box=(0, 0, 3, 1)):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.RegionSpatialFormat = spatial_format
    item.RegionDataType = 1
    item.RegionLocationMinX0, item.RegionLocationMinY0, item.RegionLocationMaxX1, item.RegionLocationMaxY1 = box
    item.PhysicalUnitsXDirection = units
    item.PhysicalUnitsYDirection = units
    item.PhysicalDeltaX = dx_cm
    item.PhysicalDeltaY = dy_cm
    return item


def test_monochrome2_8bit(tmp_path, write_dicom):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    img = read_image(write_dicom(tmp_path / "m2.dcm", a))
    np.testing.assert_array_equal(img.pixels, a)
    assert img.meta["format"] == "dicom" and img.meta["modality"] == "US" and img.meta["mode"] == "MONOCHROME2"
    assert img.spacing == (1.0, 1.0) and img.meta["spacing_source"] == "none"


def test_rgb(tmp_path, write_dicom):
    img = read_image(write_dicom(tmp_path / "rgb.dcm", RGB, "RGB"))
    assert img.pixels[0].tolist() == GRAY_OF_RGB


def test_ybr_full_native_is_converted_to_rgb_then_gray(tmp_path, write_dicom):
    from pydicom.pixels import convert_color_space

    ybr = convert_color_space(RGB, "RGB", "YBR_FULL")
    img = read_image(write_dicom(tmp_path / "ybr.dcm", ybr, "YBR_FULL"))
    assert img.meta["mode"] == "YBR_FULL" and img.meta["decoded_as"] == "RGB"
    # 8-bit round trip RGB -> YCbCr -> RGB loses at most a couple of levels
    np.testing.assert_allclose(img.pixels[0], GRAY_OF_RGB, atol=2)


def test_ybr_full_422_jpeg_baseline(tmp_path, write_dicom):
    from pydicom.uid import JPEGBaseline8Bit

    rng = np.random.default_rng(0)
    rgb = np.repeat(np.repeat(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), 4, 0), 4, 1)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95, subsampling=1)  # 4:2:2, stored as YCbCr
    jpeg = buf.getvalue()
    path = write_dicom(tmp_path / "jpeg422.dcm", rgb, "YBR_FULL_422", transfer_syntax=JPEGBaseline8Bit,
                       encapsulated=[jpeg])
    img = read_image(path)
    expected = rgb_to_gray(np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")))
    assert img.meta["mode"] == "YBR_FULL_422"
    np.testing.assert_allclose(img.pixels, expected, atol=2)
    assert np.abs(img.pixels - rgb_to_gray(rgb)).mean() < 4  # close to the original colours


def test_monochrome1_is_inverted_on_its_own_scale(tmp_path, write_dicom):
    a8 = np.array([[0, 200, 255]], dtype=np.uint8)
    assert read_image(write_dicom(tmp_path / "m1.dcm", a8, "MONOCHROME1")).pixels.tolist() == [[255, 55, 0]]
    a12 = np.array([[0, 100, 4095]], dtype=np.uint16)
    img = read_image(write_dicom(tmp_path / "m1_12.dcm", a12, "MONOCHROME1", bits_stored=12))
    assert img.pixels.tolist() == [[4095, 3995, 0]]


def test_16bit_monochrome_with_rescale(tmp_path, write_dicom):
    a = np.array([[0, 1000, 60000]], dtype=np.uint16)
    path = write_dicom(tmp_path / "r.dcm", a, RescaleSlope=2, RescaleIntercept=-10)
    assert read_image(path).pixels.tolist() == [[-10, 1990, 119990]]


def test_multiframe_needs_a_valid_frame(tmp_path, write_dicom):
    cine = np.stack([np.full((2, 3), 10 * i, np.uint8) for i in range(3)])
    path = write_dicom(tmp_path / "cine.dcm", cine, frames=3)
    img = read_image(path, frame=2)
    assert img.pixels.tolist() == [[20] * 3] * 2 and img.meta["n_frames"] == 3 and img.meta["frame"] == 2
    with pytest.raises(ImageReadError, match=r"3 frames.*frame=0\.\.2"):
        read_image(path)
    with pytest.raises(ImageReadError, match=r"frame 5 is out of range.*valid frames are 0\.\.2") as info:
        read_image(path, frame=5)
    assert info.value.kind == "frame"


def test_multiframe_rgb_frame(tmp_path, write_dicom):
    cine = np.stack([RGB, RGB[:, ::-1]])
    img = read_image(write_dicom(tmp_path / "cine_rgb.dcm", cine, "RGB", frames=2), frame=1)
    assert img.pixels[0].tolist() == GRAY_OF_RGB[::-1]


def test_single_frame_rejects_frame_1(tmp_path, write_dicom):
    path = write_dicom(tmp_path / "one.dcm", np.zeros((2, 2), np.uint8))
    assert read_image(path, frame=0).shape == (2, 2)
    with pytest.raises(ImageReadError, match=r"valid frames are 0\.\.0"):
        read_image(path, frame=1)


def test_spacing_from_ultrasound_regions_in_cm(tmp_path, write_dicom):
    from pydicom.sequence import Sequence

    doppler = _region(0.5, 0.5, units=4, spatial_format=3, box=(0, 0, 100, 100))  # seconds: skipped
    tissue = _region(0.01, 0.02)  # cm per pixel: 0.1 mm per column, 0.2 mm per row
    path = write_dicom(tmp_path / "reg.dcm", np.zeros((2, 4), np.uint8),
                       SequenceOfUltrasoundRegions=Sequence([doppler, tissue]), PixelSpacing=[9, 9])
    img = read_image(path)
    assert img.spacing == pytest.approx((0.2, 0.1))
    assert img.meta["spacing_source"] == "ultrasound_region"


def test_spacing_prefers_largest_2d_region(tmp_path, write_dicom):
    from pydicom.sequence import Sequence

    small = _region(0.03, 0.03, box=(0, 0, 10, 10))
    large = _region(0.005, 0.004, box=(0, 0, 300, 200))
    mmode = _region(0.001, 0.001, spatial_format=2, box=(0, 0, 500, 500))
    path = write_dicom(tmp_path / "reg2.dcm", np.zeros((2, 2), np.uint8),
                       SequenceOfUltrasoundRegions=Sequence([small, mmode, large]))
    assert read_image(path).spacing == pytest.approx((0.04, 0.05))


def test_spacing_falls_back_to_pixel_spacing_then_imager(tmp_path, write_dicom):
    a = np.zeros((2, 2), np.uint8)
    img = read_image(write_dicom(tmp_path / "ps.dcm", a, PixelSpacing=[0.3, 0.25]))
    assert img.spacing == (0.3, 0.25) and img.meta["spacing_source"] == "PixelSpacing"
    img = read_image(write_dicom(tmp_path / "ips.dcm", a, ImagerPixelSpacing=[0.5, 0.4]))
    assert img.spacing == (0.5, 0.4) and img.meta["spacing_source"] == "ImagerPixelSpacing"


def test_dicom_without_extension_and_without_preamble(tmp_path, write_dicom):
    full = write_dicom(tmp_path / "IM0001", np.full((2, 2), 7, np.uint8))
    assert read_image(full).pixels.tolist() == [[7, 7], [7, 7]]
    bare = tmp_path / "IM0002"
    bare.write_bytes(full.read_bytes()[132:])  # no 128-byte preamble, no "DICM" signature
    assert read_image(bare).pixels.tolist() == [[7, 7], [7, 7]]


def test_corrupt_dicom(tmp_path, write_dicom):
    good = write_dicom(tmp_path / "g.dcm", np.arange(64, dtype=np.uint8).reshape(8, 8))
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(good.read_bytes()[:-40])  # pixel data shorter than Rows x Columns
    with pytest.raises(ImageReadError, match=r"cut\.dcm: cannot decode the DICOM pixel data"):
        read_image(cut)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 10)
    with pytest.raises(ImageReadError, match=r"junk\.dcm: not a valid DICOM file"):
        read_image(junk)


def test_dicom_without_pixel_data(tmp_path, write_dicom):
    path = write_dicom(tmp_path / "np.dcm", np.zeros((2, 2), np.uint8))
    import pydicom

    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(ImageReadError, match="no pixel data"):
        read_image(path)
