"""Tests of sonorad.report.figures: publication files and the cohort flow diagram."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from sonorad.report.figures import cohort_flow_counts, cohort_flow_figure, save_figure


def _figure() -> Figure:
    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot().plot([0, 1], [0, 1])
    return fig


def test_save_figure_writes_png_and_svg_at_300_dpi(tmp_path):
    png, svg = save_figure(_figure(), "roc_external", tmp_path / "figures")
    assert png == tmp_path / "figures" / "roc_external.png" and svg.suffix == ".svg"
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.5)
        assert image.size[0] > 400  # a 2-inch-wide figure at 300 dpi (tight bounding box)
    assert "<svg" in svg.read_text()
    first = png.read_bytes()
    save_figure(_figure(), "roc_external", tmp_path / "figures")
    assert png.read_bytes() == first  # no timestamp: identical bytes on every run


def test_save_figure_rejects_paths_as_stems(tmp_path):
    with pytest.raises(ValueError, match="not a plain file name"):
        save_figure(_figure(), "../roc", tmp_path)
    with pytest.raises(TypeError, match="matplotlib Figure"):
        save_figure("figure", "roc", tmp_path)


def _cohort():
    ids = [f"c{i}" for i in range(10)]
    parts = pd.Series(["train"] * 5 + ["external"] * 3 + ["internal"] * 2, index=ids)
    y = pd.Series([1, 0, 1, 0, 0, 1, 1, 0, 1, 0], index=ids)
    failures = pd.DataFrame({"case_id": ["c0", "c0", "c6"], "stage": ["read", "extract", "extract"],
                             "error": ["bad file", "x", "empty mask"], "fix": ["", "", ""]})
    return parts, y, failures


def test_cohort_flow_counts_excludes_each_failed_case_once():
    parts, y, failures = _cohort()
    counts = cohort_flow_counts(parts, y, failures)
    assert counts == {"total": 10, "excluded": {"read": 1, "extract": 1},
                      "parts": {"train": {"n": 4, "positive": 1}, "internal": {"n": 2, "positive": 1},
                                "external": {"n": 2, "positive": 1}}}
    assert cohort_flow_counts(parts, y)["parts"]["train"] == {"n": 5, "positive": 2}
    with pytest.raises(ValueError, match="not in the cohort: zz"):
        cohort_flow_counts(parts, y, pd.DataFrame({"case_id": ["zz"], "stage": ["read"]}))


def test_cohort_flow_figure_shows_the_counts():
    parts, y, failures = _cohort()
    fig = cohort_flow_figure(cohort_flow_counts(parts, y, failures), title="BUS-BRA")
    texts = "\n".join(t.get_text() for t in fig.axes[0].texts)
    for expected in ("n = 10", "Excluded (n = 2)", "read: 1", "Cases analysed\nn = 8", "Training\nn = 4",
                     "positive 1 (25.0%)", "External validation\nn = 2", "BUS-BRA"):
        assert expected in texts, expected
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # draws without a display or pyplot
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_cohort_flow_figure_checks_the_arithmetic():
    counts = {"total": 10, "excluded": {"read": 1}, "parts": {"train": {"n": 8, "positive": 2}}}
    with pytest.raises(ValueError, match="do not add up: total 10 - excluded 1 = 9, but the parts hold 8"):
        cohort_flow_figure(counts)
    with pytest.raises(ValueError, match="positive"):
        cohort_flow_figure({"total": 2, "parts": {"train": {"n": 2, "positive": 3}}})
    with pytest.raises(ValueError, match="no 'parts' entry"):
        cohort_flow_figure({"total": 2})


def test_cohort_flow_counts_patients_and_images():
    parts, y, failures = _cohort()
    # c0-c3 belong to two training patients; c4 alone; the others one image each.
    patients = pd.Series(["p0", "p0", "p1", "p1", "p2", "e0", "e1", "e2", "i0", "i1"], index=parts.index)
    counts = cohort_flow_counts(parts, y, failures, patients=patients)
    assert counts["parts"]["train"] == {"n": 4, "patients": 3, "positive": 1}
    assert counts["parts"]["external"] == {"n": 2, "patients": 2, "positive": 1}
    assert counts["patients"] == 8 and counts["patients_analysed"] == 7
    texts = "\n".join(t.get_text() for t in cohort_flow_figure(counts).axes[0].texts)
    for expected in ("n = 10 images (8 patients)", "Cases analysed\nn = 8 images (7 patients)",
                     "Training\nn = 4 images (3 patients)", "External validation\nn = 2\n"):
        assert expected in texts, expected
    with pytest.raises(ValueError, match="patients"):
        cohort_flow_counts(parts, y, patients=patients.iloc[:-1])


def test_cohort_flow_with_one_image_per_patient_reads_as_before():
    parts, y, failures = _cohort()
    patients = pd.Series([f"p{i}" for i in range(len(parts))], index=parts.index)
    counts = cohort_flow_counts(parts, y, failures, patients=patients)
    assert counts["parts"]["train"] == {"n": 4, "patients": 4, "positive": 1}
    texts = [t.get_text() for t in cohort_flow_figure(counts, title="BUS-BRA").axes[0].texts]
    assert texts == [t.get_text() for t in cohort_flow_figure(cohort_flow_counts(parts, y, failures),
                                                              title="BUS-BRA").axes[0].texts]
