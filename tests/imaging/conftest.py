"""Builders of tiny image files for the imaging tests."""

from __future__ import annotations

import numpy as np
import pytest


def _write_dicom(path, pixels, photometric="MONOCHROME2", *, bits_stored=None, signed=False, frames=None,
                 transfer_syntax=None, encapsulated=None, **elements):
    """Write a real DICOM Part 10 ultrasound file with pydicom.

    ``pixels`` is (rows, cols), (rows, cols, 3), or with a leading frame axis when ``frames`` is set.
    ``encapsulated`` (list of bytes, one per frame) replaces native pixel data for compressed syntaxes.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    pixels = np.asarray(pixels)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax or ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = UltrasoundImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    shape = pixels.shape[1:] if frames else pixels.shape
    ds.Rows, ds.Columns = int(shape[0]), int(shape[1])
    ds.SamplesPerPixel = 3 if len(shape) == 3 else 1
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    allocated = pixels.dtype.itemsize * 8
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored or allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if frames:
        ds.NumberOfFrames = frames
    for key, value in elements.items():
        setattr(ds, key, value)
    if encapsulated is not None:
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate(encapsulated)
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
        ds["PixelData"].VR = "OW" if allocated > 8 else "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def write_dicom():
    """Function ``write_dicom(path, pixels, photometric, **elements) -> path``."""
    return _write_dicom


@pytest.fixture
def save_png(tmp_path):
    """Function ``save_png(name, array_or_pil_image, mode=None) -> path`` writing into tmp_path."""
    from PIL import Image

    def save(name, data, mode=None, **kwargs):
        path = tmp_path / name
        im = data if isinstance(data, Image.Image) else Image.fromarray(np.asarray(data), mode=mode)
        im.save(path, **kwargs)
        return path

    return save
