"""The calculator's box-to-contour flow: ``POST /api/propose`` with a box-prompted segmenter.

When ``sonorad serve --segmenter DIR`` is given, the page offers a *Box* tool: the user drags a box
around the lesion, the server proposes its outline (:func:`sonorad.segment.predict.propose_mask`),
and the page shows it as a polygon that the brush and eraser can edit before the risk is calculated.

Routes added by :func:`install_propose`
---------------------------------------
``GET /api/propose``   ``{"available": true, "description": "..."}``: what proposes the contours
``POST /api/propose``  multipart ``image`` (read as ``/api/predict`` reads it, same limits), ``box``
                       (``x0,y0,x1,y1`` or ``[x0, y0, x1, y1]`` in image pixels, the right and bottom
                       edges exclusive), optional ``frame`` (no pixel size is needed)
                       -> ``{"polygon", "confidence", "flags", "messages", "message", "mask", "pixels",
                       "box"}``

The polygon is the proposed mask's outline in the drawn ROI's coordinates (:mod:`sonorad.serve.roi`:
``x`` the column and ``y`` the row, the origin at the top-left corner of the top-left pixel), traced
halfway between lesion and background pixel centres and thinned to at most :data:`MAX_POLYGON_POINTS`
points, so that rasterizing it by the drawn-ROI rule gives back the proposed mask up to the thinning.

A bad box (not four numbers, outside the image, degenerate, under 4 pixels on a side) is a 422 naming
``box`` with the fix. A proposal with flags is answered 200 with the flags and a plain-language
message; when nothing lesion-like is found in the box (the ``empty`` flag) the answer is 422: the
outline must be drawn by hand.

Bounds: the segmenter is loaded once when the server starts; the network sees one crop of a fixed size
whatever the image, with one torch thread; proposals run one at a time, and a request that waits for
its turn longer than the processing time limit (``sonorad serve --request-timeout``) is answered 504.
"""

from __future__ import annotations

import threading
import time

import numpy as np
# At module level: FastAPI resolves the endpoint annotations in this module's namespace.
from fastapi import File, Form, Request, UploadFile

from sonorad.errors import CaseError
from sonorad.serve.app import _clean_text, _error_response, _read_upload, encode_mask
from sonorad.serve.jsonin import load_json
from sonorad.serve.uploads import UploadError, read_uploaded_image

__all__ = ["FLAG_MESSAGES", "MAX_POLYGON_POINTS", "box_from_field", "install_propose", "mask_polygon",
           "segmenter_info"]

#: Most points of a proposed contour (a smooth lesion outline needs far fewer).
MAX_POLYGON_POINTS = 400

_BOX_FIX = ("drag a box around the whole lesion, inside the image, at least 4 pixels wide and high; "
            "the box is x0,y0,x1,y1 in image pixels (left, top, right, bottom)")
_BY_HAND = "draw the outline by hand (polygon or brush)"

#: What each proposal flag means for the user, in plain words.
FLAG_MESSAGES = {
    "empty": "No lesion-like region was found in the box.",
    "box_edge_all_round": "The proposed outline follows the box itself: the lesion may be larger than the box, "
                          "or its border was not found. Draw a larger box, or correct the outline.",
    "several_blobs": "More than one region was found; only the largest is kept. Check that it is the lesion.",
    "low_confidence": "The segmenter is unsure of this outline. Check it closely and correct it with the brush "
                      "or eraser.",
    "low_contrast": "Nothing stands out from its surroundings inside the outline. Check that the box is on the "
                    "lesion.",
}


def segmenter_info(segmenter) -> dict:
    """``{"available", "description"}`` of a segmenter (or of none), for the page and ``/api/schema``."""
    if segmenter is None:
        return {"available": False, "description": None}
    meta = getattr(segmenter, "meta", {}) or {}
    parts = [f"box-prompted segmenter ({meta.get('encoder', 'unknown encoder')} U-Net)"]
    cohort = meta.get("cohort") or {}
    if cohort.get("n_cases"):
        parts.append(f"trained on {cohort['n_cases']} images of {cohort.get('n_patients', '?')} patients")
    dice = (meta.get("validation") or {}).get("dice_median")
    if isinstance(dice, (int, float)) and np.isfinite(dice):
        parts.append(f"validation median Dice {dice:.2f}")
    return {"available": True, "description": ", ".join(parts)}


def box_from_field(text, shape) -> tuple[float, float, float, float]:
    """The box of the ``box`` form field, checked against an image of ``shape`` (rows, cols).

    ``text`` is ``"x0,y0,x1,y1"`` or the JSON ``[x0, y0, x1, y1]`` (read by
    :func:`sonorad.serve.jsonin.load_json`).

    Raises
    ------
    UploadError
        Not four numbers, a degenerate box, a box not inside the image, a box under 4 pixels on a side
        (422 naming ``box``, with the fix).
    """
    from sonorad.imaging.boxes import check_box, parse_box

    if text is None or not str(text).strip():
        raise UploadError("no box was sent", field="box", fix=_BOX_FIX)
    text = str(text).strip()
    cell = load_json(text, field="box", fix=_BOX_FIX) if text.startswith("[") else text
    try:
        return check_box(parse_box(cell), shape)
    except (CaseError, TypeError, ValueError) as exc:
        message = exc.problem.message if isinstance(exc, CaseError) else f"box {text[:80]!r} is not four numbers"
        raise UploadError(message, field="box", fix=_BOX_FIX) from None


