"""The ROI drawn in the browser: polygons and brush strokes, rasterized on the server.

The page sends what was drawn, not pixels, and the server turns it into the boolean mask the model
sees. So the mask is defined by one documented rule, whatever the browser's canvas anti-aliasing:

* coordinates are image pixels, ``x`` to the right (column) and ``y`` down (row), with the origin at
  the top-left corner of the top-left pixel; pixel (row ``i``, col ``j``) has its centre at
  ``(x, y) = (j + 0.5, i + 0.5)``;
* each shape's points are first **simplified**: a point closer than ``SIMPLIFY_PX`` (0.5 pixel) to the
  previous kept point is dropped (the last point of a stroke is always kept). The mask then differs
  from that of the unsimplified outline only within half a pixel of it;
* a **polygon** covers the pixels whose centre lies inside it (even-odd rule, with matplotlib's
  ``Path.contains_points`` treatment of centres exactly on an edge);
* a **brush** stroke covers the pixels whose centre is within ``radius`` of the stroke's polyline;
* an **erase** stroke removes the pixels it covers, by the brush rule;
* shapes apply in order, so undo in the browser is "drop the last shape".

The cost is bounded before any pixel is touched: :func:`roi_work` counts the work of the shapes on
an image of the given size (per image row that a polygon edge crosses, per row within ``radius`` of a
stroke segment, per pixel of each shape's bounding window), and :func:`rasterize_roi` refuses more
than ``MAX_WORK`` with a 422 naming ``roi``. It also refuses a mask whose outline is longer than
``MAX_OUTLINE`` pixel edges (:func:`check_outline`): the model's shape features cost its square.

Rasterizing is row by row: a polygon by an even-odd scanline fill (the edge crossings of each
pixel-centre row), a stroke by the covered interval of each segment's capsule in each row. Both are
exact for the rule above: the pixels next to each computed boundary are decided by the same
floating-point test as the rule's per-pixel definition.

JSON accepted (form field ``roi``): ``{"shapes": [{"type": "polygon", "points": [[x, y], ...]},
{"type": "brush", "radius": 6, "points": [[x, y], ...]}, {"type": "erase", ...}]}``; a bare list of
points ``[[x, y], ...]`` is one polygon.
"""

from __future__ import annotations

import math

import numpy as np

from sonorad.serve.jsonin import load_json
from sonorad.serve.uploads import UploadError

__all__ = ["MAX_OUTLINE", "MAX_POINTS", "MAX_SHAPES", "MAX_WORK", "ROI_ORIGINS", "SIMPLIFY_PX", "check_outline",
           "check_roi_origin", "outline_length", "parse_roi", "rasterize_polygon", "rasterize_roi", "rasterize_stroke", "roi_work", "simplify"]

#: Bounds on what one request may draw (a hostile client could send millions of points). A hand-drawn
#: outline has a few hundred points; these leave room for many strokes.
MAX_SHAPES = 200
MAX_POINTS = 10000
MAX_RADIUS = 500
#: Points closer than this (pixels) to the previous kept point are dropped.
SIMPLIFY_PX = 0.5
#: Largest ROI work (see :func:`roi_work`): one unit is about 0.2 microseconds of rasterizing, so the
#: limit is about 2 s on one core.
MAX_WORK = 10_000_000
#: Longest outline of a drawn ROI, in pixel edges between the ROI and the rest: PyRadiomics' 2D
#: shape features cost the square of it (about 2 s at this limit). A smooth outline of a lesion as
#: large as a 4096 x 4096 image has about 16,000.
MAX_OUTLINE = 40_000
#: Work units of one polygon edge-row crossing, one stroke segment-row, and pixels per unit of a window.
_POLYGON_ROW, _STROKE_ROW, _PIXELS_PER_UNIT = 1, 10, 25
_CHUNK = 1 << 20  # row crossings handled at once (bounds the temporary arrays)


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
    if np.abs(pts).max() > 1e6:
        raise _error(f"{where}: a point lies more than 1,000,000 pixels from the image",
                     "draw on the image; coordinates are image pixels")
    return pts


