"""The drawn ROI: one documented rasterization rule (pixel centres), brush, eraser, order, bounds."""

import json
import math
import time

import numpy as np
import pytest

from sonorad.serve.roi import (
    MAX_SHAPES,
    MAX_WORK,
    parse_roi,
    rasterize_polygon,
    rasterize_roi,
    rasterize_stroke,
    check_outline,
    outline_length,
    roi_work,
    simplify,
)
from sonorad.serve.uploads import UploadError

# ------------------------------------------------------------------ the rule's per-pixel oracle
# The rasterizers as first written, pixel by pixel over the bounding window (cost pixels x points):
# the definition that the scanline rasterizers must reproduce exactly.


def _oracle_window(points, pad, shape):
    rows, cols = shape
    c0 = max(math.floor(points[:, 0].min() - pad), 0)
    c1 = min(math.ceil(points[:, 0].max() + pad) + 1, cols)
    r0 = max(math.floor(points[:, 1].min() - pad), 0)
    r1 = min(math.ceil(points[:, 1].max() + pad) + 1, rows)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _oracle_centres(rs, cs):
    xs = np.arange(cs.start, cs.stop, dtype=np.float64) + 0.5
    ys = np.arange(rs.start, rs.stop, dtype=np.float64) + 0.5
    return np.meshgrid(xs, ys)


def oracle_polygon(points, shape):
    from matplotlib.path import Path as MplPath

    points = np.asarray(points, dtype=np.float64)
    mask = np.zeros(shape, dtype=bool)
    rs, cs = _oracle_window(points, 0.0, shape)
    if rs.stop <= rs.start or cs.stop <= cs.start:
        return mask
    x, y = _oracle_centres(rs, cs)
    inside = MplPath(points, closed=False).contains_points(np.column_stack([x.ravel(), y.ravel()]), radius=0.0)
    mask[rs, cs] = inside.reshape(x.shape)
    return mask


def oracle_stroke(points, radius, shape):
    points = np.asarray(points, dtype=np.float64)
    mask = np.zeros(shape, dtype=bool)
    rs, cs = _oracle_window(points, radius, shape)
    if rs.stop <= rs.start or cs.stop <= cs.start:
        return mask
    x, y = _oracle_centres(rs, cs)
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


def _random_points(rng, kind, n):
    if kind == "integer":  # vertices on pixel corners: many centres exactly on an edge or at distance r
        return rng.integers(-3, 45, size=(n, 2)).astype(float)
    if kind == "half":  # vertices on pixel centres too
        return rng.integers(-6, 90, size=(n, 2)) / 2.0
    return rng.uniform(-5.0, 45.0, size=(n, 2))


@pytest.mark.parametrize("kind", ["integer", "half", "float"])
def test_scanline_polygon_equals_the_per_pixel_rule(kind):
    rng = np.random.default_rng({"integer": 1, "half": 2, "float": 3}[kind])
    for _ in range(150):
        shape = (int(rng.integers(4, 40)), int(rng.integers(4, 40)))
        points = _random_points(rng, kind, int(rng.integers(3, 14)))
        np.testing.assert_array_equal(rasterize_polygon(points, shape), oracle_polygon(points, shape),
                                      err_msg=f"{shape} {points.tolist()}")


@pytest.mark.parametrize("kind", ["integer", "half", "float"])
def test_row_interval_stroke_equals_the_per_pixel_rule(kind):
    rng = np.random.default_rng({"integer": 4, "half": 5, "float": 6}[kind])
    for _ in range(150):
        shape = (int(rng.integers(4, 40)), int(rng.integers(4, 40)))
        points = _random_points(rng, kind, int(rng.integers(1, 7)))
        radius = float(rng.choice([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.25, 10.0, 30.0]))
        np.testing.assert_array_equal(rasterize_stroke(points, radius, shape), oracle_stroke(points, radius, shape),
                                      err_msg=f"{shape} r={radius} {points.tolist()}")


