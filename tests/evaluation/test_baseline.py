"""Tests of sonorad.evaluation.baseline: summaries and p-values against scipy.stats on the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sonorad.evaluation.baseline import baseline_statistics
from sonorad.study import StudyConfig

from tests.evaluation.baseline_samples import NORMAL_A, NORMAL_B, SKEWED_A, SKEWED_B
from tests.evaluation.baseline_samples import frame as _frame


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
    result = baseline_statistics(_frame(NORMAL_A, NORMAL_B), "part", {"x": "numeric"})
    expected = stats.ttest_ind(NORMAL_A, NORMAL_B, equal_var=False).pvalue
    assert _test_key(result, "x") == "welch"
    assert _p(result, "x") == pytest.approx(expected, rel=1e-12)
    summary = result.variables[0].summary[("train", None)]
    assert summary["mean"] == pytest.approx(NORMAL_A.mean()) and summary["sd"] == pytest.approx(NORMAL_A.std(ddof=1))
    assert result.variables[0].normal is True


def test_skewed_numeric_two_groups_uses_mann_whitney_and_median_iqr():
    assert stats.shapiro(SKEWED_A).pvalue < 0.05
    result = baseline_statistics(_frame(SKEWED_A, SKEWED_B), "part", {"x": "numeric"})
    expected = stats.mannwhitneyu(SKEWED_A, SKEWED_B, alternative="two-sided").pvalue
    assert _test_key(result, "x") == "mannwhitney"
    assert _p(result, "x") == pytest.approx(expected, rel=1e-12)
    q1, med, q3 = np.percentile(SKEWED_B, [25, 50, 75])
    summary = result.variables[0].summary[("external", None)]
    assert (summary["q1"], summary["median"], summary["q3"]) == (q1, med, q3)
    assert result.variables[0].normal is False


def test_three_groups_use_anova_or_kruskal():
    c = stats.norm.ppf(np.linspace(0.05, 0.95, 10), loc=45, scale=6)
    df = pd.DataFrame({"x": np.concatenate([NORMAL_A, NORMAL_B, c]),
                       "part": ["train"] * 15 + ["internal"] * 12 + ["external"] * 10})
    result = baseline_statistics(df, "part", {"x": "numeric"})
    assert _test_key(result, "x") == "anova"
    assert _p(result, "x") == pytest.approx(stats.f_oneway(NORMAL_A, NORMAL_B, c).pvalue, rel=1e-12)
    # Order of columns: train, internal, external, whatever the row order.
    assert [(c.group, c.n) for c in result.columns] == [("train", 15), ("internal", 12), ("external", 10)]
    skewed_c = np.array([0.5, 1, 1, 1, 2, 2, 3, 20, 60, 200])
    df["y"] = np.concatenate([np.resize(SKEWED_A, 15), np.resize(SKEWED_B, 12), skewed_c])
    result = baseline_statistics(df, "part", {"y": "numeric"})
    assert _test_key(result, "y") == "kruskal"
    assert _p(result, "y") == pytest.approx(
        stats.kruskal(np.resize(SKEWED_A, 15), np.resize(SKEWED_B, 12), skewed_c).pvalue, rel=1e-12)


def test_forced_summaries_override_normality():
    df = _frame(SKEWED_A, SKEWED_B)
    mean = baseline_statistics(df, "part", {"x": "numeric"}, numeric="mean")
    assert _test_key(mean, "x") == "welch"
    assert _p(mean, "x") == pytest.approx(stats.ttest_ind(SKEWED_A, SKEWED_B, equal_var=False).pvalue)
    median = baseline_statistics(_frame(NORMAL_A, NORMAL_B), "part", {"x": "numeric"}, numeric="median")
    assert _test_key(median, "x") == "mannwhitney"
    both = baseline_statistics(df, "part", {"x": "numeric"}, numeric="both")
    assert _test_key(both, "x") == "mannwhitney"


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
    result = baseline_statistics(df, "part", {"calc": "binary"})
    assert _test_key(result, "calc") == "fisher"
    assert _p(result, "calc") == pytest.approx(stats.fisher_exact(observed).pvalue, rel=1e-12)
    variable = result.variables[0]
    assert variable.levels == ("no", "yes")
    assert variable.summary[("train", None)]["counts"].tolist() == [8, 2]
    assert variable.summary[("external", None)]["counts"].tolist() == [1, 5]


def test_large_2x2_table_uses_yates_chi_square():
    df = _categorical_frame([40, 20], [25, 35])
    observed = np.array([[40, 25], [20, 35]])
    result = baseline_statistics(df, "part", {"calc": "binary"})
    assert _test_key(result, "calc") == "chi2"
    assert _p(result, "calc") == pytest.approx(stats.chi2_contingency(observed, correction=True).pvalue, rel=1e-12)


def test_sparse_larger_table_uses_seeded_monte_carlo_fisher():
    df = _categorical_frame([6, 3, 1], [1, 4, 6], levels=("a", "b", "c"))
    observed = np.array([[6, 1], [3, 4], [1, 6]])
    first = baseline_statistics(df, "part", {"calc": "categorical"}, random_state=3, n_resamples=2000)
    again = baseline_statistics(df, "part", {"calc": "categorical"}, random_state=3, n_resamples=2000)
    assert _test_key(first, "calc") == "fisher_mc"
    assert _p(first, "calc") == _p(again, "calc")
    reference = stats.fisher_exact(observed, method=stats.MonteCarloMethod(
        n_resamples=2000, rng=np.random.default_rng(3))).pvalue
    assert _p(first, "calc") == pytest.approx(reference, rel=1e-12)
    assert first.tests_used == {"fisher_mc"} and first.random_state == 3


def test_missing_values_are_counted_and_left_out_of_tests():
    df = _frame(NORMAL_A, NORMAL_B)
    df.iloc[[0, 1, 20], 0] = np.nan
    result = baseline_statistics(df, "part", {"x": "numeric"})
    summary = result.variables[0].summary
    assert (summary[("train", None)]["missing"], summary[("train", None)]["total"]) == (2, 15)
    assert (summary[("external", None)]["missing"], summary[("external", None)]["total"]) == (1, 12)
    a, b = NORMAL_A[2:], np.delete(NORMAL_B, 20 - 15)
    assert result.tests["n"].item() == len(a) + len(b)
    expected_key = _test_key(result, "x")
    expected = (stats.ttest_ind(a, b, equal_var=False) if expected_key == "welch"
                else stats.mannwhitneyu(a, b, alternative="two-sided")).pvalue
    assert _p(result, "x") == pytest.approx(expected, rel=1e-12)
    clean = baseline_statistics(_frame(NORMAL_A, NORMAL_B), "part", {"x": "numeric"})
    assert all(s["missing"] == 0 for s in clean.variables[0].summary.values())


def test_label_splits_each_group_and_compares_classes_within_it():
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame({"age": rng.normal(55, 9, n), "part": ["train"] * 24 + ["external"] * 16,
                       "y": np.tile([0, 1], n // 2)}, index=[f"c{i}" for i in range(n)])
    result = baseline_statistics(df, "part", {"age": "numeric"}, label="y")
    assert result.labelled and ("train", 0) in result.variables[0].summary
    assert [c.n for c in result.columns if c.group == "train"] == [12, 12]
    for part, name in (("train", "train"), ("external", "external")):
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
    result = baseline_statistics(df, "part", study)
    levels = {v.name: v.levels for v in result.variables}
    assert levels == {"birads": ("5", "4", "3"), "sex": ("female", "male")}


def test_undeclared_levels_are_shown_not_hidden():
    df = pd.DataFrame({"shape": ["oval", "round", "irregular", "oval"], "part": ["train"] * 4})
    result = baseline_statistics(df, None, {"shape": "categorical"})
    assert sorted(result.variables[0].levels) == ["irregular", "oval", "round"]
    assert [c.group for c in result.columns] == ["All"] and not result.comparisons  # one group: no test
    assert result.tests.empty


def test_bad_input_names_the_column_or_case():
    df = _frame(NORMAL_A, NORMAL_B)
    with pytest.raises(ValueError, match="'size'.*not columns"):
        baseline_statistics(df, "part", {"size": "numeric"})
    with pytest.raises(ValueError, match="type 'number'"):
        baseline_statistics(df, "part", {"x": "number"})
    df["x"] = df["x"].astype(object)
    df.loc["case003", "x"] = "twelve"
    with pytest.raises(ValueError, match=r"case003 \('twelve'\)"):
        baseline_statistics(df, "part", {"x": "numeric"})
    df = _frame(NORMAL_A, NORMAL_B)
    df.loc["case004", "part"] = None
    with pytest.raises(ValueError, match="case004 have no group"):
        baseline_statistics(df, "part", {"x": "numeric"})
    with pytest.raises(ValueError, match="group='center' is not a column"):
        baseline_statistics(df, "center", {"x": "numeric"})


def test_ordinal_rank_test_uses_the_level_order():
    levels = ("2", "3", "4", "5")
    df = pd.DataFrame({"birads": ["2", "3", "3", "4", "5", "3", "4", "4", "5", "5", "5", None],
                       "part": ["train"] * 6 + ["external"] * 6})
    spec = StudyConfig.from_dict({"name": "t", "variables": {"birads": {"type": "ordinal",
                                                                        "order": list(levels)}}}).variables
    result = baseline_statistics(df, "part", spec, ordinal_test="rank")
    assert _test_key(result, "birads") == "mannwhitney"
    train = [0, 1, 1, 2, 3, 1]
    external = [2, 2, 3, 3, 3]
    expected = stats.mannwhitneyu(train, external, alternative="two-sided").pvalue
    assert _p(result, "birads") == pytest.approx(expected, rel=1e-12)
    assert _test_key(baseline_statistics(df, "part", spec), "birads") in ("chi2", "fisher_mc")
    with pytest.raises(ValueError, match="ordinal_test"):
        baseline_statistics(df, "part", spec, ordinal_test="trend")


# -- patients, not images -------------------------------------------------------------------------
def _patients_table() -> pd.DataFrame:
    """Training: 10 patients with 3 images each (age per patient, size and margin per image);
    external: 8 patients with one image each."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(10):
        age = 40 + 3 * i
        for j in range(3):
            margin = None if (i, j) == (1, 0) else ["smooth", "irregular", "smooth"][(i + j) % 3]
            rows.append({"patient_id": f"t{i}", "part": "train", "age": np.nan if (i, j) == (0, 2) else age,
                         "size": float(rng.integers(5, 40)), "margin": margin})
    for i in range(8):
        rows.append({"patient_id": f"e{i}", "part": "external", "age": 50 + 4 * i, "size": float(rng.integers(5, 40)),
                     "margin": "irregular" if i % 3 else "smooth"})
    table = pd.DataFrame(rows)
    table.index = [f"case{k:03d}" for k in range(len(table))]
    return table


