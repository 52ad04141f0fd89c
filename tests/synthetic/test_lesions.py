"""Tests of sonorad.synthetic.lesions: lesion traits and contour masks."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.synthetic import LesionShape, LesionTraits, lesion_mask, lesion_traits


def test_lesion_mask_of_a_circle_has_the_circle_area():
    circle = LesionShape((50.0, 60.0), 20.0, 1.0, 0.0, (), (), ())
    area = lesion_mask(circle, (100, 120)).sum()
    assert abs(area - np.pi * 20.0**2) / (np.pi * 20.0**2) < 0.02
    ellipse = LesionShape((50.0, 60.0), 20.0, 4.0, 0.0, (), (), ())
    m = lesion_mask(ellipse, (100, 120))
    rows, cols = np.nonzero(m)
    assert np.ptp(cols) == pytest.approx(80, abs=2) and np.ptp(rows) == pytest.approx(20, abs=2)


def test_lesion_traits_follow_the_risk_and_are_reproducible():
    low = lesion_traits(-2.0, np.random.default_rng(0))
    high = lesion_traits(2.0, np.random.default_rng(0))
    assert isinstance(low, LesionTraits) and low.risk == -2.0
    # Same noise, higher risk: darker, more blurred, more spiculated lesion.
    assert high.echo_level < low.echo_level and high.margin_blur > low.margin_blur
    assert high.spiculation > low.spiculation
    assert lesion_traits(2.0, np.random.default_rng(0)) == high
