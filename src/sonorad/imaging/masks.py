"""Lesion masks: read any supported image file as a boolean ROI.

Mask rules
----------
1. The file is decoded by the same readers as images (:func:`sonorad.imaging.readers.read_raw`).
2. Colour masks become gray by the BT.601 luma rule. Alpha is coverage: when the alpha channel is
   not fully opaque everywhere, the gray value is composited over black (``gray * alpha / alpha_max``),
   so a transparent pixel is background whatever its colour; a fully opaque alpha is ignored.
3. ``label=k`` keeps the pixels equal to ``k`` (label maps); a label that is absent is an error
   naming the labels present.
4. Otherwise a mask with one non-zero value is binary: non-zero is lesion. A mask with several
   non-zero values (JPEG artefacts, anti-aliased outlines, a stray 75 among 0/255) is thresholded at
   half its maximum: a pixel is lesion when its value is at least ``max / 2``.
5. A mask that looks like a label map is an error unless ``label`` is given: at most 10 non-zero
   levels, all whole numbers, and either every level is at most 64 (label indices such as {1, 3},
   not grey levels) or the half-maximum threshold would drop more than 10% of the non-zero pixels.
   The error names the labels found; the ``mask_label`` column of cases.csv chooses one per case
   (:func:`sonorad.cohort.case_mask_settings` merges it with the study file's ``masks: label:``).
"""

from __future__ import annotations

import numpy as np

from sonorad.imaging.readers import read_raw, rgb_to_gray
from sonorad.imaging.types import ImageReadError, RawImage

__all__ = ["binarize_mask", "mask_values", "read_mask"]

#: Fraction of non-zero pixels the half-max threshold may drop silently.
LABEL_MAP_WARNING_FRACTION = 0.10
#: A mask with at most this many non-zero levels may be a label map (more: compression artefacts).
LABEL_MAP_MAX_LEVELS = 10
#: Whole-number levels up to this value are label indices, not grey levels.
LABEL_MAP_MAX_INDEX = 64


def _alpha_max(alpha: np.ndarray) -> float:
    if np.issubdtype(alpha.dtype, np.integer):
        return float(np.iinfo(alpha.dtype).max)
    return 1.0


def mask_values(raw: RawImage) -> np.ndarray:
    """Gray values of a decoded mask, alpha treated as coverage (rule 2 of the module docstring).

    Parameters
    ----------
    raw : RawImage
        Output of :func:`sonorad.imaging.readers.read_raw`.

    Returns
    -------
    numpy.ndarray
        Array (rows, cols), float64.
    """
    arr = raw.array
    if raw.channels == "L":
        return arr.astype(np.float64)
    gray = (arr[..., 0] if raw.channels.startswith("L") else rgb_to_gray(arr[..., :3])).astype(np.float64)
    if raw.channels in ("LA", "RGBA"):
        alpha = arr[..., -1]
        top = _alpha_max(alpha)
        if not np.all(alpha == top):
            gray = gray * (alpha.astype(np.float64) / top)
    return gray


def _present_labels(values: np.ndarray, limit: int = 10) -> str:
    labels = np.unique(values[np.isfinite(values)])
    shown = ", ".join(f"{v:g}" for v in labels[:limit])
    return shown + (f", ... ({labels.size} values)" if labels.size > limit else "")


def binarize_mask(values: np.ndarray, label=None, *, path="<array>") -> np.ndarray:
    """Turn mask values into a boolean lesion mask (rules 3 and 4 of the module docstring).

    Parameters
    ----------
    values : numpy.ndarray
        2D mask values (gray levels or labels).
    label : int, optional
        Keep only pixels equal to ``label``; default: non-zero, thresholded at half the maximum
        when the mask has more than one non-zero value.
    path : str, optional
        Shown in error messages.

    Returns
    -------
    numpy.ndarray
        Boolean array, same shape as ``values``.

    Raises
    ------
    ImageReadError
        When ``label`` is given and no pixel has that value, or when ``label`` is not given and the
        mask looks like a label map (rule 5; both kind ``"label"``).

    Examples
    --------
    >>> m = binarize_mask(np.array([[0, 75] + [255] * 10]))  # a stray 75 among 0 / 255
    >>> m[0, :3].tolist(), int(m.sum())
    ([False, False, True], 10)
    >>> binarize_mask(np.array([[0, 1, 2, 2]]), label=1)
    array([[False,  True, False, False]])
    """
    values = np.asarray(values, dtype=np.float64)
    values = np.where(np.isfinite(values), values, 0.0)
    if label is not None:
        if isinstance(label, bool) or not float(label).is_integer():
            raise TypeError(f"label must be an integer label value, got {label!r}")
        mask = values == float(label)
        if not mask.any():
            raise ImageReadError(
                path,
                f"label {label:g} not found in the mask; values present: {_present_labels(values)}",
                "pass one of the labels present (label=...), or leave label unset for a binary mask",
                kind="label",
            )
        return mask
    nonzero = values != 0
    levels = np.unique(values[nonzero])
    if levels.size <= 1:
        return nonzero
    top = levels.max()
    if top <= 0:
        return nonzero
    mask = values >= top / 2.0
    dropped = int(nonzero.sum() - mask.sum())
    # A label map has a few whole-number levels, each a region; JPEG ringing spreads over dozens of
    # faint levels and anti-aliasing over a thin rim of grey ones.
    whole = bool(np.all(levels == np.round(levels)))
    if whole and levels.size <= LABEL_MAP_MAX_LEVELS and (
            top <= LABEL_MAP_MAX_INDEX or dropped > LABEL_MAP_WARNING_FRACTION * nonzero.sum()):
        counts = ", ".join(f"{v:g} ({int((values == v).sum())} px)" for v in levels)
        raise ImageReadError(
            path,
            f"the mask holds several labels ({counts}): it is a label map, and sonorad will not guess "
            "which label is the lesion",
            "give the lesion's label in a `mask_label` column of cases.csv (one of the labels listed), or "
            "re-export the mask as lesion / background only",
            kind="label",
        )
    return mask


def read_mask(path, *, label=None, frame=None) -> np.ndarray:
    """Read a lesion mask file as a boolean array.

    Parameters
    ----------
    path : str or Path
        Any format :func:`~sonorad.imaging.read_image` reads (PNG, JPEG, BMP, TIFF, DICOM, NIfTI, NRRD).
    label : int, optional
        Keep the pixels equal to this value (label maps). Default: non-zero is lesion, thresholded at
        half the maximum when the mask has stray grey levels.
    frame : int, optional
        Frame or slice, for multi-frame / volume masks.

    Returns
    -------
    numpy.ndarray
        Boolean array (rows, cols); True marks the lesion. May be empty: callers that need a usable
        ROI check it (see :func:`~sonorad.imaging.load_roi`).

    Raises
    ------
    ImageReadError
        Missing, corrupt or unsupported file, frame out of range, or ``label`` not present.
    """
    raw = read_raw(path, frame=frame)
    return binarize_mask(mask_values(raw), label=label, path=str(path))