def simplify(points, tol: float = SIMPLIFY_PX, keep_last: bool = False) -> np.ndarray:
    """Drop each point closer than ``tol`` to the previous kept point (the first is always kept).

    Examples
    --------
    >>> simplify([[0, 0], [0.2, 0], [1, 0], [1, 0.1]]).tolist()
    [[0.0, 0.0], [1.0, 0.0]]
    >>> simplify([[0, 0], [0.2, 0], [1, 0], [1, 0.1]], keep_last=True).tolist()
    [[0.0, 0.0], [1.0, 0.0], [1.0, 0.1]]
    """
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 2:
        return points
    step = np.hypot(*np.diff(points, axis=0).T)
    if np.all(step >= tol):  # the usual case: nothing to drop, no Python loop
        return points
    keep, last = [0], points[0]
    for i in range(1, len(points)):
        if math.hypot(points[i, 0] - last[0], points[i, 1] - last[1]) >= tol:
            keep.append(i)
            last = points[i]
    if keep_last and keep[-1] != len(points) - 1:
        keep.append(len(points) - 1)
    return points[keep]


def parse_roi(text: str) -> list[dict]:
    """Parse the ``roi`` form field into a list of shapes ``{"type", "points" (n, 2) array, "radius"}``.

    Points are simplified (:func:`simplify`); the limits apply to the points as sent.

    Raises
    ------
    UploadError
        Not JSON (or too large or too deeply nested), an unknown shape type, a missing or bad radius,
        too many shapes or points.
    """
    data = load_json(text, field="roi", what="the ROI",
                     fix='send {"shapes": [{"type": "polygon", "points": [[x, y], ...]}, ...]}')
    if isinstance(data, list):
        data = {"shapes": [{"type": "polygon", "points": data}]}
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise _error("the ROI must be a JSON object {\"shapes\": [...]} or a list of [x, y] points")
    shapes = data["shapes"]
    if len(shapes) > MAX_SHAPES:
        raise _error(f"the ROI has {len(shapes)} shapes, more than the limit of {MAX_SHAPES}")
    total = sum(len(s["points"]) for s in shapes if isinstance(s, dict) and isinstance(s.get("points"), list))
    if total > MAX_POINTS:
        raise _error(f"the ROI has {total} points in all, more than the limit of {MAX_POINTS}",
                     "simplify the outline")
    parsed = []
    for i, shape in enumerate(shapes):
        where = f"ROI shape {i + 1}"
        if not isinstance(shape, dict) or shape.get("type") not in ("polygon", "brush", "erase"):
            raise _error(f"{where}: 'type' must be 'polygon', 'brush' or 'erase'")
        points = _points(shape.get("points"), where)
        item = {"type": shape["type"]}
        if item["type"] == "polygon":
            if len(points) < 3:
                raise _error(f"{where}: a polygon needs at least 3 points, got {len(points)}")
            item["points"] = simplify(points)
        else:
            radius = shape.get("radius")
            if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not (0 < radius <= MAX_RADIUS):
                raise _error(f"{where}: 'radius' must be a number of pixels between 0 and {MAX_RADIUS}, "
                             f"got {radius!r}")
            item["radius"] = float(radius)
            item["points"] = simplify(points, keep_last=True)
        parsed.append(item)
    return parsed


# ------------------------------------------------------------------------------ geometry


