"""Lesion boxes: parse them, derive them from masks, jitter them, check them against the image.

A box is ``(x0, y0, x1, y1)`` in pixels of the full image: ``x`` is the column, ``y`` the row,
``(x0, y0)`` the top-left corner and ``(x1, y1)`` the bottom-right corner, exclusive (the box of a
mask whose lesion spans columns 10..19 has ``x0 = 10, x1 = 20``). Coordinates may be fractional.
In cases.csv a box is one cell, ``x0,y0,x1,y1`` (brackets and spaces allowed).
"""

from __future__ import annotations

import math
import re

import numpy as np

from sonorad.errors import CaseError

__all__ = ["MIN_BOX_SIDE", "Box", "parse_box", "format_box", "box_from_mask", "jitter_box", "check_box", "clip_box"]

#: Smallest box side in pixels a segmenter is asked to work on; a smaller box is an error.
MIN_BOX_SIDE = 4.0

Box = tuple[float, float, float, float]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_BOX_FIX = "write the box as x0,y0,x1,y1 in pixels (left, top, right, bottom), e.g. 120,80,260,190"


def parse_box(cell, case_id=None) -> Box:
    """A box from a ``box`` cell: ``"x0,y0,x1,y1"`` (also ``[x0, y0, x1, y1]`` or a sequence of 4 numbers).

    Raises
    ------
    CaseError
        The cell is empty or is not four numbers; the message names the case and the cell.

    Examples
    --------
    >>> parse_box("[10, 20, 30.5, 40]")
    (10.0, 20.0, 30.5, 40.0)
    """
    if isinstance(cell, (list, tuple, np.ndarray)):
        values = [float(v) for v in cell]
    else:
        text = "" if cell is None or (isinstance(cell, float) and math.isnan(cell)) else str(cell).strip()
        if not text:
            raise CaseError(case_id, "the box cell is empty", _BOX_FIX + ", or give a mask to derive it from")
        inner = text.strip("[]() ")
        parts = [p for p in re.split(r"[,;\s]+", inner) if p]
        if len(parts) != 4 or not all(re.fullmatch(_NUMBER, p) for p in parts):
            raise CaseError(case_id, f"box {text!r} is not four numbers", _BOX_FIX)
        values = [float(p) for p in parts]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise CaseError(case_id, f"box {values!r} is not four finite numbers", _BOX_FIX)
    return tuple(values)  # type: ignore[return-value]


def format_box(box: Box) -> str:
    """The ``box`` cell text of ``box`` (integers written without a decimal point)."""
    return ",".join(f"{v:g}" for v in box)


def box_from_mask(mask) -> Box:
    """The tight box of a mask's non-zero pixels, ``(x0, y0, x1, y1)`` with exclusive ends.

    Raises
    ------
    ValueError
        The mask is not 2D or has no non-zero pixel.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2D (rows, cols), got shape {mask.shape}")
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("the mask is empty: no box can be derived from it")
    return (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))


def clip_box(box: Box, shape) -> Box:
    """``box`` clipped to an image of ``shape`` (rows, cols)."""
    h, w = shape[:2]
    x0, y0, x1, y1 = box
    return (min(max(x0, 0.0), w), min(max(y0, 0.0), h), min(max(x1, 0.0), w), min(max(y1, 0.0), h))


def jitter_box(box: Box, rng: np.random.Generator, fraction: float, shape=None) -> Box:
    """Move each edge of ``box`` independently by a uniform draw in ``+-fraction`` of the box's side.

    The x edges move by up to ``fraction * width``, the y edges by up to ``fraction * height``;
    with ``shape`` the result is clipped to the image. The box never turns inside out: each side
    keeps at least half of its original length.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    d = rng.uniform(-fraction, fraction, size=4)
    nx0, nx1 = x0 + d[0] * w, x1 + d[2] * w
    ny0, ny1 = y0 + d[1] * h, y1 + d[3] * h
    if nx1 - nx0 < 0.5 * w:
        mid = (nx0 + nx1) / 2
        nx0, nx1 = mid - 0.25 * w, mid + 0.25 * w
    if ny1 - ny0 < 0.5 * h:
        mid = (ny0 + ny1) / 2
        ny0, ny1 = mid - 0.25 * h, mid + 0.25 * h
    out = (float(nx0), float(ny0), float(nx1), float(ny1))
    return clip_box(out, shape) if shape is not None else out


def check_box(box: Box, shape, case_id=None, min_side: float = MIN_BOX_SIDE) -> Box:
    """Refuse a box the segmenter cannot work with; return it unchanged otherwise.

    Parameters
    ----------
    box : tuple of 4 float
        ``(x0, y0, x1, y1)`` in pixels.
    shape : tuple
        The image's (rows, cols).
    case_id : str, optional
        Named in the error.
    min_side : float
        Smallest accepted width and height in pixels.

    Raises
    ------
    CaseError
        A degenerate box (right <= left or bottom <= top), a box smaller than ``min_side`` pixels,
        or a box that is not inside the image (each message gives the box and the image size).
    """
    h, w = int(shape[0]), int(shape[1])
    x0, y0, x1, y1 = box
    text = f"box ({format_box(box)})"
    if not all(math.isfinite(v) for v in box):
        raise CaseError(case_id, f"{text} has a value that is not a finite number", _BOX_FIX)
    if x1 <= x0 or y1 <= y0:
        raise CaseError(case_id, f"{text} is degenerate: x1 must exceed x0 and y1 must exceed y0",
                        _BOX_FIX + " (x1, y1 are the right and bottom edges)")
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise CaseError(case_id, f"{text} is not inside the image ({w} px wide, {h} px high)",
                        f"keep 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h}; check that x is the column and y the row")
    if x1 - x0 < min_side or y1 - y0 < min_side:
        raise CaseError(case_id, f"{text} is {x1 - x0:g} x {y1 - y0:g} px, smaller than {min_side:g} px on a side",
                        "draw the box around the whole lesion")
    return box
