"""The drawn ROI: one documented rasterization rule (pixel centres), brush, eraser, order, bounds."""

import json

import numpy as np
import pytest

from sonorad.serve.roi import (
    MAX_SHAPES,
    parse_roi,
    rasterize_polygon,
    rasterize_roi,
    rasterize_stroke,
)
from sonorad.serve.uploads import UploadError


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
