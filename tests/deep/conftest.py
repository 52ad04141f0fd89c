"""Synthetic ultrasound-like images with a known lesion signal, and tiny PNG cohorts, for the deep tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def synthetic_images(n: int, size: int = 48, seed: int = 0, signal: float = 1.0, equalize: bool = True):
    """Speckled background with one dark elliptic lesion per image.

    Malignant lesions (y = 1) carry ``signal``-scaled bright internal foci (microcalcification-like);
    with ``equalize`` benign ones get the same added brightness spread evenly, so mean intensity
    carries no signal: the signal is the focal texture inside the lesion only.

    Returns images (n, size, size) in [0, 1], masks (n, size, size) bool, y (n,), patient (n,).
    """
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2 + 1)[:n]
    rng.shuffle(y)
    rr, cc = np.mgrid[:size, :size]
    images = np.empty((n, size, size), np.float32)
    masks = np.empty((n, size, size), bool)
    for i in range(n):
        img = 0.45 * rng.rayleigh(0.7, (size, size))
        r0, c0 = rng.uniform(0.3 * size, 0.7 * size, 2)
        a, b = rng.uniform(0.12 * size, 0.2 * size, 2)
        lesion = ((rr - r0) / a) ** 2 + ((cc - c0) / b) ** 2 <= 1.0
        img[lesion] *= 0.35
        inside = np.flatnonzero(lesion.ravel())
        spots = rng.choice(inside, size=max(3, inside.size // 12), replace=False)
        boost = signal * rng.uniform(0.6, 1.0, spots.size)
        if y[i] == 1:
            img.ravel()[spots] += boost
        elif equalize:
            # same mean lesion brightness, spread evenly: only the focal texture tells the classes apart
            img.ravel()[inside] += boost.sum() / inside.size
        images[i] = np.clip(img, 0, 1)
        masks[i] = lesion
    patient = np.array([f"p{i // 2}" for i in range(n)])  # two images per patient
    return images, masks, y, patient


@pytest.fixture
def make_images():
    return synthetic_images


def write_png_cohort(root: Path, n: int = 6, size: int = 64, seed: int = 0) -> pd.DataFrame:
    """Write n 8-bit gray PNGs with 0/255 masks and return the cohort table (absolute paths)."""
    from PIL import Image

    images, masks, y, patient = synthetic_images(n, size=size, seed=seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        cid = f"c{i:02d}"
        ip, mp = root / "images" / f"{cid}.png", root / "masks" / f"{cid}.png"
        Image.fromarray((images[i] * 255).round().astype(np.uint8)).save(ip)
        Image.fromarray(masks[i].astype(np.uint8) * 255).save(mp)
        rows.append({"case_id": cid, "patient_id": patient[i], "center": "A", "image": str(ip),
                     "mask": str(mp), "label": int(y[i])})
    return pd.DataFrame(rows).set_index("case_id", drop=False)


@pytest.fixture
def png_cohort(tmp_path):
    pytest.importorskip("sonorad.imaging", reason="sonorad.imaging is not available")
    from sonorad import imaging

    if not hasattr(imaging, "load_roi") or not hasattr(imaging, "crop_to_roi"):
        pytest.skip("sonorad.imaging.load_roi / crop_to_roi are not available yet")
    return write_png_cohort(tmp_path / "cohort")


@pytest.fixture
def feature_cache(tmp_path):
    store = pytest.importorskip("sonorad.features.store", reason="sonorad.features.store is not available yet")
    return store.FeatureCache(tmp_path / "cache")
