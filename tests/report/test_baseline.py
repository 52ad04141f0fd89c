"""Tests of sonorad.report.baseline: the display cells, columns, footnote and HTML of Table 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sonorad.evaluation.baseline import baseline_statistics
from sonorad.evaluation.formatting import format_p
from sonorad.report.baseline import baseline_table

from tests.evaluation.baseline_samples import NORMAL_A, NORMAL_B, SKEWED_A, SKEWED_B
from tests.evaluation.baseline_samples import frame as _frame


def _table(df, group, variables, *, group_names=None, label_names=None, digits=1, **options):
    return baseline_table(baseline_statistics(df, group, variables, **options), group_names=group_names,
                          label_names=label_names, digits=digits)


def test_normal_numeric_row_shows_mean_sd_p_and_test():
    result = _table(_frame(NORMAL_A, NORMAL_B), "part", {"x": "numeric"})
    expected = stats.ttest_ind(NORMAL_A, NORMAL_B, equal_var=False).pvalue
    table = result.to_frame()
    assert list(table.columns) == ["Training (n=15)", "External validation (n=12)", "p-value", "Test"]
    row = table.loc[("x, mean ± SD", "")]
    assert row["Training (n=15)"] == f"{NORMAL_A.mean():.1f} ± {NORMAL_A.std(ddof=1):.1f}"
    assert row["p-value"] == format_p(expected)
    assert row["Test"] == "Welch t"
    assert "Welch's t-test" in result.note


def test_skewed_numeric_row_shows_median_iqr_and_both_shows_both():
    result = _table(_frame(SKEWED_A, SKEWED_B), "part", {"x": "numeric"})
    q1, med, q3 = np.percentile(SKEWED_B, [25, 50, 75])
    cell = result.to_frame().loc[("x, median [IQR]", ""), "External validation (n=12)"]
    assert cell == f"{med:.1f} [{q1:.1f}, {q3:.1f}]"
    both = _table(_frame(SKEWED_A, SKEWED_B), "part", {"x": "numeric"}, numeric="both", digits=2)
    cell = both.to_frame().iloc[0, 0]
    assert "±" in cell and "[" in cell and f"{np.median(SKEWED_A):.2f}" in cell


def test_categorical_rows_show_counts_and_missing():
    df = pd.DataFrame({"calc": ["no"] * 8 + ["yes"] * 2 + ["no"] + ["yes"] * 5 + [None],
                       "part": ["train"] * 10 + ["external"] * 7}, index=[f"c{i}" for i in range(17)])
    table = _table(df, "part", {"calc": "binary"}).to_frame()
    assert table.loc[("calc, n (%)", "no"), "Training (n=10)"] == "8 (80.0%)"
    assert table.loc[("calc, n (%)", "yes"), "External validation (n=7)"] == "5 (83.3%)"
    assert table.loc[("calc, n (%)", "Missing"), "External validation (n=7)"] == "1 (14.3%)"
    assert table.loc[("calc, n (%)", ""), "Test"] == "Fisher exact"


def test_label_columns_and_comparison_names():
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame({"age": rng.normal(55, 9, n), "part": ["train"] * 24 + ["external"] * 16,
                       "y": np.tile([0, 1], n // 2)}, index=[f"c{i}" for i in range(n)])
    result = _table(df, "part", {"age": "numeric"}, label="y", label_names={0: "benign", 1: "malignant"})
    table = result.to_frame()
    assert list(table.columns[:3]) == [("Training (n=24)", "benign (n=12)"), ("Training (n=24)", "malignant (n=12)"),
                                       ("Training (n=24)", "p-value")]
    assert ("External validation (n=16)", "p-value") in table.columns and ("", "Test") in table.columns
    assert set(result.tests["comparison"]) == {"Training", "External validation"}
    assert result.counts.to_dict()["Training (n=24) / benign (n=12)"] == 12


def test_to_html_escapes_levels_and_keeps_the_footnote():
    df = pd.DataFrame({"note": ["<script>alert(1)</script>", "ok", "ok", "<script>alert(1)</script>"],
                       "part": ["train", "train", "external", "external"]})
    fragment = _table(df, "part", {"note": "categorical"}).to_html(caption="Table <1>")
    assert "<script" not in fragment
    assert "&lt;script&gt;" in fragment
    assert "Table &lt;1&gt;" in fragment
    assert "table-note" in fragment


def test_p_values_use_the_one_p_value_format():
    df = pd.DataFrame({"calc": ["no"] * 40 + ["yes"] * 40, "part": ["train"] * 35 + ["external"] * 45},
                      index=[f"c{i}" for i in range(80)])
    p_cell = _table(df, "part", {"calc": "binary"}).to_frame().loc[("calc, n (%)", ""), "p-value"]
    assert p_cell == "<0.001"


def test_baseline_table_needs_the_statistics():
    with pytest.raises(TypeError, match="baseline_statistics"):
        baseline_table(_frame(NORMAL_A, NORMAL_B))


def _patient_frame():
    rng = np.random.default_rng(1)
    n = 40
    df = pd.DataFrame({"age": rng.normal(55, 9, n), "part": ["train"] * 24 + ["external"] * 16,
                       "y": np.tile([0, 1], n // 2)}, index=[f"c{i}" for i in range(n)])
    return df


def test_several_images_per_patient_count_images_and_patients():
    df = _patient_frame()
    # Training: 24 images of 12 patients (two each, same class); external: one image per patient.
    patients = pd.Series([f"p{i // 2}" if i < 24 else f"q{i}" for i in range(len(df))], index=df.index)
    df["y"] = [(i // 2) % 2 if i < 24 else i % 2 for i in range(len(df))]
    statistics = baseline_statistics(df, "part", {"age": "numeric"}, patient=patients)
    result = baseline_table(statistics)
    table = result.to_frame()
    assert list(table.columns[:2]) == ["Training (n=24 images, 12 patients)",
                                       "External validation (n=16 images, 16 patients)"]
    assert result.note.endswith(" " + statistics.patient_rule)
    labelled = baseline_table(baseline_statistics(df, "part", {"age": "numeric"}, label="y", patient=patients),
                              label_names={0: "benign", 1: "malignant"}).to_frame()
    assert labelled.columns[0] == ("Training (n=24 images, 12 patients)", "benign (n=12 images, 6 patients)")


def test_one_image_per_patient_keeps_the_image_table():
    df = _patient_frame()
    patients = pd.Series([f"p{i}" for i in range(len(df))], index=df.index)
    with_patients = baseline_table(baseline_statistics(df, "part", {"age": "numeric"}, label="y",
                                                       patient=patients))
    without = baseline_table(baseline_statistics(df, "part", {"age": "numeric"}, label="y"))
    assert list(with_patients.to_frame().columns) == list(without.to_frame().columns)
    assert with_patients.to_frame().columns[0] == ("Training (n=24)", "0 (n=12)")
    assert with_patients.note == without.note
    pd.testing.assert_frame_equal(with_patients.to_frame(), without.to_frame())
