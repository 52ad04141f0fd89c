"""Agreement between two lesion masks: Dice and the 95th-percentile Hausdorff distance (HD95)."""

from __future__ import annotations

import numpy as np

__all__ = ["dice_score", "hd95"]


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def dice_score(a, b) -> float:
    """Dice coefficient ``2|A n B| / (|A| + |B|)`` of two boolean masks; 1.0 when both are empty.

    Examples
    --------
    >>> dice_score([[1, 1, 0, 0]], [[0, 1, 1, 0]])
    0.5
    """
    a, b = _pair(a, b)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def _boundary(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=0)


def hd95(a, b, spacing=(1.0, 1.0)) -> float:
    """95th percentile of the symmetric boundary-to-boundary distances between two masks.

    The boundary of a mask is its pixels with a background pixel among their 8 neighbours (or on the
    image edge); the distances from each boundary pixel of one mask to the nearest boundary pixel of
    the other, both ways, are pooled and their 95th percentile is returned, in the unit of
    ``spacing`` (pixels by default). NaN when either mask is empty.

    Examples
    --------
    >>> m = np.zeros((20, 20), bool); m[5:15, 5:15] = True
    >>> hd95(m, np.roll(m, 3, axis=1))
    3.0
    """
    from scipy import ndimage

    a, b = _pair(a, b)
    if not a.any() or not b.any():
        return float("nan")
    ba, bb = _boundary(a), _boundary(b)
    to_b = ndimage.distance_transform_edt(~bb, sampling=spacing)
    to_a = ndimage.distance_transform_edt(~ba, sampling=spacing)
    return float(np.percentile(np.concatenate([to_b[ba], to_a[bb]]), 95))
