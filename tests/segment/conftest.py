"""Tiny synthetic cohorts and a segmenter trained on one in a few steps (random encoder, 32-pixel input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def lesion_image(rng, shape=(48, 64)):
    """A bright speckled background with one dark elliptic lesion; returns (uint8 image, bool mask)."""
    h, w = shape
    rows, cols = np.mgrid[:h, :w]
    cy, cx = rng.integers(h // 3, 2 * h // 3), rng.integers(w // 3, 2 * w // 3)
    ry, rx = rng.integers(6, h // 4), rng.integers(8, w // 4)
    mask = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 < 1.0
    image = 170 + rng.normal(0, 15, shape)
    image[mask] = 50 + rng.normal(0, 10, int(mask.sum()))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_cohort(folder: Path, n_cases: int = 10, seed: int = 0, shape=(48, 64)) -> Path:
    """Write PNG images and masks and a cases.csv (two cases per patient); returns the CSV path."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    rows = []
    for i in range(n_cases):
        image, mask = lesion_image(rng, shape)
        Image.fromarray(image).save(folder / "images" / f"c{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / f"c{i}.png")
        rows.append({"case_id": f"c{i}", "patient_id": f"p{i // 2}", "center": "A" if (i // 2) % 2 else "B",
                     "image": f"images/c{i}.png", "mask": f"masks/c{i}.png", "label": i % 2})
    csv = folder / "cases.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    return write_cohort(tmp_path_factory.mktemp("seg_cohort"))


@pytest.fixture(scope="session")
def tiny_segmenter(tiny_cohort):
    """A segmenter trained for two epochs on the tiny cohort (random encoder weights, 32-pixel input, 1 thread)."""
    import torch

    from sonorad.cohort import read_cases
    from sonorad.segment.data import load_training_cases
    from sonorad.segment.train import train_segmenter

    threads = torch.get_num_threads()
    table = read_cases(tiny_cohort)
    try:
        return train_segmenter(load_training_cases(table), image_size=32, epochs=2, max_minutes=None, batch_size=4,
                               val_fraction=0.3, encoder_weights=None, threads=1, centers=table["center"],
                               progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread: on a shared 2-core machine, two threads mostly wait on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
