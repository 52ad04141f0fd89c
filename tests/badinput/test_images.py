"""Hostile image files: DICOM colour models sonorad must not guess, unusable pixel values.

Each file is a few pixels, written into ``tmp_path`` with pydicom or Pillow; the DICOM builder is
the one of the imaging tests (``tests/imaging/conftest.py``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sonorad.errors import CaseError
from sonorad.imaging import ImageReadError, load_roi, read_image


def _imaging_builders():
    spec = importlib.util.spec_from_file_location(
        "imaging_builders", Path(__file__).parents[1] / "imaging" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


write_dicom = _imaging_builders()._write_dicom


def _rgb_pixels():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)


@pytest.mark.parametrize("model", ["HSV", "ARGB", "CMYK"])
def test_dicom_in_a_colour_model_sonorad_does_not_convert_is_refused(tmp_path, model):
    path = write_dicom(tmp_path / "hsv.dcm", _rgb_pixels(), model)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert info.value.path == str(path) and f"photometric interpretation {model!r}" in info.value.message
    assert "MONOCHROME2 or RGB" in info.value.fix


def test_dicom_hsv_names_the_case(tmp_path):
    image = write_dicom(tmp_path / "hsv.dcm", _rgb_pixels(), "HSV")
    mask = np.zeros((8, 10), np.uint8)
    mask[2:6, 3:7] = 1
    mask_path = write_dicom(tmp_path / "mask.dcm", mask)
    with pytest.raises(CaseError, match=r"\[case h1\] image .*hsv.dcm: .*'HSV'"):
        load_roi(image, mask_path, case_id="h1")


def test_palette_colour_dicom_without_its_palette_gets_a_specific_fix(tmp_path):
    pixels = np.arange(80, dtype=np.uint8).reshape(8, 10)
    path = write_dicom(tmp_path / "pal.dcm", pixels, "PALETTE COLOR")
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert "PALETTE COLOR" in info.value.message and "no palette" in info.value.message
    assert "Palette Color Lookup Table" in info.value.fix


def test_palette_colour_dicom_with_its_palette_is_expanded(tmp_path):
    pixels = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    lut = np.zeros(256, np.uint16)
    lut[1] = 65535
    path = write_dicom(tmp_path / "pal.dcm", pixels, "PALETTE COLOR",
                       RedPaletteColorLookupTableDescriptor=[256, 0, 16],
                       GreenPaletteColorLookupTableDescriptor=[256, 0, 16],
                       BluePaletteColorLookupTableDescriptor=[256, 0, 16],
                       RedPaletteColorLookupTableData=lut.tobytes(),
                       GreenPaletteColorLookupTableData=lut.tobytes(),
                       BluePaletteColorLookupTableData=lut.tobytes())
    gray = read_image(path).pixels
    assert gray[0, 0] == 0 and gray[0, 1] > 0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_pixels_in_a_float_tiff_are_counted(tmp_path, bad):
    from PIL import Image

    pixels = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    pixels[1, 2] = pixels[3, 4] = bad
    path = tmp_path / "float.tif"
    Image.fromarray(pixels, mode="F").save(path)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert "the image holds 2 non-finite pixels" in info.value.message and info.value.path == str(path)
    assert "export it again without NaN/inf" in info.value.fix


def test_finite_float_tiff_still_reads(tmp_path):
    from PIL import Image

    pixels = np.linspace(-1, 1, 48, dtype=np.float32).reshape(6, 8)
    path = tmp_path / "float.tif"
    Image.fromarray(pixels, mode="F").save(path)
    assert np.allclose(read_image(path).pixels, pixels)
