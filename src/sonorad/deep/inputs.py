"""CNN inputs: lesion crops from cases, and crops -> normalised 3-channel tensors.

A crop is the lesion bounding box (``sonorad.imaging.crop_to_roi``, with a margin, squared),
scaled to [0, 1]; optionally everything outside the mask is blanked. Tensors are made by resizing
the crop to the backbone's input size, repeating the gray channel three times and applying the
backbone's mean/std normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from sonorad.errors import CaseError, ConfigError


def intensity_scale(pixels: np.ndarray) -> float:
    """Divisor bringing ``pixels`` to [0, 1].

    1 for images already in [0, 1], 255 for 8-bit-range images, else the image maximum (16-bit).
    Absolute echogenicity is kept for the common 8-bit case, which a per-image min-max rescaling
    would erase.
    """
    peak = float(np.nanmax(pixels)) if pixels.size else 0.0
    if peak <= 1.0:
        return 1.0
    return 255.0 if peak <= 255.0 else peak


def square_pad(crop: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """Pad a 2D array symmetrically to a square (a crop clipped at the image border may not be)."""
    h, w = crop.shape
    if h == w:
        return crop
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    out = np.full((side, side), fill, dtype=crop.dtype)
    out[top : top + h, left : left + w] = crop
    return out


def roi_crop_with_mask(
    pixels: np.ndarray, mask: np.ndarray, *, margin: float = 0.1, mask_background: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Square lesion crop in [0, 1] and the mask cropped alike, from a gray image and its mask.

    Parameters
    ----------
    pixels : ndarray, shape (H, W)
        Gray image (any numeric range; see :func:`intensity_scale`).
    mask : ndarray of bool, shape (H, W)
        Lesion mask.
    margin : float
        Margin around the bounding box, as a fraction of its size (passed to ``crop_to_roi``).
    mask_background : bool
        Set pixels outside the mask to 0.

    Returns
    -------
    crop : ndarray of float32, shape (S, S)
    crop_mask : ndarray of bool, shape (S, S)
    """
    from sonorad.imaging import crop_to_roi

    pixels = np.asarray(pixels, dtype=np.float32)
    crop, crop_mask = crop_to_roi(pixels, np.asarray(mask, dtype=bool), margin=margin, square=True)
    crop = np.clip(np.asarray(crop, dtype=np.float32) / intensity_scale(pixels), 0.0, 1.0)
    crop_mask = np.asarray(crop_mask, dtype=bool)
    if mask_background:
        crop = crop * crop_mask.astype(np.float32)
    return square_pad(crop), square_pad(crop_mask.astype(np.float32)) > 0.5


def roi_crop(
    pixels: np.ndarray, mask: np.ndarray, *, margin: float = 0.1, mask_background: bool = False
) -> np.ndarray:
    """Square lesion crop in [0, 1] (see :func:`roi_crop_with_mask`), shape (S, S), float32."""
    return roi_crop_with_mask(pixels, mask, margin=margin, mask_background=mask_background)[0]


def case_crop_with_mask(
    row: pd.Series, case_id: str, *, margin: float = 0.1, mask_background: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Read one cohort row (``image``, ``mask``, optional ``frame``): its lesion crop and crop mask.

    Raises
    ------
    CaseError
        From ``sonorad.imaging.load_roi`` (missing file, size mismatch, empty mask, ...).
    """
    from sonorad.imaging import load_roi
    from sonorad.imaging.roi import row_mask_label

    frame = row.get("frame") if "frame" in row.index else None
    if frame is not None and pd.isna(frame):
        frame = None
    if pd.isna(row["mask"]) or not str(row["mask"]).strip():
        raise CaseError(case_id, "no mask file is listed", "fill the mask column of this case")
    image, mask = load_roi(
        str(row["image"]), str(row["mask"]), case_id=case_id, frame=None if frame is None else int(frame),
        label=row_mask_label(row),
    )
    return roi_crop_with_mask(image.pixels, mask, margin=margin, mask_background=mask_background)


def case_crop(row: pd.Series, case_id: str, *, margin: float = 0.1, mask_background: bool = False) -> np.ndarray:
    """Lesion crop of one cohort row (see :func:`case_crop_with_mask`)."""
    return case_crop_with_mask(row, case_id, margin=margin, mask_background=mask_background)[0]


def case_ids(table: pd.DataFrame) -> list[str]:
    """Case ids of a cohort table: the ``case_id`` column, else the index."""
    if "case_id" in table.columns:
        return [str(c) for c in table["case_id"]]
    return [str(c) for c in table.index]


def collect_crops(X, *, margin: float = 0.1, mask_background: bool = False) -> list[np.ndarray]:
    """Lesion crops for estimator input ``X``.

    ``X`` is either a cohort DataFrame (columns ``image`` and ``mask``; read with ``load_roi``), or
    already-cropped gray images: an array of shape (N, H, W) or a sequence of 2D arrays. A case
    that cannot be read raises :class:`CaseError` naming it: inside a Pipeline a case cannot be
    silently dropped, so fix or exclude it first (``extract_deep`` records failures instead).
    """
    if isinstance(X, pd.DataFrame):
        missing = [c for c in ("image", "mask") if c not in X.columns]
        if missing:
            raise ConfigError(
                f"the cases table given to the deep feature estimator lacks column(s) {missing}; "
                "pass the cohort table (with image and mask paths) or an array of crops (N, H, W)"
            )
        ids = case_ids(X)
        return [
            case_crop(row, cid, margin=margin, mask_background=mask_background)
            for cid, (_, row) in zip(ids, X.iterrows())
        ]
    if isinstance(X, np.ndarray) and X.ndim == 3:
        items: Sequence = list(X)
    elif isinstance(X, (list, tuple)) or (isinstance(X, np.ndarray) and X.dtype == object):
        items = list(X)
    else:
        raise ConfigError(
            f"X must be a cohort DataFrame or crops of shape (N, H, W); got {type(X).__name__}"
            + (f" of shape {X.shape}" if hasattr(X, "shape") else "")
        )
    crops = []
    for i, item in enumerate(items):
        arr = np.asarray(item, dtype=np.float32)
        if arr.ndim != 2 or min(arr.shape) < 2:
            raise CaseError(str(i), f"crop {i} has shape {arr.shape}, expected a 2D gray image",
                            "pass 2D gray crops (H, W)")
        crops.append(square_pad(np.clip(arr / intensity_scale(arr), 0.0, 1.0)))
    return crops


def groups_of(X, groups=None) -> np.ndarray | None:
    """Patient groups for grouped splits: ``groups`` if given, else X's ``patient_id`` column."""
    if groups is not None:
        return np.asarray(groups)
    if isinstance(X, pd.DataFrame) and "patient_id" in X.columns:
        return X["patient_id"].astype(str).to_numpy()
    return None


def resize_gray(crops: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """Stack crops resized to ``size`` x ``size`` (bilinear, antialiased): tensor (N, 1, size, size)."""
    out = torch.empty((len(crops), 1, size, size), dtype=torch.float32)
    for i, crop in enumerate(crops):
        t = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None, None]
        out[i] = torch.nn.functional.interpolate(
            t, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )[0]
    return out.clamp_(0.0, 1.0)


def normalize(gray: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Gray batch (N, 1, S, S) in [0, 1] -> 3-channel batch normalised with ``mean``/``std``."""
    m = torch.tensor(mean, dtype=gray.dtype, device=gray.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=gray.dtype, device=gray.device).view(1, 3, 1, 1)
    return (gray.expand(-1, 3, -1, -1) - m) / s
