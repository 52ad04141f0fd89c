"""Baseline table on the real Polish breast-lesion cohort (skipped when the data are absent)."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from sonorad.evaluation.baseline import baseline_statistics
from sonorad.report import Report, baseline_table


@pytest.mark.data
def test_baseline_table_of_breast_lesions_usg(shared_data, tmp_path):
    cases = pd.read_csv(shared_data / "breast_lesions_usg" / "cases.csv").set_index("case_id", drop=False)
    variables = {"age": "numeric", "shape": "categorical", "halo": "binary",
                 "birads": "ordinal"}
    result = baseline_table(baseline_statistics(cases, None, variables, label="label"),
                            label_names={0: "benign", 1: "malignant"})
    table = result.to_frame()
    group = "All (n=252)"
    assert (group, "benign (n=154)") in table.columns and (group, "malignant (n=98)") in table.columns
    missing = table.loc[[i for i in table.index if i[0].startswith("age") and i[1] == "Missing"]]
    n_missing = int(cases["age"].isna().sum())
    assert n_missing == 41
    total_missing = sum(int(cell.split(" ")[0]) for cell in missing.iloc[0, :2])
    assert total_missing == n_missing
    benign = cases.loc[cases["label"] == 0, "age"].dropna()
    malignant = cases.loc[cases["label"] == 1, "age"].dropna()
    row = result.tests[result.tests["variable"] == "age"].iloc[0]
    expected = (stats.ttest_ind(benign, malignant, equal_var=False) if row["test"] == "welch"
                else stats.mannwhitneyu(benign, malignant, alternative="two-sided")).pvalue
    assert row["p_value"] == pytest.approx(expected, rel=1e-12)
    assert row["p_value"] < 0.001  # malignant lesions occur in older women in this cohort
    report = Report("Breast lesions USG").add_section("baseline", "Baseline characteristics")
    report.add_table("baseline", result, "Baseline characteristics by outcome")
    assert "Table 1." in report.write(tmp_path / "report.html").read_text(encoding="utf-8")