def test_simplification_drops_only_sub_pixel_steps():
    dense = np.array([[10.0, 10.0], [10.2, 10.1], [30.0, 10.0], [30.1, 10.3], [30.0, 30.0], [10.0, 30.0]])
    assert simplify(dense).tolist() == [[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]]
    outline = np.array([[5.0, 5.0], [50.0, 5.0], [50.0, 50.0]])
    assert simplify(outline) is outline or np.array_equal(simplify(outline), outline)
    # parse_roi applies it: the mask is the rule's mask of the simplified outline
    shapes = parse_roi(json.dumps([list(map(float, p)) for p in dense]))
    np.testing.assert_array_equal(rasterize_roi(shapes, (40, 40)), oracle_polygon(simplify(dense), (40, 40)))
    # a stroke keeps its last point
    stroke = parse_roi(json.dumps({"shapes": [{"type": "brush", "radius": 2, "points": [[1, 1], [1.1, 1], [1.2, 1]]}]}))
    assert stroke[0]["points"].tolist() == [[1.0, 1.0], [1.2, 1.0]]


def test_costly_rois_are_refused_before_rasterizing_and_cheap_ones_are_fast():
    rng = np.random.default_rng(7)
    big = (4096, 4096)
    heavy = parse_roi(json.dumps({"shapes": [{"type": "brush", "radius": 500,
                                              "points": rng.uniform(0, 4096, size=(5000, 2)).tolist()}]}))
    assert roi_work(heavy, big) > MAX_WORK
    started = time.perf_counter()
    with pytest.raises(UploadError) as err:
        rasterize_roi(heavy, big)
    assert time.perf_counter() - started < 1.0
    assert err.value.field == "roi" and "limit" in err.value.message and "fewer points" in err.value.fix
    # the same stroke on a small image is cheap: the work depends on the image actually covered
    assert roi_work(heavy, (64, 64)) < MAX_WORK
    angles = np.sort(rng.uniform(0, 2 * np.pi, 2000))
    star = np.column_stack([2048 + 1500 * np.cos(angles), 2048 + 1500 * np.sin(angles)])
    shapes = parse_roi(json.dumps(star.tolist()))
    assert roi_work(shapes, big) < MAX_WORK
    started = time.perf_counter()
    mask = rasterize_roi(shapes, big)
    assert time.perf_counter() - started < 5.0
    assert abs(mask.sum() / (math.pi * 1500 ** 2) - 1) < 0.01


def test_deeply_nested_roi_json_is_a_4xx():
    with pytest.raises(UploadError) as err:
        parse_roi("[" * 100_000 + "]" * 100_000)
    assert err.value.field == "roi" and 400 <= err.value.status < 500 and "nested" in err.value.message


def test_polygon_covers_pixels_whose_centre_is_inside():
    # The square from (1, 1) to (4, 3): centres x in {1.5, 2.5, 3.5}, y in {1.5, 2.5}.
    mask = rasterize_polygon([[1, 1], [4, 1], [4, 3], [1, 3]], (5, 6))
    expected = np.zeros((5, 6), bool)
    expected[1:3, 1:4] = True
    np.testing.assert_array_equal(mask, expected)


def test_polygon_area_matches_geometry():
    """A large triangle covers about its area in pixels (centre rule, no systematic bias)."""
    mask = rasterize_polygon([[10, 10], [190, 10], [10, 150]], (200, 200))
    assert abs(mask.sum() - 0.5 * 180 * 140) < 0.02 * 0.5 * 180 * 140


def test_polygon_outside_or_partly_outside_the_image_is_clipped():
    assert not rasterize_polygon([[100, 100], [120, 100], [110, 120]], (50, 50)).any()
    mask = rasterize_polygon([[-10, -10], [5, -10], [5, 5], [-10, 5]], (50, 50))
    assert mask.sum() == 25 and mask[:5, :5].all()


