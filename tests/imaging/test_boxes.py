import numpy as np
import pytest

from sonorad.errors import CaseError
from sonorad.imaging.boxes import MIN_BOX_SIDE, box_from_mask, check_box, format_box, jitter_box, parse_box


@pytest.mark.parametrize("cell", ["10,20,30.5,40", "[10, 20, 30.5, 40]", "(10 20 30.5 40)", [10, 20, 30.5, 40]])
def test_parse_box_accepts_the_usual_spellings(cell):
    assert parse_box(cell) == (10.0, 20.0, 30.5, 40.0)


@pytest.mark.parametrize("cell", ["", "1,2,3", "a,b,c,d", "1,2,3,4,5", float("nan"), "1,2,inf,4"])
def test_parse_box_names_the_case(cell):
    with pytest.raises(CaseError, match="C9") as err:
        parse_box(cell, case_id="C9")
    assert "x0,y0,x1,y1" in str(err.value)


def test_box_from_mask_has_exclusive_ends_and_round_trips():
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:20] = True
    assert box_from_mask(mask) == (10.0, 5.0, 20.0, 9.0)
    assert parse_box(format_box(box_from_mask(mask))) == (10.0, 5.0, 20.0, 9.0)
    with pytest.raises(ValueError, match="empty"):
        box_from_mask(np.zeros((3, 3)))


@pytest.mark.parametrize("box, words", [
    ((10, 10, 5, 20), "degenerate"),
    ((10, 10, 10, 20), "degenerate"),
    ((-5, 10, 20, 20), "not inside the image"),
    ((10, 10, 20, 61), "not inside the image"),
    ((100, 100, 120, 120), "not inside the image"),
    ((10, 10, 12, 30), f"smaller than {MIN_BOX_SIDE:g} px"),
])
def test_check_box_refuses_bad_boxes_by_case(box, words):
    with pytest.raises(CaseError, match=words) as err:
        check_box(box, (60, 80), case_id="C3")
    assert err.value.case_id == "C3"


def test_check_box_passes_a_good_box():
    assert check_box((0, 0, 80, 60), (60, 80)) == (0, 0, 80, 60)


def test_jitter_stays_within_the_fraction_and_the_image():
    rng = np.random.default_rng(0)
    box = (20.0, 10.0, 60.0, 30.0)
    for _ in range(200):
        x0, y0, x1, y1 = jitter_box(box, rng, 0.1, shape=(35, 100))
        assert abs(x0 - 20) <= 4 + 1e-9 and abs(x1 - 60) <= 4 + 1e-9
        assert abs(y0 - 10) <= 2 + 1e-9 and 0 <= y1 <= 35 and abs(y1 - 30) <= 2 + 1e-9
    a = jitter_box(box, np.random.default_rng(3), 0.1)
    assert a == jitter_box(box, np.random.default_rng(3), 0.1) and a != box
