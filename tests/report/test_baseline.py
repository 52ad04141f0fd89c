"""Tests of sonorad.report.baseline: summaries and p-values against scipy.stats on the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sonorad.report.baseline import baseline_table, format_p_value
from sonorad.study import StudyConfig

# Two samples that pass Shapiro-Wilk (quantiles of a normal distribution) and two skewed ones.
NORMAL_A = stats.norm.ppf(np.linspace(0.05, 0.95, 15), loc=50, scale=8)
NORMAL_B = stats.norm.ppf(np.linspace(0.05, 0.95, 12), loc=56, scale=10)
SKEWED_A = np.array([1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 8, 13, 40, 90], dtype=float)
SKEWED_B = np.array([2, 3, 3, 4, 4, 5, 6, 9, 15, 30, 70, 150], dtype=float)


def _frame(a, b, name="x", groups=("train", "external")) -> pd.DataFrame:
    values = np.concatenate([a, b])
    part = [groups[0]] * len(a) + [groups[1]] * len(b)
    return pd.DataFrame({name: values, "part": part}, index=[f"case{i:03d}" for i in range(len(values))])


def _p(result, variable, comparison="between groups") -> float:
    tests = result.tests
    row = tests[(tests["variable"] == variable) & (tests["comparison"] == comparison)]
    assert len(row) == 1
    return float(row["p_value"].iloc[0])


def _test_key(result, variable, comparison="between groups") -> str:
    tests = result.tests
    return tests.loc[(tests["variable"] == variable) & (tests["comparison"] == comparison), "test"].item()


def test_normal_numeric_two_groups_uses_welch_and_mean_sd():
    assert stats.shapiro(NORMAL_A).pvalue > 0.05 and stats.shapiro(NORMAL_B).pvalue > 0.05
    result = baseline_table(_frame(NORMAL_A, NORMAL_B), "part", {"x": "numeric"})
    expected = stats.ttest_ind(NORMAL_A, NORMAL_B, equal_var=False).pvalue
    assert _test_key(result, "x") == "welch"
    assert _p(result, "x") == pytest.approx(expected, rel=1e-12)
    table = result.to_frame()
    assert list(table.columns) == ["Training (n=15)", "External validation (n=12)", "p-value", "Test"]
    row = table.loc[("x, mean ± SD", "")]
    assert row["Training (n=15)"] == f"{NORMAL_A.mean():.1f} ± {NORMAL_A.std(ddof=1):.1f}"
    assert row["p-value"] == format_p_value(expected)
    assert row["Test"] == "Welch t"


def test_skewed_numeric_two_groups_uses_mann_whitney_and_median_iqr():
    assert stats.shapiro(SKEWED_A).pvalue < 0.05
    result = baseline_table(_frame(SKEWED_A, SKEWED_B), "part", {"x": "numeric"})
    expected = stats.mannwhitneyu(SKEWED_A, SKEWED_B, alternative="two-sided").pvalue
    assert _test_key(result, "x") == "mannwhitney"
    assert _p(result, "x") == pytest.approx(expected, rel=1e-12)
    q1, med, q3 = np.percentile(SKEWED_B, [25, 50, 75])
    cell = result.to_frame().loc[("x, median [IQR]", ""), "External validation (n=12)"]
    assert cell == f"{med:.1f} [{q1:.1f}, {q3:.1f}]"


def test_three_groups_use_anova_or_kruskal():
    c = stats.norm.ppf(np.linspace(0.05, 0.95, 10), loc=45, scale=6)
    df = pd.DataFrame({"x": np.concatenate([NORMAL_A, NORMAL_B, c]),
                       "part": ["train"] * 15 + ["internal"] * 12 + ["external"] * 10})
    result = baseline_table(df, "part", {"x": "numeric"})
    assert _test_key(result, "x") == "anova"
    assert _p(result, "x") == pytest.approx(stats.f_oneway(NORMAL_A, NORMAL_B, c).pvalue, rel=1e-12)
    # Order of columns: train, internal, external, whatever the row order.
    assert list(result.to_frame().columns)[:3] == ["Training (n=15)", "Internal validation (n=12)",
                                                   "External validation (n=10)"]
    skewed_c = np.array([0.5, 1, 1, 1, 2, 2, 3, 20, 60, 200])
    df["y"] = np.concatenate([np.resize(SKEWED_A, 15), np.resize(SKEWED_B, 12), skewed_c])
    result = baseline_table(df, "part", {"y": "numeric"})
    assert _test_key(result, "y") == "kruskal"
    assert _p(result, "y") == pytest.approx(
        stats.kruskal(np.resize(SKEWED_A, 15), np.resize(SKEWED_B, 12), skewed_c).pvalue, rel=1e-12)


def test_forced_summaries_override_normality():
    df = _frame(SKEWED_A, SKEWED_B)
    mean = baseline_table(df, "part", {"x": "numeric"}, numeric="mean")
    assert _test_key(mean, "x") == "welch"
    assert _p(mean, "x") == pytest.approx(stats.ttest_ind(SKEWED_A, SKEWED_B, equal_var=False).pvalue)
    median = baseline_table(_frame(NORMAL_A, NORMAL_B), "part", {"x": "numeric"}, numeric="median")
    assert _test_key(median, "x") == "mannwhitney"
    both = baseline_table(df, "part", {"x": "numeric"}, numeric="both")
    cell = both.to_frame().iloc[0, 0]
    assert "±" in cell and "[" in cell and _test_key(both, "x") == "mannwhitney"


def _categorical_frame(counts_train, counts_external, levels=("no", "yes")) -> pd.DataFrame:
    values, part = [], []
    for name, counts in (("train", counts_train), ("external", counts_external)):
        for level, n in zip(levels, counts):
            values += [level] * n
            part += [name] * n
    return pd.DataFrame({"calc": values, "part": part}, index=[f"c{i}" for i in range(len(values))])


def test_sparse_2x2_table_uses_fisher_exact():
    # levels x groups = [[8, 1], [2, 5]]: expected counts below 5, so Fisher is required.
    df = _categorical_frame([8, 2], [1, 5])
    observed = np.array([[8, 1], [2, 5]])
    assert (stats.contingency.expected_freq(observed) < 5).any()
    result = baseline_table(df, "part", {"calc": "binary"})
    assert _test_key(result, "calc") == "fisher"
    assert _p(result, "calc") == pytest.approx(stats.fisher_exact(observed).pvalue, rel=1e-12)
    table = result.to_frame()
    assert table.loc[("calc, n (%)", "no"), "Training (n=10)"] == "8 (80.0%)"
    assert table.loc[("calc, n (%)", "yes"), "External validation (n=6)"] == "5 (83.3%)"
    assert table.loc[("calc, n (%)", ""), "Test"] == "Fisher exact"


def test_large_2x2_table_uses_yates_chi_square():
    df = _categorical_frame([40, 20], [25, 35])
    observed = np.array([[40, 25], [20, 35]])
    result = baseline_table(df, "part", {"calc": "binary"})
    assert _test_key(result, "calc") == "chi2"
    assert _p(result, "calc") == pytest.approx(stats.chi2_contingency(observed, correction=True).pvalue, rel=1e-12)


def test_sparse_larger_table_uses_seeded_monte_carlo_fisher():
    df = _categorical_frame([6, 3, 1], [1, 4, 6], levels=("a", "b", "c"))
    observed = np.array([[6, 1], [3, 4], [1, 6]])
    first = baseline_table(df, "part", {"calc": "categorical"}, random_state=3, n_resamples=2000)
    again = baseline_table(df, "part", {"calc": "categorical"}, random_state=3, n_resamples=2000)
    assert _test_key(first, "calc") == "fisher_mc"
    assert _p(first, "calc") == _p(again, "calc")
    reference = stats.fisher_exact(observed, method=stats.MonteCarloMethod(
        n_resamples=2000, rng=np.random.default_rng(3))).pvalue
    assert _p(first, "calc") == pytest.approx(reference, rel=1e-12)
    assert "Monte Carlo" in first.note and "seed 3" in first.note


def test_missing_values_are_counted_and_left_out_of_tests():
    df = _frame(NORMAL_A, NORMAL_B)
    df.iloc[[0, 1, 20], 0] = np.nan
    result = baseline_table(df, "part", {"x": "numeric"})
    table = result.to_frame()
    missing = table.loc[(table.index[0][0], "Missing")]
    assert missing["Training (n=15)"] == "2 (13.3%)"
    assert missing["External validation (n=12)"] == "1 (8.3%)"
    a, b = NORMAL_A[2:], np.delete(NORMAL_B, 20 - 15)
    assert result.tests["n"].item() == len(a) + len(b)
    expected_key = _test_key(result, "x")
    expected = (stats.ttest_ind(a, b, equal_var=False) if expected_key == "welch"
                else stats.mannwhitneyu(a, b, alternative="two-sided")).pvalue
    assert _p(result, "x") == pytest.approx(expected, rel=1e-12)
    assert ("x, mean ± SD", "Missing") not in baseline_table(_frame(NORMAL_A, NORMAL_B), "part",
                                                             {"x": "numeric"}).to_frame().index


def test_label_splits_each_group_and_compares_classes_within_it():
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame({"age": rng.normal(55, 9, n), "part": ["train"] * 24 + ["external"] * 16,
                       "y": np.tile([0, 1], n // 2)}, index=[f"c{i}" for i in range(n)])
    result = baseline_table(df, "part", {"age": "numeric"}, label="y", label_names={0: "benign", 1: "malignant"})
    table = result.to_frame()
    assert ("Training (n=24)", "benign (n=12)") in table.columns
    assert ("External validation (n=16)", "p-value") in table.columns
    for part, name in (("train", "Training"), ("external", "External validation")):
        sub = df[df["part"] == part]
        a, b = sub.loc[sub["y"] == 0, "age"], sub.loc[sub["y"] == 1, "age"]
        key = _test_key(result, "age", name)
        expected = (stats.ttest_ind(a, b, equal_var=False) if key == "welch"
                    else stats.mannwhitneyu(a, b, alternative="two-sided")).pvalue
        assert _p(result, "age", name) == pytest.approx(expected, rel=1e-12)


def test_study_variables_give_types_and_level_order():
    study = StudyConfig.from_dict({
        "name": "t", "variables": {"birads": {"type": "ordinal", "order": [5, 4, 3]},
                                   "sex": {"type": "binary", "levels": ["female", "male"]}}})
    df = pd.DataFrame({"birads": [3, 4, 5, 5, 4.0, 3], "sex": ["male", "female"] * 3,
                       "part": ["train"] * 3 + ["internal"] * 3})
    result = baseline_table(df, "part", study)
    levels = [lv for var, lv in result.to_frame().index if var.startswith("birads")]
    assert levels == ["", "5", "4", "3"]
    levels = [lv for var, lv in result.to_frame().index if var.startswith("sex")]
    assert levels == ["", "female", "male"]


def test_undeclared_levels_are_shown_not_hidden():
    df = pd.DataFrame({"shape": ["oval", "round", "irregular", "oval"], "part": ["train"] * 4})
    result = baseline_table(df, None, {"shape": "categorical"})
    assert sorted(lv for _, lv in result.to_frame().index if lv) == ["irregular", "oval", "round"]
    assert list(result.to_frame().columns) == ["All (n=4)"]  # one group: no p-value column
    assert result.tests.empty


def test_bad_input_names_the_column_or_case():
    df = _frame(NORMAL_A, NORMAL_B)
    with pytest.raises(ValueError, match="'size'.*not columns"):
        baseline_table(df, "part", {"size": "numeric"})
    with pytest.raises(ValueError, match="type 'number'"):
        baseline_table(df, "part", {"x": "number"})
    df["x"] = df["x"].astype(object)
    df.loc["case003", "x"] = "twelve"
    with pytest.raises(ValueError, match=r"case003 \('twelve'\)"):
        baseline_table(df, "part", {"x": "numeric"})
    df = _frame(NORMAL_A, NORMAL_B)
    df.loc["case004", "part"] = None
    with pytest.raises(ValueError, match="case004 have no group"):
        baseline_table(df, "part", {"x": "numeric"})
    with pytest.raises(ValueError, match="group='center' is not a column"):
        baseline_table(df, "center", {"x": "numeric"})


def test_to_html_escapes_levels_and_keeps_the_footnote():
    df = pd.DataFrame({"note": ["<script>alert(1)</script>", "ok", "ok", "<script>alert(1)</script>"],
                       "part": ["train", "train", "external", "external"]})
    fragment = baseline_table(df, "part", {"note": "categorical"}).to_html(caption="Table <1>")
    assert "<script" not in fragment
    assert "&lt;script&gt;" in fragment
    assert "Table &lt;1&gt;" in fragment
    assert "table-note" in fragment


def test_format_p_value():
    assert format_p_value(0.00099) == "<0.001"
    assert format_p_value(0.001) == "0.001"
    assert format_p_value(0.0456) == "0.046"
    assert format_p_value(float("nan")) == ""


def test_ordinal_rank_test_uses_the_level_order():
    levels = ("2", "3", "4", "5")
    df = pd.DataFrame({"birads": ["2", "3", "3", "4", "5", "3", "4", "4", "5", "5", "5", None],
                       "part": ["train"] * 6 + ["external"] * 6})
    spec = StudyConfig.from_dict({"name": "t", "variables": {"birads": {"type": "ordinal",
                                                                        "order": list(levels)}}}).variables
    result = baseline_table(df, "part", spec, ordinal_test="rank")
    assert _test_key(result, "birads") == "mannwhitney"
    train = [0, 1, 1, 2, 3, 1]
    external = [2, 2, 3, 3, 3]
    expected = stats.mannwhitneyu(train, external, alternative="two-sided").pvalue
    assert _p(result, "birads") == pytest.approx(expected, rel=1e-12)
    assert _test_key(baseline_table(df, "part", spec), "birads") in ("chi2", "fisher_mc")
    with pytest.raises(ValueError, match="ordinal_test"):
        baseline_table(df, "part", spec, ordinal_test="trend")
