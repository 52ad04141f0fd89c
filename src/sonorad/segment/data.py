"""Segmenter inputs: the crop around a box, resized to a fixed square, and the way back to the image.

The crop window is the box enlarged by ``margin`` times its width (left and right) and height (top
and bottom); it is resampled to ``size x size`` pixels whatever its aspect ratio, so the box always
occupies the same central part of the input. Parts of the window outside the image read as 0.
:func:`paste_back` maps a ``size x size`` probability map back onto the image grid.

:func:`load_training_cases` reads a cohort table's images and masks for training, with errors that
name the case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonorad.errors import CaseError, CohortError
from sonorad.imaging.boxes import Box

__all__ = ["SegmentationCase", "crop_window", "window_pixels", "crop_batch", "paste_back", "load_training_cases",
           "to_unit_gray"]


@dataclass(frozen=True)
class SegmentationCase:
    """One training case: gray image in [0, 1] (float32, H x W) and its lesion mask (bool, H x W)."""

    case_id: str
    patient_id: str
    image: np.ndarray
    mask: np.ndarray


def to_unit_gray(pixels) -> np.ndarray:
    """A gray image scaled to [0, 1] as float32 (8-bit range divided by 255; see ``intensity_scale``)."""
    from sonorad.deep.inputs import intensity_scale

    pixels = np.asarray(pixels, dtype=np.float32)
    return np.clip(pixels / intensity_scale(pixels), 0.0, 1.0)


def crop_window(box: Box, margin: float) -> Box:
    """The crop window of ``box``: each side pushed out by ``margin`` of the box's width / height."""
    x0, y0, x1, y1 = box
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    return (x0 - mx, y0 - my, x1 + mx, y1 + my)


def window_pixels(window: Box, shape) -> tuple[int, int, int, int]:
    """Rows ``r0:r1`` and columns ``c0:c1`` of the pixels that ``window`` (in pixels) touches, clipped
    to an image of ``shape``; empty ranges when the window lies outside it."""
    h, w = shape
    x0, y0, x1, y1 = window
    c0, c1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), w)
    r0, r1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), h)
    return r0, r1, c0, c1


def _theta(window: Box, shape) -> "torch.Tensor":  # noqa: F821
    import torch

    h, w = shape
    x0, y0, x1, y1 = window
    # affine_grid maps output [-1, 1] to input [-1, 1] (align_corners=False: pixel edges at +-1).
    sx, sy = (x1 - x0) / w, (y1 - y0) / h
    tx, ty = (x0 + x1) / w - 1.0, (y0 + y1) / h - 1.0
    return torch.tensor([[sx, 0.0, tx], [0.0, sy, ty]], dtype=torch.float32)


def crop_batch(images, windows, size: int, mode: str = "bilinear", flips=None) -> "torch.Tensor":  # noqa: F821
    """Resample each image's window to ``size x size``: a tensor (N, 1, size, size).

    Parameters
    ----------
    images : sequence of ndarray (H, W)
        Float images (gray in [0, 1], or masks as 0/1).
    windows : sequence of Box
        One window per image, in pixels (may reach outside the image; outside reads 0).
    size : int
    mode : {"bilinear", "nearest"}
    flips : sequence of bool, optional
        Mirror the crop left-right (training augmentation).
    """
    import torch
    import torch.nn.functional as F

    out = []
    for i, (image, window) in enumerate(zip(images, windows)):
        x = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32)[None, None]
        theta = _theta(window, image.shape)
        if flips is not None and flips[i]:
            theta[0, 0] = -theta[0, 0]
        grid = F.affine_grid(theta[None], [1, 1, size, size], align_corners=False)
        out.append(F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False))
    return torch.cat(out) if out else torch.zeros((0, 1, size, size))


def paste_back(prob: np.ndarray, window: Box, shape) -> np.ndarray:
    """A ``size x size`` map over ``window`` resampled onto the image grid (zeros outside the window).

    Returns float32 (H, W); each image pixel takes the map's bilinear value at its centre.
    """
    import torch
    import torch.nn.functional as F

    x0, y0, x1, y1 = window
    r0, r1, c0, c1 = window_pixels(window, shape)
    out = np.zeros(shape, dtype=np.float32)
    if c1 <= c0 or r1 <= r0:
        return out
    # Pixel centres of the image region, in the map's [-1, 1] coordinates.
    xs = (np.arange(c0, c1) + 0.5 - x0) / (x1 - x0) * 2.0 - 1.0
    ys = (np.arange(r0, r1) + 0.5 - y0) / (y1 - y0) * 2.0 - 1.0
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    grid = torch.as_tensor(np.stack([gx, gy], axis=-1), dtype=torch.float32)[None]
    src = torch.as_tensor(np.ascontiguousarray(prob), dtype=torch.float32)[None, None]
    region = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out[r0:r1, c0:c1] = region[0, 0].numpy()
    return out


def _missing(cell) -> bool:
    return cell is None or (isinstance(cell, float) and np.isnan(cell)) or str(cell).strip() == ""


def load_training_cases(table: pd.DataFrame, progress: bool = False) -> list[SegmentationCase]:
    """Read every case's gray image and lesion mask (the union of its mask files) for training.

    Parameters
    ----------
    table : DataFrame
        A cohort table from :func:`sonorad.cohort.read_cases` (``case_id, patient_id, image, mask``).

    Raises
    ------
    CohortError
        Listing every case that cannot be used, by id: no mask given, a missing or unreadable image
        or mask, an empty mask, a mask of another size (all problems at once, before any training).
    """
    from sonorad.errors import Problem
    from sonorad.imaging import load_roi

    cases, problems = [], []
    rows = list(table.iterrows())
    for k, (_, row) in enumerate(rows, start=1):
        case_id = str(row["case_id"])
        if _missing(row.get("mask")):
            problems.append(Problem("no mask given: a segmenter learns from the cohort's masks",
                                    fix="add the lesion mask file in the 'mask' column, or leave the case out",
                                    case_id=case_id, column="mask"))
            continue
        frame = row.get("frame")
        frame = None if _missing(frame) else int(frame)
        try:
            image, mask = load_roi(row["image"], row["mask"], case_id=case_id, frame=frame, lesions="union")
        except CaseError as err:
            problems.append(err.problem)
            continue
        cases.append(SegmentationCase(case_id, str(row["patient_id"]), to_unit_gray(image.pixels), mask))
        if progress and (k % 100 == 0 or k == len(rows)):
            import sys

            print(f"sonorad segment: read {k}/{len(rows)} cases", file=sys.stderr, flush=True)
    if problems:
        raise CohortError(problems, source="cases for segmenter training")
    return cases
