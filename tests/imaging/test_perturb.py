"""Mask perturbations for ICC: known erosion/dilation sizes, shifts, determinism, never empty."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.imaging import perturb_mask, perturbed_masks
from sonorad.imaging.perturb import disk


def square11():
    m = np.zeros((21, 21), bool)
    m[5:16, 5:16] = True  # 11 x 11 = 121 pixels
    return m


def test_disk_sizes():
    assert disk(1).sum() == 5 and disk(2).sum() == 13


def test_erode_dilate_known_sizes():
    m = square11()
    assert perturb_mask(m, "erode", 1).sum() == 81  # 9 x 9
    assert perturb_mask(m, "erode", 2).sum() == 49  # 7 x 7
    assert perturb_mask(m, "dilate", 1).sum() == 121 + 4 * 11  # a cross adds one row/col per side
    assert perturb_mask(m, "dilate", 2).sum() == 15 * 15 - 4 * 3  # the disk of radius 2 misses 3 per corner
    np.testing.assert_array_equal(perturb_mask(m, "erode", 0), m)


def test_erosion_does_not_eat_from_the_image_border():
    m = np.zeros((10, 15), bool)
    m[0:5, 5:10] = True  # the contour stops at the top edge of the image
    e = perturb_mask(m, "erode", 1)
    assert e[0, 6:9].all() and e.sum() == 4 * 3


def test_shift_moves_by_amount_in_a_seeded_direction():
    m = square11()
    moves = set()
    for seed in range(20):
        s = perturb_mask(m, "shift", 2, np.random.default_rng(seed))
        assert s.sum() == m.sum()  # interior lesion: nothing lost
        rows, cols = np.nonzero(s)
        dr, dc = rows.min() - 5, cols.min() - 5
        assert 1 <= np.hypot(dr, dc) <= 2 * np.sqrt(2) and max(abs(dr), abs(dc)) <= 2
        moves.add((dr, dc))
        np.testing.assert_array_equal(s, perturb_mask(m, "shift", 2, np.random.default_rng(seed)))
    assert len(moves) >= 4


def test_shift_past_the_border_loses_pixels():
    m = np.zeros((5, 5), bool)
    m[:, 0] = True
    lost = [perturb_mask(m, "shift", 1, seed).sum() for seed in range(30)]
    assert min(lost) == 0 and max(lost) == 5  # shifted out to the left / along the column


def test_perturb_mask_bad_arguments():
    m = square11()
    with pytest.raises(ValueError, match="kind must be one of"):
        perturb_mask(m, "rotate", 1)
    with pytest.raises(ValueError, match="amount"):
        perturb_mask(m, "erode", -1)
    with pytest.raises(ValueError, match="amount"):
        perturb_mask(m, "erode", 1.5)
    with pytest.raises(ValueError, match="2D"):
        perturb_mask(np.ones(5, bool), "erode", 1)


def test_perturbed_masks_deterministic_and_seed_dependent():
    m = square11()
    a, b = perturbed_masks(m, seed=7), perturbed_masks(m, seed=7)
    assert len(a) == 6
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = perturbed_masks(m, seed=8)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_perturbed_masks_kinds_cycle():
    m = square11()
    erode, dilate, shift = perturbed_masks(m, seed=0, n=3)
    assert erode.sum() in (81, 49) and not (erode & ~m).any()
    assert dilate.sum() in (165, 213) and (dilate | ~m).all()
    assert shift.sum() == 121 and not np.array_equal(shift, m)


@pytest.mark.parametrize("cells", [[(3, slice(2, 12))], [(0, slice(0, 2))], [(4, slice(4, 5))]])
def test_perturbed_masks_never_empty(cells):
    m = np.zeros((8, 14), bool)
    for row, cols in cells:
        m[row, cols] = True  # a thin line, a 2-pixel corner ROI, a single pixel
    floor = min(2, m.sum())
    for seed in range(10):
        out = perturbed_masks(m, seed=seed, n=9)
        assert len(out) == 9 and all(x.sum() >= floor for x in out)


def test_thin_line_falls_back_to_original_for_erosion():
    m = np.zeros((8, 14), bool)
    m[3, 2:12] = True
    erode = perturbed_masks(m, seed=0, n=1)[0]
    np.testing.assert_array_equal(erode, m)


def test_perturbed_masks_errors():
    with pytest.raises(ValueError, match="empty"):
        perturbed_masks(np.zeros((4, 4), bool), seed=0)
    with pytest.raises(ValueError, match="max_amount"):
        perturbed_masks(square11(), seed=0, max_amount=0)
