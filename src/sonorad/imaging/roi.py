"""Load an image with its lesion mask(s), check the ROI, and crop around it.

:func:`load_roi` is the single entry point the feature extractors use for one case: every problem
with the case's files comes out as a :class:`sonorad.errors.CaseError` naming the case, the file and
the fix, so a cohort run can record the failure and go on with the other cases.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from sonorad.errors import CaseError, CaseWarning, case_warnings
from sonorad.imaging.masks import read_mask
from sonorad.imaging.readers import UltrasoundImage, read_image
from sonorad.imaging.types import ImageReadError

__all__ = ["LESION_POLICIES", "MAX_ROI_FRACTION", "MIN_REGION_FRACTION", "MIN_REGION_PIXELS", "MIN_ROI_PIXELS",
           "bounding_box", "crop_to_roi", "lesion_components",
           "load_lesion_rois", "load_roi", "row_mask_label", "split_mask_paths"]

#: PyRadiomics refuses an ROI of a single pixel; an ROI needs at least this many.
MIN_ROI_PIXELS = 2
#: A mask file marking at least this fraction of the image as lesion is refused: it is almost always
#: inverted (lesion 0 on a 255 background) or blank. Lesions in cohorts cropped around the lesion
#: reach about 60% of the image (BUS-BRA's largest: 58%).
MAX_ROI_FRACTION = 0.80
#: A region of the mask smaller than this many pixels, or than ``MIN_REGION_FRACTION`` of the
#: mask's largest region, is a speck (a stray mark of the drawing tool): it is dropped with a note.
MIN_REGION_PIXELS = 10
MIN_REGION_FRACTION = 0.005
#: Said when a mask marks (almost) every pixel as lesion.
INVERTED_FIX = ("the mask may be inverted: the lesion must be the non-zero pixels on a zero background (invert a "
                "mask drawn black on white); if the lesion really fills the image, keep some background around it")


def split_mask_paths(mask_paths) -> list[str]:
    """Normalise ``mask_paths`` to a list: a path, a list of paths, or ``"a.png;b.png"`` (cases.csv).

    A string is split on ``;`` only when it is not itself an existing file.
    """
    if isinstance(mask_paths, (str, os.PathLike)):
        text = os.fspath(mask_paths)
        if ";" in text and not Path(text).exists():
            return [part.strip() for part in text.split(";") if part.strip()]
        return [text]
    paths = [os.fspath(p) for p in mask_paths]
    if not paths:
        raise ValueError("mask_paths is empty: give at least one mask file")
    return paths


def row_mask_label(row) -> int | None:
    """The ``mask_label`` of one cohort-table row (a label map's lesion label), or None when empty/absent.

    ``sonorad validate`` checks the column; an unusable value here is treated as absent.
    """
    value = row.get("mask_label") if hasattr(row, "get") else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number > 0 and number.is_integer() else None


def _case_error(case_id, role: str, err: ImageReadError) -> CaseError:
    return CaseError(case_id, f"{role} {err.path}: {err.message}", err.fix)


def _read_case_mask(path: str, case_id, frame, label, role: str) -> np.ndarray:
    try:
        return read_mask(path, label=label)
    except ImageReadError as err:
        if err.kind == "frame" and frame is not None:
            try:
                return read_mask(path, label=label, frame=frame)  # a mask volume: same slice as the image
            except ImageReadError as err2:
                raise _case_error(case_id, role, err2) from err2
        raise _case_error(case_id, role, err) from err


def _size(shape) -> str:
    return f"{shape[0]}x{shape[1]} (rows x cols)"


#: How a mask with several disjoint regions becomes ROIs (``masks: lesions:`` in the study file).
LESION_POLICIES = ("union", "largest", "per-lesion")


def lesion_components(mask) -> list[np.ndarray]:
    """The connected regions (8-connected) of a boolean mask, in raster order of their first pixel.

    Examples
    --------
    >>> m = np.zeros((6, 6), bool); m[0:2, 0:2] = True; m[4:6, 3:6] = True
    >>> [int(c.sum()) for c in lesion_components(m)]
    [4, 6]
    """
    from scipy import ndimage

    labels, n = ndimage.label(np.asarray(mask, dtype=bool), structure=np.ones((3, 3), dtype=bool))
    return [labels == k for k in range(1, n + 1)]


#: Cases whose specks were already noted in this process: one note per case, not one per read
#: (extraction, ROI measures, the CNN and perturbed-mask tasks each read the case again).
_NOTED_SPECKS: set = set()
_MAX_NOTED = 100_000


def _drop_specks(mask: np.ndarray, case_id, paths) -> np.ndarray:
    """The mask without its specks (module constants ``MIN_REGION_*``), noting them once per case.

    The largest region is never a speck; a case whose only region is tiny fails the ROI size check.
    """
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    largest = int(sizes.max())
    limit = max(MIN_REGION_PIXELS, MIN_REGION_FRACTION * largest)
    specks = [k for k in range(n) if sizes[k] < limit and k != int(np.argmax(sizes))]
    if not specks:
        return mask
    kept = mask & ~np.isin(labels, np.asarray(specks) + 1)
    dropped = tuple(int(sizes[k]) for k in specks)
    key = (case_id, tuple(paths), dropped)
    if key not in _NOTED_SPECKS:
        if len(_NOTED_SPECKS) >= _MAX_NOTED:
            _NOTED_SPECKS.clear()
        _NOTED_SPECKS.add(key)
        shown = ", ".join(map(str, dropped[:10])) + (", ..." if len(dropped) > 10 else "")
        warnings.warn(CaseWarning(case_id, (
            f"dropped {len(specks)} speck{'s' if len(specks) > 1 else ''} ({shown} pixels) from the mask "
            f"({', '.join(paths)}): regions under {MIN_REGION_PIXELS} pixels or under "
            f"{MIN_REGION_FRACTION:.1%} of the largest region ({largest} pixels) are stray marks, not lesions")),
            stacklevel=3)
    return kept


def _apply_lesion_policy(mask: np.ndarray, case_id, lesions, paths) -> np.ndarray:
    """Union, largest region, or the mask as it is, with a warning naming the case when regions are joined."""
    parts = lesion_components(mask)
    if len(parts) <= 1 or lesions != "largest":
        if len(parts) > 1 and lesions is None:
            sizes = ", ".join(str(int(p.sum())) for p in parts)
            warnings.warn(CaseWarning(case_id, (
                f"the mask ({', '.join(paths)}) holds {len(parts)} disjoint regions ({sizes} pixels); they are "
                "joined into one ROI. If they are separate lesions, give each its own row in cases.csv with "
                "its own mask; load_roi(lesions='largest' or 'union') and load_lesion_rois choose otherwise")),
                stacklevel=3)
        return mask
    sizes = [int(p.sum()) for p in parts]
    keep = int(np.argmax(sizes))
    warnings.warn(CaseWarning(case_id, (
        f"lesions='largest' keeps the largest of {len(parts)} disjoint regions ({sizes[keep]} of "
        f"{sum(sizes)} mask pixels)")), stacklevel=3)
    return parts[keep]


def _check_lesions_arg(lesions, paths, case_id) -> list[str]:
    if lesions is None or lesions in ("union", "largest"):
        return paths
    if lesions == "per-lesion":
        raise ValueError("lesions='per-lesion' gives several ROIs per case: use load_lesion_rois")
    if isinstance(lesions, bool) or not isinstance(lesions, (int, np.integer)):
        raise ValueError(f"lesions must be one of {', '.join(LESION_POLICIES)} or a mask index (int), got {lesions!r}")
    if not -len(paths) <= lesions < len(paths):
        raise CaseError(case_id, f"lesions={lesions} but the case has {len(paths)} mask file(s)",
                        f"use lesions='union' or an index between 0 and {len(paths) - 1}")
    return [paths[lesions]]


def load_roi(image_path, mask_paths, *, case_id, frame=None, label=None, lesions=None, spacing=None):
    """Read one case's image and lesion mask(s) and check that they make a usable ROI.

    Parameters
    ----------
    image_path : str or Path
        The image file (any format :func:`~sonorad.imaging.read_image` reads).
    mask_paths : str, Path or list
        One mask file, a list of them (one per lesion of the image), or a ``;``-separated string as
        in the ``mask`` column of cases.csv.
    case_id : str
        Named in every error and warning.
    frame : int, optional
        Image frame / slice (see :func:`~sonorad.imaging.read_image`); also used for a mask that is
        itself multi-frame.
    label : int, optional
        Label value to keep in label-map masks (see :func:`~sonorad.imaging.read_mask`); a label
        map without it is an error naming the labels found.
    lesions : None, "union", "largest" or int, default None
        How several masks or disjoint regions become one ROI: ``"union"`` joins them, ``"largest"``
        keeps the largest 8-connected region, an int keeps that mask file (0-based). ``None`` joins
        them too, with a :class:`~sonorad.errors.CaseWarning` naming the case when the ROI has more
        than one region. ``"per-lesion"`` is :func:`load_lesion_rois`.
    spacing : tuple of float, optional
        Pixel size (row, col) in mm that replaces the file's (e.g. from a ``pixel_size`` column of
        cases.csv for PNG files, which record none); ``meta["spacing_source"]`` becomes ``"given"``.

    Returns
    -------
    image : UltrasoundImage
    mask : numpy.ndarray
        Boolean (rows, cols), same shape as ``image.pixels``, at least ``MIN_ROI_PIXELS`` pixels and
        not the whole image.

    Raises
    ------
    CaseError
        Missing or corrupt image or mask file, frame out of range, label map without a label, label
        not found, image/mask size mismatch (both sizes given), an empty mask, a mask covering the
        whole image or at least ``MAX_ROI_FRACTION`` of it (an inverted mask), or a one-pixel ROI.

    Warns
    -----
    CaseWarning
        Disjoint regions joined without a declared policy; specks dropped (regions under
        ``MIN_REGION_PIXELS`` pixels or ``MIN_REGION_FRACTION`` of the largest region, removed under
        every policy and noted once per case and process); and any library warning raised while
        reading the case's files (re-issued with the case id).
    """
    paths = _check_lesions_arg(lesions, split_mask_paths(mask_paths), case_id)
    with case_warnings(case_id):
        image, mask = _read_roi(image_path, paths, case_id=case_id, frame=frame, label=label, spacing=spacing)
        mask = _drop_specks(mask, case_id, paths)
        mask = _apply_lesion_policy(mask, case_id, lesions, paths)
    _check_roi_size(mask, paths, case_id)
    return image, mask


def load_lesion_rois(image_path, mask_paths, *, case_id, frame=None, label=None, spacing=None):
    """``lesions: per-lesion``: one ROI per 8-connected region of the case's (union) mask.

    Parameters are those of :func:`load_roi`; specks are dropped first, as there. Each region
    becomes its own case, with the id
    ``<case_id>-lesion<k>`` (k = 1, 2, ... in raster order of the region's first pixel); a mask with a
    single region keeps the case id.

    Returns
    -------
    list of (str, UltrasoundImage, numpy.ndarray)
        ``(lesion_case_id, image, mask)`` per region; the image is shared.

    Raises
    ------
    CaseError
        As :func:`load_roi`; a region smaller than ``MIN_ROI_PIXELS`` is an error naming its id.
    """
    paths = split_mask_paths(mask_paths)
    with case_warnings(case_id):
        image, mask = _read_roi(image_path, paths, case_id=case_id, frame=frame, label=label, spacing=spacing)
        mask = _drop_specks(mask, case_id, paths)
    parts = lesion_components(mask)
    if len(parts) == 1:
        _check_roi_size(mask, paths, case_id)
        return [(case_id, image, mask)]
    out = []
    for k, part in enumerate(parts, start=1):
        _check_roi_size(part, paths, f"{case_id}-lesion{k}")
        out.append((f"{case_id}-lesion{k}", image, part))
    return out


def _read_roi(image_path, paths, *, case_id, frame, label, spacing):
    try:
        image = read_image(image_path, frame=frame)
    except ImageReadError as err:
        raise _case_error(case_id, "image", err) from err
    if spacing is not None:
        try:
            image = UltrasoundImage(image.pixels, tuple(spacing), image.path,
                                    {**image.meta, "spacing_source": "given"})
        except (TypeError, ValueError) as exc:
            raise CaseError(case_id, f"invalid pixel spacing {spacing!r}: {exc}",
                            "give two positive numbers (row, col) in mm") from exc

    mask = np.zeros(image.shape, dtype=bool)
    for i, path in enumerate(paths):
        role = "mask" if len(paths) == 1 else f"mask {i + 1} of {len(paths)}"
        lesion = _read_case_mask(path, case_id, frame, label, role)
        if lesion.shape != image.shape:
            hint = " (the mask looks transposed)" if lesion.shape == image.shape[::-1] else ""
            raise CaseError(
                case_id,
                f"size mismatch: image {image_path} is {_size(image.shape)} but {role} {path} is "
                f"{_size(lesion.shape)}{hint}",
                "use the mask drawn on this image, saved at the image's full size",
            )
        n = int(lesion.sum())
        if n == 0:
            raise CaseError(case_id, f"{role} {path} is empty: no lesion pixel",
                            "draw the lesion in the mask (non-zero pixels mark the lesion)")
        if lesion.all():
            raise CaseError(case_id, whole_image_message(role, path, lesion.shape), WHOLE_IMAGE_FIX)
        if n >= MAX_ROI_FRACTION * lesion.size:
            raise CaseError(case_id, f"{role} {path} marks {n / lesion.size:.1%} of the image as lesion ({n} of "
                                     f"{lesion.size} pixels); a lesion ROI must stay under {MAX_ROI_FRACTION:.0%} "
                                     "of the image", INVERTED_FIX)
        mask |= lesion
    return image, mask


#: Said when a mask marks every pixel as lesion.
WHOLE_IMAGE_FIX = ("check the mask export: the lesion must be non-zero on a zero background (invert a mask drawn "
                   "black on white), and the mask must be the lesion's, not a blank or all-white image")


def whole_image_message(role: str, path, shape) -> str:
    """The message for a mask that covers every pixel of the image (often an inverted or blank mask)."""
    return (f"{role} {path} covers the whole image ({_size(shape)}, every pixel is lesion), so there is no "
            "background: the mask is probably inverted or blank")


def _check_roi_size(mask: np.ndarray, paths, case_id) -> None:
    n = int(mask.sum())
    if n < MIN_ROI_PIXELS:
        raise CaseError(
            case_id,
            f"the ROI has only {n} pixel ({', '.join(paths)}); PyRadiomics needs at least {MIN_ROI_PIXELS}",
            "check the mask: it should cover the whole lesion",
        )


def bounding_box(mask, margin: float = 0.1, square: bool = True) -> tuple[int, int, int, int]:
    """Box around the ROI, widened by a margin and optionally squared around its centre.

    Parameters
    ----------
    mask : numpy.ndarray
        2D boolean (or 0/non-zero) array with at least one lesion pixel.
    margin : float, default 0.1
        Added on each side as a fraction of the box's side: rows by ``margin * height``, columns by
        ``margin * width``, rounded half up to whole pixels.
    square : bool, default True
        Grow the shorter side to the longer one, centred on the box (an odd difference puts the extra
        pixel after the box).

    Returns
    -------
    tuple of int
        ``(r0, r1, c0, c1)``, half-open: rows ``r0 <= r < r1``, cols ``c0 <= c < c1``. The box may
        extend beyond the image (negative or past the size); :func:`crop_to_roi` pads with zeros.

    Examples
    --------
    >>> m = np.zeros((20, 20), bool); m[5:15, 8:12] = True
    >>> bounding_box(m, margin=0.1, square=True)
    (4, 16, 4, 16)
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2D (rows, cols), got shape {mask.shape}")
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a fraction >= 0 of the box side, got {margin!r}")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("mask is empty: no lesion pixel to put a box around")
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    # Half-up rounding (Python's round() would send 0.5 to 0 and 1.5 to 2).
    pad_r, pad_c = int(np.floor(margin * (r1 - r0) + 0.5)), int(np.floor(margin * (c1 - c0) + 0.5))
    r0, r1, c0, c1 = r0 - pad_r, r1 + pad_r, c0 - pad_c, c1 + pad_c
    if square:
        side = max(r1 - r0, c1 - c0)
        grow_r, grow_c = side - (r1 - r0), side - (c1 - c0)
        r0, r1 = r0 - grow_r // 2, r1 + (grow_r - grow_r // 2)
        c0, c1 = c0 - grow_c // 2, c1 + (grow_c - grow_c // 2)
    return r0, r1, c0, c1


def _crop_padded(array: np.ndarray, box) -> np.ndarray:
    r0, r1, c0, c1 = box
    out = np.zeros((r1 - r0, c1 - c0) + array.shape[2:], dtype=array.dtype)
    h, w = array.shape[:2]
    sr0, sr1, sc0, sc1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    if sr0 < sr1 and sc0 < sc1:
        out[sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] = array[sr0:sr1, sc0:sc1]
    return out


def crop_to_roi(pixels, mask, margin: float = 0.1, square: bool = True):
    """Crop an image and its mask to the ROI's :func:`bounding_box`, padding with zeros outside.

    Parameters
    ----------
    pixels : numpy.ndarray or UltrasoundImage
        Image (rows, cols) or (rows, cols, channels).
    mask : numpy.ndarray
        Boolean (rows, cols), same rows and cols as ``pixels``.
    margin, square
        As in :func:`bounding_box`.

    Returns
    -------
    crop : numpy.ndarray
        Same dtype as ``pixels``; square when ``square`` is True.
    crop_mask : numpy.ndarray
        Boolean, same rows and cols as ``crop``.
    """
    if isinstance(pixels, UltrasoundImage):
        pixels = pixels.pixels
    pixels, mask = np.asarray(pixels), np.asarray(mask)
    if pixels.ndim not in (2, 3) or pixels.shape[:2] != mask.shape:
        raise ValueError(f"pixels {pixels.shape} and mask {mask.shape} must share (rows, cols)")
    box = bounding_box(mask, margin=margin, square=square)
    return _crop_padded(pixels, box), _crop_padded(mask.astype(bool), box)
