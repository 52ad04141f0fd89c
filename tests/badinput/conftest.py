"""Builders of the bad-input corpus: tiny synthetic images, masks, cohort tables and study files.

Nothing here is committed data: every file is written into a temporary folder by the fixtures, from
numbers drawn with a fixed seed. ``Corpus`` writes one case at a time (a good one by default, or one
with a specific defect) and the table and study file that go with them; each test states which
defect it plants and what sonorad must say about it.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

SIZE = 48  # image side in pixels: small, so PyRadiomics takes a few ms per case

#: Original-image features only: enough to show that a case was extracted, fast on 48x48 images.
FAST_PARAMS = {
    "setting": {"binWidth": 5, "label": 1, "minimumROIDimensions": 2, "minimumROISize": 16,
                "correctMask": False, "additionalInfo": False, "normalize": False},
    "imageType": {"Original": {}},
    "featureClass": {"shape2D": None, "firstorder": None, "glcm": ["Contrast", "JointEntropy"]},
}


def lesion_mask(size: int = SIZE, box=(14, 34, 12, 36), value: int = 255) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    r0, r1, c0, c1 = box
    mask[r0:r1, c0:c1] = value
    return mask


def ultrasound_image(seed: int, size: int = SIZE) -> np.ndarray:
    """Speckle-like 8-bit gray image with a darker lesion where :func:`lesion_mask` draws it."""
    rng = np.random.default_rng(seed)
    image = rng.gamma(4.0, 25.0, (size, size))
    image[lesion_mask(size) > 0] *= 0.5
    return np.clip(image, 0, 255).astype(np.uint8)


def save_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(np.asarray(array)).save(path)  # uint16 arrays become 16-bit PNGs
    return path


def png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A well-formed 1x1 gray PNG whose header announces ``width`` x ``height`` (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
                     + chunk(b"IEND", b""))
    return path


class Corpus:
    """One cohort folder: ``add`` cases (good or planted with a defect), then ``write`` the table."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "img").mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []

    # the builders, for tests that plant a defect by hand
    lesion_mask = staticmethod(lesion_mask)
    ultrasound_image = staticmethod(ultrasound_image)
    save_png = staticmethod(save_png)
    png_claiming_size = staticmethod(png_claiming_size)
    fast_params = FAST_PARAMS

    def path(self, name: str) -> Path:
        return self.root / "img" / name

    def add(self, case_id: str, *, image=None, mask=None, label: int | None = None, center: str = "A",
            patient: str | None = None, image_name: str | None = None, mask_name: str | None = None,
            **columns) -> dict:
        """Add a case; ``image`` / ``mask`` are arrays to save as PNG, or ``False`` to write no file."""
        seed = len(self.rows)
        image_name = image_name or f"{case_id}.png"
        mask_name = mask_name or f"{case_id}_mask.png"
        if image is not False:
            save_png(self.path(image_name), ultrasound_image(seed) if image is None else image)
        if mask is not False:
            save_png(self.path(mask_name), lesion_mask() if mask is None else mask)
        row = {"case_id": case_id, "patient_id": f"P{case_id}" if patient is None else patient, "center": center,
               "image": f"img/{image_name}", "mask": f"img/{mask_name}",
               "label": seed % 2 if label is None else label, **columns}
        self.rows.append(row)
        return row

    def add_good(self, n: int, prefix: str = "good", center: str = "A", **columns) -> list[str]:
        return [self.add(f"{prefix}{i}", center=center, **columns)["case_id"] for i in range(n)]

    def write(self, name: str = "cases.csv", drop: tuple[str, ...] = (), sep: str = ",") -> Path:
        table = pd.DataFrame(self.rows).drop(columns=list(drop))
        path = self.root / name
        table.to_csv(path, index=False, sep=sep)
        return path

    def study(self, name: str = "study.yaml", **sections) -> Path:
        data = {"name": "badinput", "cohort": "cases.csv", **sections}
        path = self.root / name
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def params(self, name: str = "params.yaml", params: dict | None = None) -> Path:
        path = self.root / name
        path.write_text(yaml.safe_dump(params or FAST_PARAMS, sort_keys=False), encoding="utf-8")
        return path


@pytest.fixture
def corpus(tmp_path) -> Corpus:
    return Corpus(tmp_path / "cohort")


@pytest.fixture
def sonorad_cli(capsys):
    """Run ``sonorad ARGS`` in this process; return (exit code, stdout, stderr)."""
    from sonorad.cli import main

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