def test_patients_and_images_are_both_counted():
    table = _patients_table()
    s = baseline_statistics(table, "part", {"age": "numeric"}, patient="patient_id")
    assert [(c.group, c.n, c.patients) for c in s.columns] == [("train", 30, 10), ("external", 8, 8)]
    assert s.group_sizes == {"train": 30, "external": 8} and s.patient_sizes == {"train": 10, "external": 8}
    assert s.several_images_per_patient and "one row per patient" in s.patient_rule
    plain = baseline_statistics(table, "part", {"age": "numeric"})
    assert plain.patient_sizes is None and not plain.several_images_per_patient
    assert plain.columns[0].patients is None


def test_tests_use_one_row_per_patient():
    table = _patients_table()
    variables = {"age": "numeric", "size": "numeric", "margin": "categorical"}
    s = baseline_statistics(table, "part", variables, patient="patient_id", numeric="median")
    train, ext = table[table.part == "train"], table[table.part == "external"]
    # numeric: the mean of each patient's values (missing values skipped)
    for name in ("age", "size"):
        per_patient = train.groupby("patient_id", sort=False)[name].mean()
        expected = stats.mannwhitneyu(per_patient.to_numpy(), ext[name].to_numpy(), alternative="two-sided")
        assert _p(s, name) == pytest.approx(expected.pvalue)
        assert s.tests.set_index("variable").loc[name, "n"] == 18
        # the summaries still describe the images
        assert s.variables[list(variables).index(name)].summary[("train", None)]["total"] == 30
    # categorical: each patient's first image with a value (t1's first image has none)
    first = train.groupby("patient_id", sort=False)["margin"].first()
    assert first["t1"] == train.margin.iloc[4] == "smooth"
    observed = np.array([[(first == lv).sum(), (ext.margin == lv).sum()] for lv in ("irregular", "smooth")])
    expected = stats.fisher_exact(observed) if (stats.contingency.expected_freq(observed) < 5).any() \
        else stats.chi2_contingency(observed)
    assert _p(s, "margin") == pytest.approx(expected.pvalue)
    # per image the tests would be different
    per_image = baseline_statistics(table, "part", variables, numeric="median")
    assert _p(per_image, "age") != pytest.approx(_p(s, "age"))


def test_one_image_per_patient_keeps_the_tests_unchanged():
    table = _patients_table().drop_duplicates("patient_id")
    variables = {"age": "numeric", "size": "numeric", "margin": "categorical"}
    with_patients = baseline_statistics(table, "part", variables, label=None, patient="patient_id")
    pd.testing.assert_frame_equal(with_patients.tests, baseline_statistics(table, "part", variables).tests)
    assert with_patients.patient_rule == "" and with_patients.patient_sizes == with_patients.group_sizes


def test_a_case_without_patient_is_named():
    table = _patients_table()
    table.loc["case004", "patient_id"] = None
    with pytest.raises(ValueError, match="case004 have no patient"):
        baseline_statistics(table, "part", {"age": "numeric"}, patient="patient_id")
