"""The report pieces composed as in docs/report.md, on an in-memory cohort."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from sonorad.cohort import Cohort
from sonorad.evaluation.baseline import baseline_statistics
from sonorad.report import (Report, baseline_table, cohort_flow_counts, cohort_flow_figure, external_references,
                            methods_paragraph, save_figure, tripod_checklist)
from sonorad.study import StudyConfig


def _cohort() -> Cohort:
    rng = np.random.default_rng(5)
    n = 90
    centers = np.repeat(["A", "B", "C"], n // 3)
    table = pd.DataFrame({
        "case_id": [f"case{i:03d}" for i in range(n)], "patient_id": [f"p{i:03d}" for i in range(n)],
        "center": centers, "image": "x.png", "mask": "m.png", "label": rng.integers(0, 2, n),
        "age": np.round(rng.normal(52, 11, n)), "calcification": rng.integers(0, 2, n),
        "birads": rng.choice([3, 4, 5], n)})
    table.index = pd.Index(table["case_id"], name="case_id")
    study = StudyConfig.from_dict({
        "name": "demo", "description": "synthetic", "seed": 3,
        "variables": {"age": {"type": "numeric", "role": "clinical"},
                      "calcification": {"type": "binary", "role": "ultrasound"},
                      "birads": {"type": "ordinal", "order": [3, 4, 5], "role": "ultrasound"}},
        "split": {"by": "center", "train": ["A", "B"], "external": ["C"], "internal_fraction": 0.25}})
    return Cohort(table=table, study=study)


def test_report_from_cohort_and_study(tmp_path):
    cohort = _cohort()
    study = cohort.study
    failures = pd.DataFrame({"case_id": ["case001", "case050"], "stage": ["read", "extract"],
                             "error": ["unreadable", "empty mask"], "fix": ["", ""]})
    counts = cohort_flow_counts(cohort.split_labels(), cohort.y, failures)
    assert sum(p["n"] for p in counts["parts"].values()) == 88
    assert set(counts["parts"]) == {"train", "internal", "external"}
    flow = cohort_flow_figure(counts, title=study.name)
    png, svg = save_figure(flow, "cohort_flow", tmp_path / "figures")
    table1 = baseline_table(baseline_statistics(cohort.table, cohort.split_labels(), study, label=cohort.y,
                                                random_state=study.seed),
                            label_names={0: "negative", 1: "positive"})
    assert set(table1.tests["comparison"]) == {"Training", "Internal validation", "External validation"}
    report = Report(f"Study {study.name}", subtitle=study.description)
    report.add_section("methods", "Methods", text=methods_paragraph(study, extra={"counts": counts}))
    report.add_section("cohort", "Participants")
    report.add_figure("cohort", flow, "Flow of cases through the study")
    report.add_figure("cohort", svg, "The same flow, vector")
    report.add_table("cohort", table1, "Baseline characteristics")
    report.add_section("checklist", "TRIPOD+AI checklist")
    report.add_table("checklist", tripod_checklist({"20a": "Figure 1", "20b": "Table 1"}), "TRIPOD+AI",
                     index=False)
    document = report.write(tmp_path / "report.html").read_text(encoding="utf-8")
    assert external_references(document) == []
    assert "Table 2." in document and "Figure 2." in document
    assert "88" in document and "seed 3" in document
    assert html.escape(table1.note) in document
