"""The ROI drawn in the browser: polygons and brush strokes, rasterized on the server.

The page sends what was drawn, not pixels, and the server turns it into the boolean mask the model
sees. So the mask is defined by one documented rule, whatever the browser's canvas anti-aliasing:

* coordinates are image pixels, ``x`` to the right (column) and ``y`` down (row), with the origin at
  the top-left corner of the top-left pixel; pixel (row ``i``, col ``j``) has its centre at
  ``(x, y) = (j + 0.5, i + 0.5)``;
* a **polygon** covers the pixels whose centre lies inside it (even-odd rule, matplotlib's
  ``Path.contains_points``);
* a **brush** stroke covers the pixels whose centre is within ``radius`` of the stroke's polyline;
* an **erase** stroke removes the pixels it covers, by the brush rule;
* shapes apply in order, so undo in the browser is "drop the last shape".

JSON accepted (form field ``roi``): ``{"shapes": [{"type": "polygon", "points": [[x, y], ...]},
{"type": "brush", "radius": 6, "points": [[x, y], ...]}, {"type": "erase", ...}]}``; a bare list of
points ``[[x, y], ...]`` is one polygon.
"""

from __future__ import annotations

import json
import math

import numpy as np

from sonorad.serve.uploads import UploadError

__all__ = ["MAX_POINTS", "MAX_SHAPES", "parse_roi", "rasterize_polygon", "rasterize_roi", "rasterize_stroke"]

#: Bounds on what one request may draw (a hostile client could send millions of points).
MAX_SHAPES = 200
MAX_POINTS = 20000


def _error(message: str, fix: str = "draw the lesion outline again") -> UploadError:
    return UploadError(message, field="roi", fix=fix)


def _points(raw, where: str) -> np.ndarray:
    if not isinstance(raw, list) or not raw:
        raise _error(f"{where}: 'points' must be a non-empty list of [x, y] pairs")
    if len(raw) > MAX_POINTS:
        raise _error(f"{where}: {len(raw)} points, more than the limit of {MAX_POINTS}",
                     "simplify the outline")
    try:
        pts = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _error(f"{where}: 'points' must be [x, y] pairs of numbers ({exc})") from exc
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.all(np.isfinite(pts)):
        raise _error(f"{where}: 'points' must be [x, y] pairs of finite numbers")
    return pts


def parse_roi(text: str) -> list[dict]:
    """Parse the ``roi`` form field into a list of shapes ``{"type", "points" (n, 2) array, "radius"}``.

    Raises
    ------
    UploadError
        Not JSON, an unknown shape type, a missing or bad radius, too many shapes or points.
    """
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise _error(f"the ROI is not valid JSON ({exc})") from exc
    if isinstance(data, list):
        data = {"shapes": [{"type": "polygon", "points": data}]}
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise _error("the ROI must be a JSON object {\"shapes\": [...]} or a list of [x, y] points")
    shapes = data["shapes"]
    if len(shapes) > MAX_SHAPES:
        raise _error(f"the ROI has {len(shapes)} shapes, more than the limit of {MAX_SHAPES}")
    if sum(len(s.get("points", ())) for s in shapes if isinstance(s, dict)) > MAX_POINTS:
        raise _error(f"the ROI has more than {MAX_POINTS} points in all, the limit", "simplify the outline")
    parsed = []
    for i, shape in enumerate(shapes):
        where = f"ROI shape {i + 1}"
        if not isinstance(shape, dict) or shape.get("type") not in ("polygon", "brush", "erase"):
            raise _error(f"{where}: 'type' must be 'polygon', 'brush' or 'erase'")
        item = {"type": shape["type"], "points": _points(shape.get("points"), where)}
        if item["type"] == "polygon":
            if len(item["points"]) < 3:
                raise _error(f"{where}: a polygon needs at least 3 points, got {len(item['points'])}")
        else:
            radius = shape.get("radius")
            if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not (0 < radius <= 500):
                raise _error(f"{where}: 'radius' must be a number of pixels between 0 and 500, got {radius!r}")
            item["radius"] = float(radius)
        parsed.append(item)
    return parsed


def _window(points: np.ndarray, pad: float, shape: tuple[int, int]):
    """Row/col slices of the pixels whose centres may be covered, clipped to the image."""
    rows, cols = shape
    c0 = max(math.floor(points[:, 0].min() - pad), 0)
    c1 = min(math.ceil(points[:, 0].max() + pad) + 1, cols)
    r0 = max(math.floor(points[:, 1].min() - pad), 0)
    r1 = min(math.ceil(points[:, 1].max() + pad) + 1, rows)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _centres(rs: slice, cs: slice) -> tuple[np.ndarray, np.ndarray]:
    xs = np.arange(cs.start, cs.stop, dtype=np.float64) + 0.5
    ys = np.arange(rs.start, rs.stop, dtype=np.float64) + 0.5
    return np.meshgrid(xs, ys)


def rasterize_polygon(points, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixels whose centre lies inside the polygon ``points`` ((n, 2) x, y).

    Examples
    --------
    >>> rasterize_polygon([[1, 1], [3, 1], [3, 3], [1, 3]], (4, 4)).astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """
    from matplotlib.path import Path as MplPath

    points = np.asarray(points, dtype=np.float64)
    mask = np.zeros(shape, dtype=bool)
    rs, cs = _window(points, 0.0, shape)
    if rs.stop <= rs.start or cs.stop <= cs.start:
        return mask
    x, y = _centres(rs, cs)
    inside = MplPath(points, closed=False).contains_points(np.column_stack([x.ravel(), y.ravel()]), radius=0.0)
    mask[rs, cs] = inside.reshape(x.shape)
    return mask


def rasterize_stroke(points, radius: float, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixels whose centre is within ``radius`` of the polyline ``points``."""
    points = np.asarray(points, dtype=np.float64)
    mask = np.zeros(shape, dtype=bool)
    rs, cs = _window(points, radius, shape)
    if rs.stop <= rs.start or cs.stop <= cs.start:
        return mask
    x, y = _centres(rs, cs)
    best = np.full(x.shape, np.inf)
    starts = points if len(points) == 1 else points[:-1]
    ends = points if len(points) == 1 else points[1:]
    for (ax, ay), (bx, by) in zip(starts, ends, strict=True):
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else np.clip(((x - ax) * dx + (y - ay) * dy) / length2, 0.0, 1.0)
        np.minimum(best, (x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2, out=best)
    mask[rs, cs] = best <= radius * radius
    return mask


def rasterize_roi(shapes: list[dict], shape: tuple[int, int]) -> np.ndarray:
    """Apply parsed shapes (:func:`parse_roi`) in order to an empty mask of ``shape`` (rows, cols)."""
    mask = np.zeros(shape, dtype=bool)
    for item in shapes:
        if item["type"] == "polygon":
            mask |= rasterize_polygon(item["points"], shape)
        elif item["type"] == "brush":
            mask |= rasterize_stroke(item["points"], item["radius"], shape)
        else:
            mask &= ~rasterize_stroke(item["points"], item["radius"], shape)
    return mask
