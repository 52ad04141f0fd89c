"""Tests of sonorad.synthetic.bmode: rendered images, masks and how they follow the label and the center."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull
from sklearn.metrics import roc_auc_score

from sonorad.synthetic import render_case, simulate_case, simulate_table

SMALL = (96, 120)


def _solidity_deficit(mask: np.ndarray) -> float:
    """1 - area / convex hull area: 0 for convex (round/oval) lesions, larger for irregular ones."""
    pts = np.argwhere(mask).astype(float)
    corners = np.concatenate([pts + d for d in ([0, 0], [0, 1], [1, 0], [1, 1])])
    return 1.0 - mask.sum() / ConvexHull(corners).volume


def _echo_contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """Median gray level of tissue beside the lesion (same depth rows) minus that of the lesion core.

    Tissue beside the lesion, not below it, so posterior shadowing does not mix in.
    """
    core = ndimage.binary_erosion(mask, iterations=2)
    beside = np.zeros_like(mask)
    beside[mask.any(axis=1)] = True
    beside &= ~ndimage.binary_dilation(mask, iterations=8)
    return float(np.median(image[beside]) - np.median(image[core]))


def _render_table(table, image_size):
    profiles = {c.name: c for c in table.scenario.centers}
    for i, case_id in enumerate(table.cases["case_id"]):
        rng = np.random.default_rng(i)
        yield render_case(table.traits(case_id), profiles[table.cases.at[case_id, "center"]], image_size, rng)


def test_image_statistics_follow_the_label():
    """Statistics measured on rendered images and masks: irregularity and lesion contrast."""
    results = {}
    for signal in (0.0, 1.0):
        t = simulate_table("clnm", seed=5, signal=signal, n_patients=120)
        irregularity, contrast = [], []
        for case in _render_table(t, (80, 100)):
            irregularity.append(_solidity_deficit(case.mask))
            contrast.append(_echo_contrast(case.image, case.mask))
        y = t.cases["label"].to_numpy()
        results[signal] = (roc_auc_score(y, irregularity), roc_auc_score(y, contrast))
    assert results[1.0][0] > 0.7 and results[1.0][1] > 0.7
    assert abs(results[0.0][0] - 0.5) < 0.15 and abs(results[0.0][1] - 0.5) < 0.15


def test_center_gain_changes_image_brightness():
    t = simulate_table("clnm", seed=0, signal=1.0, centers=["C2", "C3"], n_patients=16)
    means = {}
    for case in _render_table(t, SMALL):
        means.setdefault(case.center, []).append(case.image[~case.mask].mean())
    # C2 has +3 dB gain and a wider dynamic range, C3 -3 dB: harmonization has work to do.
    assert np.mean(means["C2"]) > np.mean(means["C3"]) + 10


def test_simulate_case_shapes_and_mask_inside_image():
    for label in (0, 1):
        for center in ("C1", "C3"):
            case = simulate_case(label, seed=label, center=center, image_size=SMALL, second_reader=True)
            assert case.image.dtype == np.uint8 and case.image.ndim == 2
            assert case.mask.shape == case.image.shape == case.mask2.shape
            assert case.mask.sum() > 50
            # The lesion stays away from the border and below the dark top band.
            assert not (case.mask[:6].any() or case.mask[-1].any() or case.mask[:, 0].any() or case.mask[:, -1].any())
            dice = 2 * (case.mask & case.mask2).sum() / (case.mask.sum() + case.mask2.sum())
            assert 0.75 < dice < 1.0
    # The center's size scale changes the matrix size.
    assert simulate_case(center="C3", image_size=(100, 120)).image.shape == (110, 132)


def test_signal_zero_case_does_not_depend_on_label():
    a = simulate_case(0, seed=4, signal=0.0, image_size=SMALL)
    b = simulate_case(1, seed=4, signal=0.0, image_size=SMALL)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    c = simulate_case(1, seed=4, signal=1.0, image_size=SMALL)
    assert not np.array_equal(a.image, c.image)
