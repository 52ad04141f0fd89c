"""Builders of upload files for the calculator tests (bytes in memory, as a browser sends them)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest

#: The base URL of the in-process test clients (the guard checks the Host header).
BASE = "http://127.0.0.1:8000"


def png_bytes(array: np.ndarray, **save) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(array)).save(buf, format="PNG", **save)
    return buf.getvalue()


def encode(array: np.ndarray, fmt: str, **save) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(array)).save(buf, format=fmt, **save)
    return buf.getvalue()


def dicom_bytes(pixels: np.ndarray, photometric: str = "MONOCHROME2", **elements) -> bytes:
    """A real DICOM Part 10 ultrasound file (explicit VR little endian) built with pydicom."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    pixels = np.asarray(pixels)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("upload.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = UltrasoundImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.SamplesPerPixel = 3 if pixels.ndim == 3 else 1
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = pixels.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    for key, value in elements.items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds["PixelData"].VR = "OW" if pixels.dtype.itemsize > 1 else "OB"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A valid 8-bit gray PNG of width x height zero pixels, compressed to a few hundred KB.

    Built row by row with zlib, so making it never holds the decoded image in memory.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 + zero pixels
    parts = [comp.compress(row * 100) for _ in range(height // 100)]
    parts.append(comp.compress(row * (height % 100)))
    parts.append(comp.flush())
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def bomb_png() -> bytes:
    return png_bomb()


@pytest.fixture
def gray_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(48, 64), dtype=np.uint8)


@pytest.fixture(scope="session")
def gradcam_bundle(small_bundle, tmp_path_factory):
    """The small bundle's chosen logistic regression plus a small CNN, so that cases get a Grad-CAM.

    The CNN has seeded random weights (an untrained network): its heat map checks the display path,
    not what a trained network attends to.
    """
    import torch

    from sonorad.bundle import write_bundle
    from sonorad.deep.backbones import load_backbone
    from sonorad.deep.finetune import CNNClassifier

    torch.manual_seed(0)
    cnn = CNNClassifier(backbone="small_cnn", weights=None, margin=0.2)
    cnn.model_, cnn.classes_, cnn.best_epoch_ = load_backbone("small_cnn", None), np.array([0, 1]), 1
    chosen = small_bundle.chosen
    n_train = len(small_bundle.train_ids)
    events = int(small_bundle.labels.loc[small_bundle.train_ids].astype(int).sum())
    card = {"intended_use": "Test bundle on a synthetic cohort with an untrained CNN; not for clinical use.",
            "cohorts": [{"cohort": "training (synthetic centers C1, C2)", "n": n_train, "events": events},
                        {"cohort": "external (synthetic centers C3, C4)", "n": len(small_bundle.external_ids)}],
            "external_auc": {"auc": 0.5, "low": 0.3, "high": 0.7, "note": "placeholder values of a test bundle"},
            "calibration": {"intercept": 0.0, "slope": 1.0, "note": "placeholder values of a test bundle"}}
    return write_bundle(tmp_path_factory.mktemp("gradcam_bundle") / "model",
                        models={chosen: small_bundle.models[chosen], "cnn": cnn},
                        chosen=chosen, cutoffs={chosen: small_bundle.cutoffs[chosen], "cnn": 0.5},
                        features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=small_bundle.variables, training_input=small_bundle.training_input,
                        training_rois=None, card=card, study={"seed": 0})


@pytest.fixture(scope="module")
def bundle(small_bundle):
    """The small study's bundle, loaded once per test module."""
    from sonorad.bundle import load_bundle

    return load_bundle(small_bundle.path)


@pytest.fixture(scope="module")
def client(bundle):
    """An in-process client of the calculator over :func:`bundle` (no token, default limits)."""
    from starlette.testclient import TestClient

    from sonorad.serve.app import create_app

    with TestClient(create_app(bundle), base_url=BASE) as c:
        yield c
