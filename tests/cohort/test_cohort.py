"""load_cohort and the Cohort: outcome, parts, subsets, summary."""

from __future__ import annotations

import pytest

from sonorad.cohort import load_cohort
from sonorad.errors import ConfigError

from .builders import make_cohort, patient_parts, rows_of, study_of


def test_clean_table_has_no_problems_and_loads(tmp_path):
    csv = make_cohort(tmp_path, rows_of())
    cohort = load_cohort(csv)
    assert cohort.warnings == ()
    assert cohort.y.tolist() == [int((p // 3) % 2) for p in range(12) for _ in range(2)]
    assert cohort.y.index.equals(cohort.table.index)
    assert set(cohort.split_labels()) == {"train"}


def test_summary_counts_cases_patients_and_classes_per_part(tmp_path):
    rows = rows_of(n_patients=12, centers=("A", "B", "C"), images_per_patient=2)
    csv = make_cohort(tmp_path, rows)
    cohort = load_cohort(csv, study=study_of(split={"by": "center", "train": ["A", "B"], "external": ["C"]}))
    text = cohort.summary()
    assert "24 cases, 12 patients, 3 centers" in text
    assert "12 positive, 12 negative (50.0% positive)" in text
    assert "by center; train = A, B; external = C" in text
    lines = {tuple(line.split()[:2]): line.split()[2:] for line in text.splitlines()[5:]}
    assert lines[("train", "A")] == ["8", "4", "4", "4"]
    assert lines[("train", "(all)")] == ["16", "8", "8", "8"]
    assert lines[("external", "C")] == ["8", "4", "4", "4"]


def test_load_cohort_uses_the_study_cohort_path(tmp_path):
    make_cohort(tmp_path, rows_of())
    study_file = tmp_path / "study.yaml"
    study_file.write_text("name: t\ncohort: cases.csv\n")
    from sonorad.study import load_study

    cohort = load_cohort(study=load_study(study_file))
    assert len(cohort.table) == 24
    with pytest.raises(ConfigError, match="needs csv_path"):
        load_cohort()


@pytest.mark.data
def test_real_cohorts_load_without_errors(shared_data):
    bus = load_cohort(shared_data / "bus_bra" / "cases.csv", study=study_of(
        variables={"birads": {"type": "ordinal", "order": [2, 3, 4, 5], "role": "ultrasound"}},
        split={"by": "center", "train": ["GE-Logiq7", "GE-Logiq5"], "external": ["Toshiba-Aplio300", "U-Systems"],
               "internal_fraction": 0.2}))
    assert len(bus.table) == 930 and bus.table["patient_id"].nunique() == 526
    parts = patient_parts(bus)                                   # patients with several images: one part
    assert (parts == "internal").sum() == round(0.2 * (parts != "external").sum())
    assert int(bus.y.sum()) == 333

    usg = load_cohort(shared_data / "breast_lesions_usg" / "cases.csv", study=study_of(
        variables={"age": {"type": "numeric", "role": "clinical"},
                   "birads": {"type": "ordinal", "order": [1, 2, 3, "4a", "4b", "4c", 5]},
                   "halo": {"type": "binary", "levels": ["no", "yes"]}},
        split={"by": "patient", "test_fraction": 0.3}))
    assert len(usg.table) == 252 and int(usg.y.sum()) == 98
    assert [w.column for w in usg.warnings] == ["age"]          # 41 ages missing: listed, not blocking
    assert "41 of 252" in usg.warnings[0].message
    patient_parts(usg)