def test_brush_is_a_disc_along_the_stroke():
    mask = rasterize_stroke([[10.5, 10.5]], 3.0, (21, 21))
    # Pixel centres within 3 of (10.5, 10.5): the lattice points of a radius-3 disc, 29 of them.
    assert mask.sum() == 29 and mask[10, 10] and mask[10, 13] and not mask[10, 14]
    line = rasterize_stroke([[2.5, 5.5], [12.5, 5.5]], 1.0, (11, 16))
    assert line[5, 2:13].all() and line[4, 2:13].all() and line[6, 2:13].all() and not line[3].any()


def test_shapes_apply_in_order_with_the_eraser():
    square = {"type": "polygon", "points": [[0, 0], [20, 0], [20, 20], [0, 20]]}
    erase = {"type": "erase", "radius": 2, "points": [[10, 0], [10, 20]]}
    mask = rasterize_roi(parse_roi(json.dumps({"shapes": [square, erase]})), (20, 20))
    assert mask.sum() == 400 - 4 * 20 and not mask[:, 8:12].any()
    # The same shapes, eraser first: erasing nothing, then the full square.
    mask2 = rasterize_roi(parse_roi(json.dumps({"shapes": [erase, square]})), (20, 20))
    assert mask2.sum() == 400


def test_a_bare_point_list_is_one_polygon():
    shapes = parse_roi("[[1, 1], [4, 1], [4, 3], [1, 3]]")
    assert len(shapes) == 1 and shapes[0]["type"] == "polygon"


@pytest.mark.parametrize("text, words", [
    ("not json", "not valid JSON"),
    ('{"shapes": "x"}', "must be a JSON object"),
    ('[[1, 1], [2, 2]]', "at least 3 points"),
    ('{"shapes": [{"type": "circle", "points": [[1, 1]]}]}', "'type' must be"),
    ('{"shapes": [{"type": "brush", "points": [[1, 1]]}]}', "'radius' must be"),
    ('{"shapes": [{"type": "brush", "radius": true, "points": [[1, 1]]}]}', "'radius' must be"),
    ('{"shapes": [{"type": "polygon", "points": [[1, "a"], [2, 2], [3, 1]]}]}', "pairs of numbers"),
    ('{"shapes": [{"type": "polygon", "points": [[1, 1, 1], [2, 2, 2], [3, 1, 1]]}]}', "[x, y] pairs"),
    ('{"shapes": [{"type": "polygon", "points": [[1, NaN], [2, 2], [3, 1]]}]}', "finite"),
])
def test_bad_roi_json_is_refused_with_a_reason(text, words):
    with pytest.raises(UploadError) as err:
        parse_roi(text)
    assert words in err.value.message and err.value.field == "roi" and err.value.status == 422


def test_hostile_sizes_are_bounded():
    many = json.dumps({"shapes": [{"type": "brush", "radius": 1, "points": [[1, 1]]}] * (MAX_SHAPES + 1)})
    with pytest.raises(UploadError, match="limit"):
        parse_roi(many)
    huge = json.dumps([[i % 50, i % 37] for i in range(30000)])
    with pytest.raises(UploadError, match="limit"):
        parse_roi(huge)


def test_a_jagged_outline_is_refused_and_a_smooth_one_kept():
    rows, cols = np.mgrid[0:2000, 0:2000]
    angle, radius = np.arctan2(rows - 1000, cols - 1000), np.hypot(rows - 1000, cols - 1000)
    disc = radius < 900
    assert abs(outline_length(disc) - 8 * 900) < 100  # a disc's 4-connected outline: 8 r edges
    check_outline(disc)
    spiky = radius < 500 + 400 * np.sin(200 * angle)
    with pytest.raises(UploadError) as err:
        check_outline(spiky, field="mask")
    assert err.value.field == "mask" and "outline" in err.value.message and err.value.status == 422
    star = [[1000 + r * math.cos(a), 1000 + r * math.sin(a)]
            for a, r in zip(np.linspace(0, 2 * np.pi, 2000, endpoint=False), [950, 100] * 1000, strict=True)]
    with pytest.raises(UploadError, match="outline") as err:
        rasterize_roi(parse_roi(json.dumps(star)), (2000, 2000))
    assert err.value.field == "roi" and "smoother" in err.value.fix
