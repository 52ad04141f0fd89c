"""Acquisition by center (spacing, size, bit depth, format, scanner) and validate's spacing check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.cohort import read_cases, validate_cases
from sonorad.cohort.acquisition import (
    MAX_SPACING_RATIO,
    acquisition_table,
    case_acquisition,
    resample_target,
    spacing_problems,
    training_spacing_mm,
)
from sonorad.errors import ConfigError

from .builders import make_cohort, rows_of, study_of


def _dicom(path, rows=10, cols=14, spacing=(0.2, 0.2), manufacturer="Acme", model="Sono 1"):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = UltrasoundImageStorage, meta.MediaStorageSOPInstanceUID, "US"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.Manufacturer, ds.ManufacturerModelName = manufacturer, model
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    ds.PixelData = np.zeros((rows, cols), np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _cohort(tmp_path, spacing_of_center: dict, dicom_center=None, dicom_spacing=(0.2, 0.2)):
    """Centers A, B, C; ``spacing_of_center`` gives a spacing_mm cell per center (missing: empty);
    ``dicom_center``'s images are DICOM files with ``dicom_spacing``."""
    rows = rows_of(n_patients=12, images_per_patient=1)
    for row in rows:
        row["spacing_mm"] = spacing_of_center.get(row["center"], "")
        if row["center"] == dicom_center:
            row["image"] = row["image"].replace(".png", ".dcm")
    csv = make_cohort(tmp_path, rows)
    for row in rows:
        if row["center"] == dicom_center:
            _dicom(tmp_path / row["image"], spacing=dicom_spacing)
    return read_cases(csv)


def _errors(problems):
    return [p for p in problems if p.severity == "error"]


def test_no_spacing_anywhere_says_nothing(tmp_path):
    table = _cohort(tmp_path, {})
    assert spacing_problems(table) == [] and spacing_problems(table, study_of()) == []
    assert not [p for p in validate_cases(table) if "spacing" in str(p.column)]


def test_centers_with_and_without_spacing_are_refused_by_name(tmp_path):
    table = _cohort(tmp_path, {"C": "0.07"})
    errors = _errors(validate_cases(table))
    assert len(errors) == 1 and errors[0].column == "features.spacing"
    message = errors[0].message
    assert "centers A, B have no pixel spacing while center C has one" in message
    assert "C: 4 cases from spacing_mm, 0.07 mm" in message
    assert "features.spacing: resample" in errors[0].fix and "pixels" in errors[0].fix


def test_choosing_a_rule_accepts_the_mix(tmp_path):
    table = _cohort(tmp_path, {"C": "0.07"})
    pixels = study_of(features={"spacing": "pixels"})
    problems = spacing_problems(table, pixels)
    assert [p.severity for p in problems] == ["info"] and "(features.spacing: pixels)" in problems[0].message
    # resample needs every image's spacing: the centers without one are named
    errors = _errors(spacing_problems(table, study_of(features={"spacing": "resample"})))
    assert sorted(e.message.split(":")[0] for e in errors) == ["center A", "center B"]
    assert all("no pixel spacing" in e.message and "spacing_mm" in e.fix for e in errors)


def test_median_spacings_further_apart_than_the_stated_factor(tmp_path):
    table = _cohort(tmp_path, {"A": "0.1", "B": "0.12", "C": "0.2"})
    errors = _errors(spacing_problems(table))
    assert len(errors) == 1 and f"more than {MAX_SPACING_RATIO:g}x" in errors[0].message
    assert "between A (0.1 mm) and C (0.2 mm)" in errors[0].message
    close = _cohort(tmp_path / "close", {"A": "0.1", "B": "0.12", "C": "0.14"})
    assert [p.severity for p in spacing_problems(close)] == ["info"]


def test_dicom_spacing_counts_and_a_center_mixing_cases(tmp_path):
    table = _cohort(tmp_path, {"A": "0.2", "B": "0.2"}, dicom_center="C", dicom_spacing=(0.2, 0.2))
    assert [p.severity for p in spacing_problems(table)] == ["info"]
    assert "C: 4 cases from file, 0.2 mm" in spacing_problems(table)[0].message
    mixed = table.copy()
    mixed.loc[mixed.index[0], "spacing_mm"] = None  # one case of center A without spacing
    errors = _errors(spacing_problems(mixed))
    assert len(errors) == 1 and "center A mixes cases with and without a pixel spacing" in errors[0].message


def test_acquisition_table_by_center(tmp_path):
    table = _cohort(tmp_path, {"A": "0.1,0.12"}, dicom_center="C", dicom_spacing=(0.3, 0.3))
    by_center = acquisition_table(table)
    assert list(by_center.index) == ["A", "B", "C"]
    c = by_center.loc["C"]
    assert (c["cases"], c["with_spacing"], c["spacing_from"], c["spacing_mm"]) == (4, 4, "file", "0.3")
    assert (c["image_size"], c["bit_depth"], c["format"], c["scanner"]) == ("10 x 14", "8", "dicom", "Acme Sono 1")
    assert by_center.loc["A", "median_spacing_mm"] == pytest.approx(0.11)
    assert by_center.loc["B", "with_spacing"] == 0 and np.isnan(by_center.loc["B", "median_spacing_mm"])
    assert by_center.loc["B", "scanner"] == ""
    cases = case_acquisition(table)
    assert list(cases["spacing_from"].unique()) == ["spacing_mm", "none", "file"]


def test_resample_target_is_the_training_median(tmp_path):
    table = _cohort(tmp_path, {"A": "0.1", "B": "0.3", "C": "0.05"})
    parts = pd.Series(np.where(table["center"] == "C", "external", "train"), index=table.index)
    assert training_spacing_mm(table, parts.index[parts == "train"]) == pytest.approx(0.2)
    assert resample_target("resample", None, table, parts) == pytest.approx(0.2)
    assert resample_target("resample", 0.07, table, parts) == 0.07
    assert resample_target("pixels", None, table, parts) is None
    none = _cohort(tmp_path / "none", {"C": "0.05"})
    with pytest.raises(ConfigError, match="features.spacing_mm"):
        resample_target("resample", None, none, pd.Series("train", index=none.index).where(none["center"] != "C",
                                                                                           "external"))


def test_synthetic_demo_cohort_has_no_spacing_and_no_spacing_problem(tmp_path):
    from sonorad.synthetic import make_cohort as make_synthetic

    table = read_cases(make_synthetic(tmp_path, scenario="clnm", seed=0, n_patients=8, image_size=(48, 64)))
    assert spacing_problems(table) == []
    by_center = acquisition_table(table)
    assert (by_center["with_spacing"] == 0).all() and set(by_center["format"]) == {"png"}
    from sonorad.imaging import read_image

    for center, row in by_center.iterrows():
        sizes = {read_image(path).shape for path in table.loc[table["center"] == center, "image"]}
        if len(sizes) == 1:
            assert row["image_size"] == "{} x {}".format(*sizes.pop())