def mask_polygon(mask: np.ndarray, max_points: int = MAX_POLYGON_POINTS) -> list[list[float]]:
    """The outline of a mask's largest region as a polygon in the drawn ROI's coordinates.

    The contour is traced at level 0.5 of the (padded) mask, halfway between lesion and background
    pixel centres (:func:`skimage.measure.find_contours`), shifted by half a pixel to the ROI
    convention (pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``), and thinned
    (:func:`skimage.measure.approximate_polygon`, the tolerance doubled from 0.25 pixel until at most
    ``max_points`` remain). Holes are not traced. An empty mask gives ``[]``.
    """
    from skimage.measure import approximate_polygon, find_contours

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    padded = np.pad(mask, 1).astype(np.float32)
    contours = [c for c in find_contours(padded, 0.5) if len(c) >= 3]
    if not contours:
        return []

    def area(c):
        return 0.5 * abs(float(np.dot(c[:, 0], np.roll(c[:, 1], 1)) - np.dot(c[:, 1], np.roll(c[:, 0], 1))))

    contour = max(contours, key=area)
    tol, points = 0.25, approximate_polygon(contour, 0.25)
    while len(points) - 1 > max_points:
        tol *= 2.0
        points = approximate_polygon(contour, tol)
    points = points[:-1] if len(points) > 1 and np.allclose(points[0], points[-1]) else points
    # padded (row, col) -> image (x, y): minus the pad, plus half a pixel.
    return [[round(float(c) - 0.5, 3), round(float(r) - 0.5, 3)] for r, c in points]


class _Proposer:
    """The loaded segmenter and the lock that runs its proposals one at a time."""

    def __init__(self, calculator, segmenter):
        self.calculator = calculator
        self.segmenter = segmenter
        self.lock = threading.Lock()

    def propose(self, image_upload, box_text, frame, timeout: float | None) -> dict:
        from sonorad.segment.predict import propose_mask

        started = time.monotonic()
        calc = self.calculator
        data = _read_upload(image_upload)
        image = read_uploaded_image(data, calc.limits, frame=frame,
                                    filename=_clean_text(getattr(image_upload, "filename", None), "image", 200))
        box = box_from_field(box_text, image.shape)
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        if not self.lock.acquire(timeout=-1 if left is None else left):
            raise _Busy(timeout)
        try:
            proposal = propose_mask(self.segmenter, image.pixels, box)
        finally:
            self.lock.release()
        mask, confidence, flags = proposal
        if "empty" in flags:
            raise UploadError("no lesion-like region was found in the box: nothing can be proposed",
                              field="box", fix=f"draw a box that holds the whole lesion, or {_BY_HAND}")
        messages = [FLAG_MESSAGES.get(f, f) for f in flags]
        polygon = mask_polygon(mask)
        return {"polygon": polygon, "confidence": round(float(confidence), 4), "flags": list(flags),
                "messages": messages,
                "message": " ".join(messages) if messages else "Check the proposed outline; edit it with the brush "
                                                              "or eraser if needed.",
                "mask": encode_mask(mask), "pixels": int(mask.sum()), "box": [float(v) for v in box],
                "rows": int(image.shape[0]), "cols": int(image.shape[1])}


class _Busy(Exception):
    def __init__(self, seconds):
        self.seconds = seconds


def install_propose(app, calculator, segmenter) -> None:
    """Add ``GET`` and ``POST /api/propose`` to the calculator's FastAPI ``app``.

    Parameters
    ----------
    app : fastapi.FastAPI
        The application of :func:`sonorad.serve.app.create_app` (its ``.fastapi``).
    calculator : sonorad.serve.app.Calculator
        Its upload limits apply to the image, as for a prediction (no pixel size is needed to propose).
    segmenter : sonorad.segment.model.Segmenter
        Loaded once (:func:`sonorad.segment.io.load_segmenter`); only read here.
    """
    proposer = _Proposer(calculator, segmenter)
    info = segmenter_info(segmenter)
    app.state.segmenter = info

    @app.exception_handler(_Busy)
    async def _busy(request, exc: _Busy):
        return _error_response(504, f"the proposal waited for the segmenter longer than {exc.seconds:g} s, the "
                                    "processing time limit", "box", "send it again in a moment, or "
                               + _BY_HAND)

    @app.get("/api/propose")
    def propose_info():
        return info

    @app.post("/api/propose")
    def propose(
        request: Request,
        image: UploadFile = File(..., description="PNG, JPEG, BMP or DICOM file"),
        box: str = Form(..., description="x0,y0,x1,y1 or [x0, y0, x1, y1] in image pixels"),
        frame: int | None = Form(None),
    ):
        return proposer.propose(image, box, frame, request.scope.get("sonorad.max_request_seconds"))
