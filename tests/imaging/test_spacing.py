"""The pixel-spacing rule (resample / pixels / not chosen) and the header-only spacing reads."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.imaging import UltrasoundImage
from sonorad.imaging.spacing import (
    SpacingRule,
    file_spacing,
    has_spacing,
    header_info,
    median_spacing,
    pyradiomics_params,
    radiomics_spacing,
    rule_of,
    with_rule,
)

PARAMS = {"setting": {"binWidth": 5, "force2D": False}, "imageType": {"Original": {}}}


def _image(spacing=(0.2, 0.3), source="given"):
    return UltrasoundImage(np.zeros((4, 4), np.float32), spacing, None, {"spacing_source": source, "format": "png"})


def test_rule_checks_its_values():
    assert SpacingRule("resample", 0.1).spacing_mm == 0.1
    for bad in [("resample", None), ("resample", 0), ("resample", -1.0), ("resample", True), ("mm", None),
                ("pixels", 0.1)]:
        with pytest.raises(ValueError):
            SpacingRule(*bad)


def test_spacing_given_to_pyradiomics_under_each_rule():
    image = _image()
    assert radiomics_spacing(SpacingRule(), image) == (0.2, 0.3)
    assert radiomics_spacing(SpacingRule("pixels"), image) == (1.0, 1.0)
    assert radiomics_spacing(SpacingRule("resample", 0.1), image) == (0.2, 0.3)
    unknown = _image((1.0, 1.0), "none")
    assert not has_spacing(unknown) and has_spacing(image)
    assert radiomics_spacing(SpacingRule(), unknown) == (1.0, 1.0)
    message = radiomics_spacing(SpacingRule("resample", 0.1), unknown)
    assert isinstance(message, str) and "PNG" in message and "no pixel spacing" in message and "0.1" in message


def test_rule_travels_with_the_parameters():
    resample = with_rule(PARAMS, SpacingRule("resample", 0.1))
    assert resample["setting"]["resampledPixelSpacing"] == [0.1, 0.1]
    assert resample["setting"]["interpolator"] == "sitkBSpline"
    assert rule_of(resample) == SpacingRule("resample", 0.1)
    assert "sonorad" not in pyradiomics_params(resample)
    # a one-slice volume (force2D) keeps its slice axis: 0
    forced = with_rule({"setting": {"force2D": True}}, SpacingRule("resample", 0.25))
    assert forced["setting"]["resampledPixelSpacing"] == [0.25, 0.25, 0.0]
    pixels = with_rule(PARAMS, SpacingRule("pixels"))
    assert "resampledPixelSpacing" not in pixels["setting"] and rule_of(pixels) == SpacingRule("pixels")
    # not chosen: the parameters as they were (the cache keys of earlier runs stay valid)
    assert with_rule(PARAMS, SpacingRule()) == PARAMS and rule_of(PARAMS) == SpacingRule()


def test_a_parameter_file_that_contradicts_the_rule_is_refused():
    own = {"setting": {"resampledPixelSpacing": [0.2, 0.2]}}
    with pytest.raises(ValueError, match="contradicts"):
        with_rule(own, SpacingRule("resample", 0.1))
    with pytest.raises(ValueError, match="contradicts"):
        with_rule(own, SpacingRule("pixels"))
    assert with_rule(own, SpacingRule("resample", 0.2))["setting"]["resampledPixelSpacing"] == [0.2, 0.2]
    with pytest.raises(ValueError, match="unknown key"):
        rule_of({"sonorad": {"spacing": "pixels", "target": 1}})


def test_median_spacing():
    assert median_spacing([(0.1, 0.1), None, (0.2, 0.4), (0.5, 0.5)]) == pytest.approx(0.3)
    assert median_spacing([None]) is None


def test_header_reads_give_spacing_size_depth_and_scanner(tmp_path, write_dicom, save_png):
    pixels = np.arange(12 * 20, dtype=np.uint8).reshape(12, 20)
    dcm = write_dicom(tmp_path / "a.dcm", pixels, PixelSpacing=[0.12, 0.14], Manufacturer="Acme",
                      ManufacturerModelName="Sono 1")
    info = header_info(dcm)
    assert info == {"format": "dicom", "spacing": (0.12, 0.14), "rows": 12, "cols": 20, "bit_depth": 8,
                    "manufacturer": "Acme", "model": "Sono 1"}
    bare = write_dicom(tmp_path / "b.dcm", pixels)
    assert file_spacing(bare) is None
    png = save_png("a.png", pixels)
    assert header_info(png) == {"format": "png", "spacing": None, "rows": 12, "cols": 20, "bit_depth": 8,
                                "manufacturer": None, "model": None}


def test_dicom_spacing_read_without_the_pixels(tmp_path, write_dicom, monkeypatch):
    import pydicom

    dcm = write_dicom(tmp_path / "a.dcm", np.zeros((8, 8), np.uint8), PixelSpacing=[0.1, 0.1])
    calls = []
    real = pydicom.dcmread

    def spy(*args, **kwargs):
        calls.append(kwargs.get("stop_before_pixels"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", spy)
    assert file_spacing(dcm) == (0.1, 0.1)
    assert calls and all(calls)


def test_nifti_header_spacing(tmp_path):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.zeros((6, 9), np.uint8))
    image.SetSpacing((0.3, 0.2))  # (x = col, y = row)
    path = tmp_path / "a.nii.gz"
    sitk.WriteImage(image, str(path))
    info = header_info(path)
    assert info["spacing"] == pytest.approx((0.2, 0.3)) and (info["rows"], info["cols"]) == (6, 9)
