"""Tests of sonorad.cohort: reading, validating and splitting the cohort table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sonorad import cli
from sonorad.cohort import load_cohort, read_cases, validate_cases
from sonorad.errors import CohortError, ConfigError
from sonorad.study import StudyConfig

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # a PNG signature is all the cheap check reads


def _write_files(folder: Path, names) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PNG_BYTES)


def _make_cohort(folder: Path, rows: list[dict], files: bool = True) -> Path:
    """Write cases.csv (and a dummy PNG for every image/mask path) into ``folder``."""
    table = pd.DataFrame(rows)
    if files:
        for column in ("image", "mask", "mask2"):
            if column in table:
                paths = [p for cell in table[column].dropna() for p in str(cell).split(";") if p]
                _write_files(folder, [p for p in paths if not Path(p).is_absolute()])
    csv = folder / "cases.csv"
    table.to_csv(csv, index=False)
    return csv


def _rows(n_patients=12, centers=("A", "B", "C"), images_per_patient=2, **extra) -> list[dict]:
    """Patients spread over centers, alternating labels, each with several images."""
    rows = []
    for p in range(n_patients):
        center = centers[p % len(centers)]
        for i in range(images_per_patient):
            row = {"case_id": f"c{p:02d}_{i}", "patient_id": f"p{p:02d}", "center": center,
                   "image": f"img/c{p:02d}_{i}.png", "mask": f"msk/c{p:02d}_{i}.png", "label": (p // 3) % 2}
            row.update({k: v[p] if isinstance(v, list) else v for k, v in extra.items()})
            rows.append(row)
    return rows


def _study(**kw) -> StudyConfig:
    return StudyConfig.from_dict({"name": "t", **kw})


def _messages(problems) -> str:
    return "\n".join(str(p) for p in problems)


# --- read_cases -----------------------------------------------------------------------------------

def test_read_cases_resolves_paths_and_reads_ids_as_text(tmp_path):
    rows = [
        {"case_id": "001", "patient_id": "0042", "center": "01", "image": "img/a.png",
         "mask": "msk/a1.png; msk/a2.png", "label": 1, "frame": 0},
        {"case_id": "002", "patient_id": "0043", "center": "01", "image": str(tmp_path / "abs.png"),
         "mask": "msk/b.png", "label": 0, "frame": None},
    ]
    csv = _make_cohort(tmp_path, rows)
    table = read_cases(csv)
    assert list(table.index) == ["001", "002"] and table.index.name == "case_id"
    assert table["case_id"].tolist() == ["001", "002"]          # kept as a column, leading zeros kept
    assert table["patient_id"].tolist() == ["0042", "0043"]
    assert table["center"].tolist() == ["01", "01"]
    assert table.at["001", "image"] == str(tmp_path / "img" / "a.png")
    assert table.at["001", "mask"] == f"{tmp_path / 'msk' / 'a1.png'};{tmp_path / 'msk' / 'a2.png'}"
    assert table.at["002", "image"] == str(tmp_path / "abs.png")  # absolute paths unchanged
    assert table["label"].tolist() == [1, 0]


def test_read_cases_lists_every_missing_required_column(tmp_path):
    csv = tmp_path / "cases.csv"
    csv.write_text("case_id,image,label\nx,a.png,1\n")
    with pytest.raises(CohortError) as info:
        read_cases(csv)
    assert [p.column for p in info.value.problems] == ["patient_id", "center", "mask"]
    assert "the table has: case_id, image, label" in str(info.value)


def test_read_cases_missing_file_and_empty_table(tmp_path):
    with pytest.raises(CohortError, match="cohort table not found"):
        read_cases(tmp_path / "nope.csv")
    csv = tmp_path / "cases.csv"
    csv.write_text("case_id,patient_id,center,image,mask,label\n")
    with pytest.raises(CohortError, match="no rows"):
        read_cases(csv)


def test_read_cases_accepts_a_bom_and_spaces_around_names_and_cells(tmp_path):
    _write_files(tmp_path, ["a.png", "m.png"])
    csv = tmp_path / "cases.csv"
    csv.write_bytes("\ufeffcase_id , patient_id,center,image,mask,label\n x1 ,p1, A , a.png , m.png ,1\n".encode())
    table = read_cases(csv)
    assert list(table.columns) == ["case_id", "patient_id", "center", "image", "mask", "label"]
    assert table.index.tolist() == ["x1"] and table.at["x1", "center"] == "A"
    assert table.at["x1", "mask"] == str(tmp_path / "m.png")


# --- validation rules, one by one -----------------------------------------------------------------

def test_clean_table_has_no_problems_and_loads(tmp_path):
    csv = _make_cohort(tmp_path, _rows())
    cohort = load_cohort(csv)
    assert cohort.warnings == ()
    assert cohort.y.tolist() == [int((p // 3) % 2) for p in range(12) for _ in range(2)]
    assert cohort.y.index.equals(cohort.table.index)
    assert set(cohort.split_labels()) == {"train"}


def test_duplicate_case_ids_name_the_csv_lines(tmp_path):
    rows = _rows(n_patients=6, images_per_patient=1)
    rows[3]["case_id"] = rows[1]["case_id"]
    problems = validate_cases(read_cases(_make_cohort(tmp_path, rows)))
    assert len(problems) == 1
    assert problems[0].case_id == "c01_0" and problems[0].column == "case_id"
    assert "appears 2 times (lines 3, 5 of the CSV)" in problems[0].message


def test_missing_files_empty_files_and_non_images_are_reported_per_case(tmp_path):
    rows = _rows(n_patients=6, images_per_patient=1)
    rows[0]["mask"] = "msk/c00_0.png;msk/second.png"        # second lesion's mask missing
    rows[1]["mask2"] = "msk/reader2.png"                      # empty file
    rows[2]["image"] = "img/notes.txt"                        # not an image
    csv = _make_cohort(tmp_path, rows)
    (tmp_path / "msk" / "second.png").unlink()
    (tmp_path / "msk" / "reader2.png").write_bytes(b"")
    (tmp_path / "img" / "notes.txt").write_text("hello, this is text")
    (tmp_path / "img" / "c03_0.png").unlink()
    problems = validate_cases(read_cases(csv))
    found = {(p.case_id, p.column) for p in problems}
    assert found == {("c00_0", "mask"), ("c01_0", "mask2"), ("c02_0", "image"), ("c03_0", "image")}
    text = _messages(problems)
    assert f"{tmp_path / 'msk' / 'second.png'} does not exist" in text
    assert "empty (0 bytes)" in text
    assert "notes.txt" in text
    assert validate_cases(read_cases(csv), check_files=False) == []


def test_missing_labels_and_more_than_two_classes(tmp_path):
    rows = _rows(n_patients=6, images_per_patient=1)
    rows[0]["label"] = None
    rows[1]["label"] = 2
    problems = validate_cases(read_cases(_make_cohort(tmp_path, rows)))
    assert [(p.case_id, p.column) for p in problems] == [("c00_0", "label"), (None, "label")]
    assert problems[0].message == "missing label"
    assert "exactly two classes; found 3: '0' (1 cases), '1' (3 cases), '2' (1 cases)" in problems[1].message


def test_positive_value_must_occur(tmp_path):
    rows = _rows(n_patients=6, images_per_patient=1)
    for row in rows:
        row["label"] = "malignant" if row["label"] else "benign"
    csv = _make_cohort(tmp_path, rows)
    problems = validate_cases(read_cases(csv))                 # default positive = 1
    assert len(problems) == 1
    assert "positive label value '1' does not occur" in problems[0].message
    assert "'benign' or 'malignant'" in problems[0].fix
    cohort = load_cohort(csv, study=_study(label={"positive": "malignant"}))
    assert cohort.y.tolist() == [int(r["label"] == "malignant") for r in rows]


def test_custom_label_column(tmp_path):
    rows = _rows(n_patients=6, images_per_patient=1)
    for row in rows:
        row["clnm"] = row.pop("label")
    csv = _make_cohort(tmp_path, rows)
    with pytest.raises(CohortError, match="required column 'label' is missing"):
        load_cohort(csv)
    cohort = load_cohort(csv, study=_study(label={"column": "clnm"}))
    assert cohort.y.sum() == 3


def test_patient_under_two_centers_and_in_two_splits(tmp_path):
    rows = _rows(n_patients=6, images_per_patient=1)   # centers A B C A B C
    rows[3]["patient_id"] = "p00"                       # p00: A and A -> fine
    rows[1]["patient_id"] = "p00"                       # p00 now also under B (same part: train)
    rows[5]["patient_id"] = "p02"                       # p02: C and C -> fine
    rows[4]["patient_id"] = "p02"                       # p02 under B (train) and C (external)
    study = _study(split={"by": "center", "train": ["A", "B"], "external": ["C"]})
    problems = [p for p in validate_cases(read_cases(_make_cohort(tmp_path, rows)), study) if p.column == "patient_id"]
    assert len(problems) == 2
    assert problems[0].message.startswith("patient p00 appears under 2 centers: center A (cases c00_0, c03_0); "
                                          "center B (case c01_0)")
    assert problems[1].message.startswith("patient p02 is in two splits, train and external")
    assert "center C (cases c02_0, c05_0)" in problems[1].message


def test_unknown_and_unassigned_centers(tmp_path):
    csv = _make_cohort(tmp_path, _rows())
    study = _study(split={"by": "center", "train": ["A", "X"], "external": ["C"]})
    problems = validate_cases(read_cases(csv), study)
    assert [p.column for p in problems] == ["center", "center"]
    assert ("split.train names center 'X', which is not in the table; centers in the table: A, B, C"
            in problems[0].message)
    assert "center 'B' (8 cases) is in neither split.train nor split.external" in problems[1].message


def _four_center_rows(negative_center="C"):
    rows = _rows(n_patients=12, centers=("A", "B", "C", "D"), images_per_patient=1)
    for row in rows:
        if row["center"] == negative_center:
            row["label"] = 0
    return rows


def test_single_class_center_is_a_warning(tmp_path):
    csv = _make_cohort(tmp_path, _four_center_rows())
    cohort = load_cohort(csv, study=_study(split={"by": "center", "train": ["A", "B"], "external": ["C", "D"]}))
    assert len(cohort.warnings) == 1
    warning = cohort.warnings[0]
    assert warning.severity == "warning" and warning.column == "center"
    assert "center 'C' has only negative cases (3)" in warning.message and "AUC" in warning.message
    assert "1 warning(s):" in cohort.summary()
    cohort = load_cohort(csv, study=_study(split={"by": "center", "train": ["C", "D"], "external": ["A", "B"]}))
    assert "confounded with the label" in cohort.warnings[0].message


def test_a_part_with_one_class_blocks(tmp_path):
    csv = _make_cohort(tmp_path, _four_center_rows())
    study = _study(split={"by": "center", "train": ["A", "B", "D"], "external": ["C"]})
    with pytest.raises(CohortError) as info:  # the only external center is single-class: nothing to validate on
        load_cohort(csv, study=study)
    assert [p.message for p in info.value.problems] == [
        "the external part (centers C) has only negative cases (3): models cannot be validated on one class"]
    rows = [r for r in _four_center_rows("A") if r["center"] in ("A", "C")]
    csv = _make_cohort(tmp_path, rows)
    problems = validate_cases(read_cases(csv), _study(split={"by": "center", "train": ["A"], "external": ["C"]}))
    assert [p.message.split(":")[0] for p in problems if p.severity == "error"] == [
        "the train part (centers A) has only negative cases (3)"]


def test_declared_variables_missing_columns_and_bad_values(tmp_path):
    n = 6
    rows = _rows(n_patients=n, images_per_patient=1,
                 age=[50, 61, "sixty", None, 70, 45],
                 birads=[2, 3, "4a", 5, "4a", 9],
                 halo=["no", "yes", "no", "maybe", "yes", "no"],
                 calc=[0, 1, 1.0, 0, 2, None],
                 edge=["smooth", "rough", "smooth", "irregular", "smooth", "smooth"])
    csv = _make_cohort(tmp_path, rows)
    study = _study(variables={
        "age": "numeric",
        "birads": {"type": "ordinal", "order": [2, 3, "4a", "4b", 5]},
        "halo": {"type": "binary", "levels": ["no", "yes"]},
        "calc": "binary",
        "edge": {"type": "categorical", "levels": ["smooth", "irregular"]},
        "size_mm": "numeric",
    })
    problems = validate_cases(read_cases(csv), study)
    errors = {(p.column, p.case_id) for p in problems if p.severity == "error"}
    assert errors == {("age", "c02_0"), ("birads", "c05_0"), ("halo", "c03_0"), ("calc", "c04_0"),
                      ("edge", "c01_0"), ("size_mm", None)}
    text = _messages(problems)
    assert "value 'sixty' is not a number (case c02_0)" in text
    assert "value '9' is not one of the declared order [2, 3, 4a, 4b, 5] of this ordinal variable" in text
    assert "value 'maybe' is not one of the declared levels [no, yes]" in text
    assert "value '2' is not one of the declared levels [0, 1]" in text
    assert "variables.size_mm" in text
    warnings = [p for p in problems if p.severity == "warning"]
    assert [(w.column, w.message[:30]) for w in warnings] == [("age", "1 of 6 cases have no value (ca"),
                                                              ("calc", "1 of 6 cases have no value (ca")]


def test_many_bad_values_are_summarised_in_one_problem(tmp_path):
    rows = _rows(n_patients=8, images_per_patient=1, size=[f"big{i}" for i in range(8)])
    problems = validate_cases(read_cases(_make_cohort(tmp_path, rows)), _study(variables={"size": "numeric"}))
    assert len(problems) == 1
    assert problems[0].message.startswith("8 different values fail the check (each is not a number)")


def test_frame_must_be_a_non_negative_integer(tmp_path):
    rows = _rows(n_patients=6, images_per_patient=1, frame=[0, None, -1, 1.5, 2, 3])
    problems = validate_cases(read_cases(_make_cohort(tmp_path, rows)))
    assert [(p.case_id, p.column) for p in problems] == [("c02_0", "frame"), ("c03_0", "frame")]
    assert "got -1" in problems[0].message and "got 1.5" in problems[1].message


def test_several_different_problems_are_all_reported_at_once(tmp_path):
    rows = _rows(n_patients=9, images_per_patient=1, birads=[2, 3, 4, 5, 2, 3, 4, 7, 2])
    rows[1]["case_id"] = "c00_0"              # duplicate id
    rows[2]["label"] = None                   # missing label
    rows[3]["patient_id"] = "p04"             # p04 now under A and B
    rows[7]["center"] = ""                    # missing center
    csv = _make_cohort(tmp_path, rows)
    (tmp_path / "img" / "c06_0.png").unlink()  # missing image
    study = _study(variables={"birads": {"type": "ordinal", "order": [2, 3, 4, 5]}, "age": "numeric"},
                   split={"by": "center", "train": ["A", "B"], "external": ["C", "D"]})
    with pytest.raises(CohortError) as info:
        load_cohort(csv, study=study)
    got = [(p.case_id, p.column) for p in info.value.problems]
    assert got == [
        ("c07_0", "center"),          # missing center
        ("c02_0", "label"),           # missing label
        ("c00_0", "case_id"),         # duplicate id
        ("c06_0", "image"),           # missing file
        ("c07_0", "birads"),          # value outside the declared order
        (None, "age"),                # declared column absent
        (None, "patient_id"),         # patient under two centers
        (None, "center"),             # split names an unknown center D
    ]
    assert all(p.severity == "error" for p in info.value.problems)
    assert str(info.value).startswith(f"{csv}: 8 problem(s) found:")


def test_validate_cases_accepts_an_in_memory_table(tmp_path):
    _write_files(tmp_path, ["a.png", "b.png"])
    table = pd.DataFrame({"case_id": ["x", "y"], "patient_id": ["p", "q"], "center": ["A", "A"],
                          "image": [str(tmp_path / "a.png"), str(tmp_path / "b.png")],
                          "mask": [str(tmp_path / "a.png"), str(tmp_path / "missing.png")],
                          "label": [0, 1]}).set_index("case_id", drop=False)
    problems = validate_cases(table)
    assert [(p.case_id, p.column) for p in problems] == [("y", "mask")]
    assert validate_cases(table.drop(columns="center"))[0].column == "center"


# --- splits -------------------------------------------------------------------------------------

def _patient_parts(cohort) -> pd.Series:
    frame = pd.DataFrame({"patient": cohort.table["patient_id"], "part": cohort.split_labels()})
    per_patient = frame.groupby("patient")["part"].nunique()
    assert (per_patient == 1).all(), "a patient is in two parts"
    return frame.groupby("patient")["part"].first()


def test_patient_split_is_grouped_stratified_and_deterministic(tmp_path):
    rows = _rows(n_patients=40, centers=("A", "B"), images_per_patient=3)
    csv = _make_cohort(tmp_path, rows)
    study = _study(seed=5, split={"by": "patient", "test_fraction": 0.25})
    cohort = load_cohort(csv, study=study)
    parts = _patient_parts(cohort)
    assert (parts == "internal").sum() == 10          # round(0.25 * 40) patients, all their images
    patients = pd.DataFrame(rows).drop_duplicates("patient_id").set_index("patient_id")
    held = patients.loc[parts[parts == "internal"].index]
    # stratified by (center, label): strata of 14, 6, 7, 13 patients have quotas 3.5, 1.5, 1.75, 3.25;
    # largest remainders give the two extra patients to (B, 0) then (A, 0)
    assert held.groupby(["center", "label"]).size().to_dict() == {("A", 0): 4, ("A", 1): 1, ("B", 0): 2, ("B", 1): 3}
    again = load_cohort(csv, study=study).split_labels()
    assert again.equals(cohort.split_labels())
    # row order does not matter; the seed does
    shuffled = _make_cohort(tmp_path / "shuffled", list(np.random.default_rng(0).permutation(rows)))
    reordered = load_cohort(shuffled, study=study).split_labels()
    assert reordered.sort_index().equals(cohort.split_labels().sort_index())
    other = load_cohort(csv, study=_study(seed=6, split={"by": "patient", "test_fraction": 0.25})).split_labels()
    assert not other.equals(cohort.split_labels())
    own_seed = _study(seed=6, split={"by": "patient", "test_fraction": 0.25, "seed": 5})
    assert load_cohort(csv, study=own_seed).split_labels().equals(cohort.split_labels())


def test_center_split_with_internal_hold_out(tmp_path):
    rows = _rows(n_patients=30, centers=("A", "B", "C"), images_per_patient=2)
    csv = _make_cohort(tmp_path, rows)
    study = _study(split={"by": "center", "train": ["A", "B"], "external": ["C"], "internal_fraction": 0.3})
    cohort = load_cohort(csv, study=study)
    parts = cohort.split_labels()
    assert (parts[cohort.table["center"] == "C"] == "external").all()
    assert set(parts[cohort.table["center"] != "C"]) == {"train", "internal"}
    patient_parts = _patient_parts(cohort)
    assert (patient_parts == "internal").sum() == 6     # 0.3 of the 20 training patients
    train = cohort.subset("train")
    assert len(train.table) == 28 and set(train.split_labels()) == {"train"}
    assert train.y.index.equals(train.table.index)
    assert len(cohort.subset(["internal", "external"]).table) == 32
    with pytest.raises(ValueError, match="part must be one of train, internal, external"):
        cohort.subset("test")


def test_summary_counts_cases_patients_and_classes_per_part(tmp_path):
    rows = _rows(n_patients=12, centers=("A", "B", "C"), images_per_patient=2)
    csv = _make_cohort(tmp_path, rows)
    cohort = load_cohort(csv, study=_study(split={"by": "center", "train": ["A", "B"], "external": ["C"]}))
    text = cohort.summary()
    assert "24 cases, 12 patients, 3 centers" in text
    assert "12 positive, 12 negative (50.0% positive)" in text
    assert "by center; train = A, B; external = C" in text
    lines = {tuple(line.split()[:2]): line.split()[2:] for line in text.splitlines()[5:]}
    assert lines[("train", "A")] == ["8", "4", "4", "4"]
    assert lines[("train", "(all)")] == ["16", "8", "8", "8"]
    assert lines[("external", "C")] == ["8", "4", "4", "4"]


def test_load_cohort_uses_the_study_cohort_path(tmp_path):
    _make_cohort(tmp_path, _rows())
    study_file = tmp_path / "study.yaml"
    study_file.write_text("name: t\ncohort: cases.csv\n")
    from sonorad.study import load_study

    cohort = load_cohort(study=load_study(study_file))
    assert len(cohort.table) == 24
    with pytest.raises(ConfigError, match="needs csv_path"):
        load_cohort()


# --- command line ---------------------------------------------------------------------------------

def test_cli_validate_prints_the_summary_or_every_problem(tmp_path, capsys):
    csv = _make_cohort(tmp_path, _rows())
    study_file = tmp_path / "study.yaml"
    study_file.write_text("name: t\nsplit: {by: center, train: [A, B], external: [C]}\n")
    assert cli.main(["validate", str(csv), "--study", str(study_file)]) == 0
    out = capsys.readouterr().out
    assert "24 cases, 12 patients, 3 centers" in out and "external" in out
    study_file.write_text("name: t\nsplit: {by: center, train: [A], external: [C, D]}\n")
    assert cli.main(["validate", str(csv), "--study", str(study_file)]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "'D'" in err and "center 'B'" in err
    study_file.write_text("name: t\nsplit: {by: centre}\n")
    assert cli.main(["validate", str(csv), "--study", str(study_file)]) == 2
    assert "split.by: unknown value 'centre'; allowed: center, patient" in capsys.readouterr().err


# --- real cohorts -------------------------------------------------------------------------------

@pytest.mark.data
def test_real_cohorts_load_without_errors(shared_data):
    bus = load_cohort(shared_data / "bus_bra" / "cases.csv", study=_study(
        variables={"birads": {"type": "ordinal", "order": [2, 3, 4, 5], "role": "ultrasound"}},
        split={"by": "center", "train": ["GE-Logiq7", "GE-Logiq5"], "external": ["Toshiba-Aplio300", "U-Systems"],
               "internal_fraction": 0.2}))
    assert len(bus.table) == 930 and bus.table["patient_id"].nunique() == 526
    parts = _patient_parts(bus)                                   # patients with several images: one part
    assert (parts == "internal").sum() == round(0.2 * (parts != "external").sum())
    assert int(bus.y.sum()) == 333

    usg = load_cohort(shared_data / "breast_lesions_usg" / "cases.csv", study=_study(
        variables={"age": {"type": "numeric", "role": "clinical"},
                   "birads": {"type": "ordinal", "order": [1, 2, 3, "4a", "4b", "4c", 5]},
                   "halo": {"type": "binary", "levels": ["no", "yes"]}},
        split={"by": "patient", "test_fraction": 0.3}))
    assert len(usg.table) == 252 and int(usg.y.sum()) == 98
    assert [w.column for w in usg.warnings] == ["age"]          # 41 ages missing: listed, not blocking
    assert "41 of 252" in usg.warnings[0].message
    _patient_parts(usg)


def test_spacing_column_is_checked(tmp_path):
    rows = _rows()
    for i, row in enumerate(rows):
        row["spacing_mm"] = ["0.1", "0.1,0.2", "", "-2", "x"][i % 5]
    csv = _make_cohort(tmp_path, rows)
    problems = [p for p in validate_cases(read_cases(csv)) if p.column == "spacing_mm"]
    bad = {rows[i]["case_id"] for i in range(len(rows)) if i % 5 in (3, 4)}
    assert {p.case_id for p in problems} == bad
    assert all("positive number" in p.fix for p in problems)