def _window(points: np.ndarray, pad: float, shape: tuple[int, int]):
    """Row/col slices of the pixels whose centres may be covered, clipped to the image."""
    rows, cols = shape
    c0 = max(math.floor(points[:, 0].min() - pad), 0)
    c1 = min(math.ceil(points[:, 0].max() + pad) + 1, cols)
    r0 = max(math.floor(points[:, 1].min() - pad), 0)
    r1 = min(math.ceil(points[:, 1].max() + pad) + 1, rows)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _edges(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygon edges as (start, end) arrays, closing edge last."""
    return points, np.roll(points, -1, axis=0)


def _crossing_rows(lo: np.ndarray, hi: np.ndarray, rs: slice) -> tuple[np.ndarray, np.ndarray]:
    """First and last row ``i`` in ``rs`` with ``lo < i + 0.5 <= hi`` (last < first: none)."""
    first = np.floor(lo - 0.5) + 1
    first = np.where(first - 0.5 > lo, first - 1, first)
    first = np.where(first + 0.5 > lo, first, first + 1)
    last = np.floor(hi - 0.5)
    last = np.where(last + 1.5 <= hi, last + 1, last)
    last = np.where(last + 0.5 <= hi, last, last - 1)
    return np.maximum(first, rs.start).astype(np.int64), np.minimum(last, rs.stop - 1).astype(np.int64)


def _expand(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [first, last] per item: (item index, row) of every row of every range."""
    counts = np.maximum(last - first + 1, 0)
    item = np.repeat(np.arange(len(first)), counts)
    offsets = np.arange(item.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return item, first[item] + offsets


def _item_rows(first: np.ndarray, last: np.ndarray, n_rows: int):
    """:func:`_expand` in chunks of about ``_CHUNK`` pairs (memory stays bounded): yields
    (item index, row) arrays, skipping empty chunks."""
    per_chunk = max(1, _CHUNK // max(1, n_rows))
    for lo in range(0, len(first), per_chunk):
        item, row = _expand(first[lo:lo + per_chunk], last[lo:lo + per_chunk])
        if item.size:
            yield item + lo, row


def _polygon_spans(points: np.ndarray, shape) -> int:
    rs, _ = _window(points, 0.0, shape)
    start, end = _edges(points)
    first, last = _crossing_rows(np.minimum(start[:, 1], end[:, 1]), np.maximum(start[:, 1], end[:, 1]), rs)
    return int(np.maximum(last - first + 1, 0).sum())


def rasterize_polygon(points, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixels whose centre lies inside the polygon ``points`` ((n, 2) x, y).

    Even-odd rule by scanlines: an edge from ``(x0, y0)`` to ``(x1, y1)`` crosses the row of centre
    ``ty`` when exactly one of ``y0 >= ty``, ``y1 >= ty`` holds, and toggles the centres ``tx`` with
    ``((y1 - ty) * (x0 - x1) >= (x1 - tx) * (y0 - y1)) == (y1 >= ty)`` (matplotlib's test, so a centre
    exactly on an edge is decided as ``Path.contains_points`` decides it). Cost: the rows crossed by
    the edges plus the pixels of the bounding window, not pixels x points.

    Examples
    --------
    >>> rasterize_polygon([[1, 1], [3, 1], [3, 3], [1, 3]], (4, 4)).astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """
    points = np.asarray(points, dtype=np.float64)
    mask = np.zeros(shape, dtype=bool)
    rs, cs = _window(points, 0.0, shape)
    if rs.stop <= rs.start or cs.stop <= cs.start or len(points) < 3:
        return mask
    start, end = _edges(points)
    first, last = _crossing_rows(np.minimum(start[:, 1], end[:, 1]), np.maximum(start[:, 1], end[:, 1]), rs)
    width = cs.stop - cs.start
    # toggles[r, k] counts (mod 256, enough for the parity) the crossings that toggle columns >= k
    toggles = np.zeros((rs.stop - rs.start, width + 1), dtype=np.uint8)
    flat = toggles.reshape(-1)
    for edge, row in _item_rows(first, last, rs.stop - rs.start):
        x0, y0, x1, y1 = start[edge, 0], start[edge, 1], end[edge, 0], end[edge, 1]
        ty = row + 0.5
        flag1 = y1 >= ty
        lhs = (y1 - ty) * (x0 - x1)
        dy = y0 - y1

        def toggled(col):  # matplotlib's crossing test at the centre of column ``col``
            return (lhs >= (x1 - (col + 0.5)) * dy) == flag1

        # columns toggled are those with tx left of the crossing: j < k; k from the crossing, then exact
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = x1 + (ty - y1) * (x0 - x1) / (y0 - y1)
        k = np.clip(np.floor(xi - 0.5) + 1, cs.start - 1, cs.stop + 1)
        for _ in range(2):
            k = np.where(toggled(k), k + 1, k)
            k = np.where(~toggled(k - 1), k - 1, k)
        k = np.clip(k, cs.start, cs.stop).astype(np.int64) - cs.start
        base = (row - rs.start) * (width + 1)
        np.add.at(flat, base[k > 0], np.uint8(1))  # toggles [0, k) = +1 at 0, +1 at k (parity)
        np.add.at(flat, (base + k)[k > 0], np.uint8(1))
    np.cumsum(toggles, axis=1, dtype=np.uint8, out=toggles)
    mask[rs, cs] = (toggles[:, :width] & 1).astype(bool)
    return mask


def _segments(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(points) == 1:
        return points, points
    return points[:-1], points[1:]


def _stroke_rows(points: np.ndarray, radius: float, shape) -> tuple[np.ndarray, np.ndarray]:
    a, b = _segments(points)
    rs, _ = _window(points, radius, shape)
    first = np.maximum(np.floor(np.minimum(a[:, 1], b[:, 1]) - radius) - 1, rs.start).astype(np.int64)
    last = np.minimum(np.ceil(np.maximum(a[:, 1], b[:, 1]) + radius) + 1, rs.stop - 1).astype(np.int64)
    return first, last


def _linear_interval(c0, c1, lo, hi):
    """x with lo <= c0 + c1 x <= hi, as (left, right); empty when left > right."""
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = (lo - c0) / c1, (hi - c0) / c1
    left, right = np.minimum(u, v), np.maximum(u, v)
    flat = c1 == 0
    inside = (c0 >= lo) & (c0 <= hi)
    left = np.where(flat, np.where(inside, -np.inf, np.inf), left)
    right = np.where(flat, np.where(inside, np.inf, -np.inf), right)
    return left, right


def _disc_interval(cx, cy, ty, r):
    h2 = r * r - (ty - cy) ** 2
    h = np.sqrt(np.maximum(h2, 0.0))
    return np.where(h2 >= 0, cx - h, np.inf), np.where(h2 >= 0, cx + h, -np.inf)


def rasterize_stroke(points, radius: float, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixels whose centre is within ``radius`` of the polyline ``points``.

    Per segment and row, the covered columns form an interval (a capsule is convex); the interval
    is computed from the geometry with a slightly larger radius, its inner part filled, and the two
    columns on each side of each end decided by the rule's own test (squared distance to the segment
    ``<= radius ** 2``).
    """
    points = np.asarray(points, dtype=np.float64)
    radius = float(radius)
    mask = np.zeros(shape, dtype=bool)
    rs, cs = _window(points, radius, shape)
    if rs.stop <= rs.start or cs.stop <= cs.start:
        return mask
    a, b = _segments(points)
    first, last = _stroke_rows(points, radius, shape)
    width = cs.stop - cs.start
    wide = radius * (1 + 1e-9) + 1e-9
    # one count per segment covering a pixel: int16 holds the MAX_POINTS segments of a parsed stroke
    dtype = np.int16 if len(a) < 32000 else np.int32
    counts = np.zeros((rs.stop - rs.start, width + 1), dtype=dtype)
    flat = counts.reshape(-1)
    exact_rows, exact_cols = [], []
    for seg, row in _item_rows(first, last, rs.stop - rs.start):
        ax, ay, bx, by = a[seg, 0], a[seg, 1], b[seg, 0], b[seg, 1]
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        ty = row + 0.5
        left_a, right_a = _disc_interval(ax, ay, ty, wide)
        left_b, right_b = _disc_interval(bx, by, ty, wide)
        left, right = np.minimum(left_a, left_b), np.maximum(right_a, right_b)
        long = length2 > 0
        if long.any():
            norm = np.sqrt(np.where(long, length2, 1.0))
            # band: 0 <= t <= 1 and |perpendicular distance| <= radius, each linear in x on this row
            t_left, t_right = _linear_interval(((ty - ay) * dy - ax * dx) / np.where(long, length2, 1.0),
                                               dx / np.where(long, length2, 1.0), 0.0, 1.0)
            p_left, p_right = _linear_interval((-(ty - ay) * dx - ax * dy) / norm, dy / norm, -wide, wide)
            b_left, b_right = np.maximum(t_left, p_left), np.minimum(t_right, p_right)
            ok = long & (b_left <= b_right)
            left = np.where(ok, np.minimum(left, b_left), left)
            right = np.where(ok, np.maximum(right, b_right), right)
        hit = left <= right
        seg, row, left, right = seg[hit], row[hit], left[hit], right[hit]
        first_col = np.clip(np.ceil(left - 0.5), cs.start - 2, cs.stop + 2).astype(np.int64)
        last_col = np.clip(np.floor(right - 0.5), cs.start - 2, cs.stop + 2).astype(np.int64)
        # inner part [first+2, last-2]: inside by more than a pixel, filled without testing
        fill_lo = np.clip(first_col + 2, cs.start, cs.stop) - cs.start
        fill_hi = np.clip(last_col - 1, cs.start, cs.stop) - cs.start  # exclusive
        some = fill_hi > fill_lo
        base = (row - rs.start) * (width + 1)
        np.add.at(flat, (base + fill_lo)[some], 1)
        np.add.at(flat, (base + fill_hi)[some], -1)
        # the columns next to each end: the rule's own test, as the per-pixel definition computes it
        for offsets, anchor in (((-1, 0, 1), first_col), ((-1, 0, 1), last_col)):
            for off in offsets:
                col = anchor + off
                valid = (col >= cs.start) & (col < cs.stop)
                c, r, s = col[valid], row[valid], seg[valid]
                x, y = c + 0.5, r + 0.5
                sax, say = a[s, 0], a[s, 1]
                sdx, sdy = b[s, 0] - sax, b[s, 1] - say
                l2 = sdx * sdx + sdy * sdy
                with np.errstate(divide="ignore", invalid="ignore"):
                    t = np.where(l2 == 0, 0.0, np.clip(((x - sax) * sdx + (y - say) * sdy) / l2, 0.0, 1.0))
                inside = (x - sax - t * sdx) ** 2 + (y - say - t * sdy) ** 2 <= radius * radius
                exact_rows.append(r[inside])
                exact_cols.append(c[inside])
    np.cumsum(counts, axis=1, dtype=dtype, out=counts)
    window = counts[:, :width] > 0
    if exact_rows:
        window[np.concatenate(exact_rows) - rs.start, np.concatenate(exact_cols) - cs.start] = True
    mask[rs, cs] = window
    return mask


# -------------------------------------------------------------------------------- the ROI


def roi_work(shapes: list[dict], shape: tuple[int, int]) -> int:
    """Work units of rasterizing ``shapes`` on an image of ``shape``, computed without touching pixels.

    A unit is about the time of one polygon edge crossing one pixel-centre row; a stroke segment's
    row costs 10 units, and the pixels of each shape's bounding window (clipped to the image) one unit
    per 25.

    Examples
    --------
    >>> roi_work([{"type": "polygon", "points": np.array([[0, 0], [10, 0], [10, 10.0]])}], (100, 100))
    24
    """
    work = 0
    for item in shapes:
        points = item["points"]
        pad = 0.0 if item["type"] == "polygon" else item["radius"]
        rs, cs = _window(points, pad, shape)
        work += max(rs.stop - rs.start, 0) * max(cs.stop - cs.start, 0) // _PIXELS_PER_UNIT
        if item["type"] == "polygon":
            work += _POLYGON_ROW * _polygon_spans(points, shape)
        else:
            first, last = _stroke_rows(points, item["radius"], shape)
            work += _STROKE_ROW * int(np.maximum(last - first + 1, 0).sum())
    return work


def outline_length(mask: np.ndarray) -> int:
    """Pixel edges between the ROI and the rest of the image (the image border counts as outside).

    Examples
    --------
    >>> outline_length(np.ones((3, 4), bool))
    14
    """
    padded = np.pad(np.asarray(mask, dtype=bool), 1)
    return int(np.count_nonzero(padded[:, 1:] != padded[:, :-1]) + np.count_nonzero(padded[1:] != padded[:-1]))


def check_outline(mask: np.ndarray, field: str = "roi", max_outline: int = MAX_OUTLINE) -> None:
    """Refuse an ROI whose outline (:func:`outline_length`) is longer than ``max_outline``.

    The feature extraction's cost grows with the square of the outline, so a jagged outline (a
    2000-point star over the whole image) would hold a worker for hours.

    Raises
    ------
    UploadError
        422 naming ``field``.
    """
    length = outline_length(mask)
    if length > max_outline:
        raise UploadError(f"the ROI's outline is {length} pixel edges long, more than the limit of {max_outline} "
                          "(a lesion's outline has a few thousand); its shape features would take too long",
                          field=field, fix="draw a smoother outline around the lesion" if field == "roi"
                          else "upload the mask of one lesion, without speckle or a jagged edge")


def rasterize_roi(shapes: list[dict], shape: tuple[int, int], max_work: int = MAX_WORK,
                  max_outline: int = MAX_OUTLINE) -> np.ndarray:
    """Apply parsed shapes (:func:`parse_roi`) in order to an empty mask of ``shape`` (rows, cols).

    Raises
    ------
    UploadError
        The shapes' work (:func:`roi_work`) on this image exceeds ``max_work``, checked before any
        pixel is touched; or the mask's outline is longer than ``max_outline`` (:func:`check_outline`).
    """
    work = roi_work(shapes, shape)
    if work > max_work:
        raise _error(f"the ROI is too costly to rasterize on a {shape[0]} x {shape[1]} image ({work} work units, "
                     f"more than the limit of {max_work}): too many points, too large a brush or too many shapes",
                     "draw the outline with fewer points (a polygon of a few hundred clicks) or a smaller brush, "
                     "or upload the lesion mask as a file")
    mask = np.zeros(shape, dtype=bool)
    for item in shapes:
        if item["type"] == "polygon":
            mask |= rasterize_polygon(item["points"], shape)
        elif item["type"] == "brush":
            mask |= rasterize_stroke(item["points"], item["radius"], shape)
        else:
            mask &= ~rasterize_stroke(item["points"], item["radius"], shape)
    check_outline(mask, "roi", max_outline)
    return mask


#: Values of the ``roi_origin`` form field of ``/api/predict``: how a drawn ROI came about (a proposed
#: outline is one of :mod:`sonorad.serve.propose`).
ROI_ORIGINS = ("drawn", "proposed", "edited")


def check_roi_origin(value, source: str) -> str:
    """The ROI source a prediction reports: ``"file"`` for a mask file, else the checked ``roi_origin``.

    Parameters
    ----------
    value : str or None
        The ``roi_origin`` form field (None or empty: ``"drawn"``).
    source : str
        ``"file"`` or ``"drawn"``, as the calculator read the ROI.

    Raises
    ------
    UploadError
        A value other than ``drawn``, ``proposed`` or ``edited`` (422 naming ``roi_origin``).
    """
    origin = str(value or "").strip() or "drawn"
    if origin not in ROI_ORIGINS:
        shown = str(origin)[:40]
        raise UploadError(f"roi_origin {shown!r} is not one of {', '.join(ROI_ORIGINS)}", field="roi_origin",
                          fix="send drawn (outlined by hand), proposed (the segmenter's outline unchanged) or "
                              "edited (a proposed outline changed by hand), or leave it out")
    return "file" if source == "file" else origin
