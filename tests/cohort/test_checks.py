"""validate_cases: every problem of a cohort table at once, each naming the case, the column and the fix."""

from __future__ import annotations

import pandas as pd
import pytest

from sonorad.cohort import load_cohort, read_cases, validate_cases
from sonorad.errors import CohortError

from .builders import four_center_rows, make_cohort, messages, rows_of, study_of, write_files


def test_duplicate_case_ids_name_the_csv_lines(tmp_path):
    rows = rows_of(n_patients=6, images_per_patient=1)
    rows[3]["case_id"] = rows[1]["case_id"]
    problems = validate_cases(read_cases(make_cohort(tmp_path, rows)))
    assert len(problems) == 1
    assert problems[0].case_id == "c01_0" and problems[0].column == "case_id"
    assert "appears 2 times (lines 3, 5 of the CSV)" in problems[0].message


def test_missing_files_empty_files_and_non_images_are_reported_per_case(tmp_path):
    rows = rows_of(n_patients=6, images_per_patient=1)
    rows[0]["mask"] = "msk/c00_0.png;msk/second.png"        # second lesion's mask missing
    rows[1]["mask2"] = "msk/reader2.png"                      # empty file
    rows[2]["image"] = "img/notes.txt"                        # not an image
    csv = make_cohort(tmp_path, rows)
    (tmp_path / "msk" / "second.png").unlink()
    (tmp_path / "msk" / "reader2.png").write_bytes(b"")
    (tmp_path / "img" / "notes.txt").write_text("hello, this is text")
    (tmp_path / "img" / "c03_0.png").unlink()
    problems = validate_cases(read_cases(csv))
    found = {(p.case_id, p.column) for p in problems}
    assert found == {("c00_0", "mask"), ("c01_0", "mask2"), ("c02_0", "image"), ("c03_0", "image")}
    text = messages(problems)
    assert f"{tmp_path / 'msk' / 'second.png'} does not exist" in text
    assert "empty (0 bytes)" in text
    assert "notes.txt" in text
    assert validate_cases(read_cases(csv), check_files=False) == []


def test_missing_labels_and_more_than_two_classes(tmp_path):
    rows = rows_of(n_patients=6, images_per_patient=1)
    rows[0]["label"] = None
    rows[1]["label"] = 2
    problems = validate_cases(read_cases(make_cohort(tmp_path, rows)))
    assert [(p.case_id, p.column) for p in problems] == [("c00_0", "label"), (None, "label")]
    assert problems[0].message == "missing label"
    assert "exactly two classes; found 3: '0' (1 cases), '1' (3 cases), '2' (1 cases)" in problems[1].message


def test_positive_value_must_occur(tmp_path):
    rows = rows_of(n_patients=6, images_per_patient=1)
    for row in rows:
        row["label"] = "malignant" if row["label"] else "benign"
    csv = make_cohort(tmp_path, rows)
    problems = validate_cases(read_cases(csv))                 # default positive = 1
    assert len(problems) == 1
    assert "positive label value '1' does not occur" in problems[0].message
    assert "'benign' or 'malignant'" in problems[0].fix
    cohort = load_cohort(csv, study=study_of(label={"positive": "malignant"}))
    assert cohort.y.tolist() == [int(r["label"] == "malignant") for r in rows]


def test_custom_label_column(tmp_path):
    rows = rows_of(n_patients=6, images_per_patient=1)
    for row in rows:
        row["clnm"] = row.pop("label")
    csv = make_cohort(tmp_path, rows)
    with pytest.raises(CohortError, match="required column 'label' is missing"):
        load_cohort(csv)
    cohort = load_cohort(csv, study=study_of(label={"column": "clnm"}))
    assert cohort.y.sum() == 3


def test_patient_under_two_centers_and_in_two_splits(tmp_path):
    rows = rows_of(n_patients=6, images_per_patient=1)   # centers A B C A B C
    rows[3]["patient_id"] = "p00"                       # p00: A and A -> fine
    rows[1]["patient_id"] = "p00"                       # p00 now also under B (same part: train)
    rows[5]["patient_id"] = "p02"                       # p02: C and C -> fine
    rows[4]["patient_id"] = "p02"                       # p02 under B (train) and C (external)
    study = study_of(split={"by": "center", "train": ["A", "B"], "external": ["C"]})
    problems = [p for p in validate_cases(read_cases(make_cohort(tmp_path, rows)), study) if p.column == "patient_id"]
    assert len(problems) == 2
    assert problems[0].message.startswith("patient p00 appears under 2 centers: center A (cases c00_0, c03_0); "
                                          "center B (case c01_0)")
    assert problems[1].message.startswith("patient p02 is in two splits, train and external")
    assert "center C (cases c02_0, c05_0)" in problems[1].message


def test_unknown_and_unassigned_centers(tmp_path):
    csv = make_cohort(tmp_path, rows_of())
    study = study_of(split={"by": "center", "train": ["A", "X"], "external": ["C"]})
    problems = validate_cases(read_cases(csv), study)
    assert [p.column for p in problems] == ["center", "center"]
    assert ("split.train names center 'X', which is not in the table; centers in the table: A, B, C"
            in problems[0].message)
    assert "center 'B' (8 cases) is in neither split.train nor split.external" in problems[1].message


def test_single_class_center_is_a_warning(tmp_path):
    csv = make_cohort(tmp_path, four_center_rows())
    cohort = load_cohort(csv, study=study_of(split={"by": "center", "train": ["A", "B"], "external": ["C", "D"]}))
    assert len(cohort.warnings) == 1
    warning = cohort.warnings[0]
    assert warning.severity == "warning" and warning.column == "center"
    assert "center 'C' has only negative cases (3)" in warning.message and "AUC" in warning.message
    assert "1 warning(s):" in cohort.summary()
    cohort = load_cohort(csv, study=study_of(split={"by": "center", "train": ["C", "D"], "external": ["A", "B"]}))
    assert "confounded with the label" in cohort.warnings[0].message


def test_a_part_with_one_class_blocks(tmp_path):
    csv = make_cohort(tmp_path, four_center_rows())
    study = study_of(split={"by": "center", "train": ["A", "B", "D"], "external": ["C"]})
    with pytest.raises(CohortError) as info:  # the only external center is single-class: nothing to validate on
        load_cohort(csv, study=study)
    assert [p.message for p in info.value.problems] == [
        "the external part (centers C) has only negative cases (3): models cannot be validated on one class"]
    rows = [r for r in four_center_rows("A") if r["center"] in ("A", "C")]
    csv = make_cohort(tmp_path, rows)
    problems = validate_cases(read_cases(csv), study_of(split={"by": "center", "train": ["A"], "external": ["C"]}))
    assert [p.message.split(":")[0] for p in problems if p.severity == "error"] == [
        "the train part (centers A) has only negative cases (3)"]


def test_declared_variables_missing_columns_and_bad_values(tmp_path):
    n = 6
    rows = rows_of(n_patients=n, images_per_patient=1,
                 age=[50, 61, "sixty", None, 70, 45],
                 birads=[2, 3, "4a", 5, "4a", 9],
                 halo=["no", "yes", "no", "maybe", "yes", "no"],
                 calc=[0, 1, 1.0, 0, 2, None],
                 edge=["smooth", "rough", "smooth", "irregular", "smooth", "smooth"])
    csv = make_cohort(tmp_path, rows)
    study = study_of(variables={
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
    text = messages(problems)
    assert "[case c02_0, column 'age'] age = 'sixty' is not a number. Fix: write a number" in text
    assert "birads = '9' is not one of the declared order [2, 3, 4a, 4b, 5] of this ordinal variable" in text
    assert "halo = 'maybe' is not one of the declared levels [no, yes]" in text
    assert "calc = '2' is not one of the declared levels [0, 1]" in text
    assert "variables.size_mm" in text
    warnings = [p for p in problems if p.severity == "warning"]
    assert [(w.column, w.message[:30]) for w in warnings] == [("age", "1 of 6 cases have no value (ca"),
                                                              ("calc", "1 of 6 cases have no value (ca")]


def test_many_bad_values_are_summarised_in_one_problem(tmp_path):
    rows = rows_of(n_patients=8, images_per_patient=1, size=[f"big{i}" for i in range(8)])
    problems = validate_cases(read_cases(make_cohort(tmp_path, rows)), study_of(variables={"size": "numeric"}))
    assert len(problems) == 1
    assert problems[0].message.startswith("8 different values of size fail the check (8 cases: c00_0, c01_0")
    assert "e.g. size = 'big0' is not a number; size = 'big1' is not a number" in problems[0].message


def test_frame_must_be_a_non_negative_integer(tmp_path):
    rows = rows_of(n_patients=6, images_per_patient=1, frame=[0, None, -1, 1.5, 2, 3])
    problems = validate_cases(read_cases(make_cohort(tmp_path, rows)))
    assert [(p.case_id, p.column) for p in problems] == [("c02_0", "frame"), ("c03_0", "frame")]
    assert "got -1" in problems[0].message and "got 1.5" in problems[1].message


def test_several_different_problems_are_all_reported_at_once(tmp_path):
    rows = rows_of(n_patients=9, images_per_patient=1, birads=[2, 3, 4, 5, 2, 3, 4, 7, 2])
    rows[1]["case_id"] = "c00_0"              # duplicate id
    rows[2]["label"] = None                   # missing label
    rows[3]["patient_id"] = "p04"             # p04 now under A and B
    rows[7]["center"] = ""                    # missing center
    csv = make_cohort(tmp_path, rows)
    (tmp_path / "img" / "c06_0.png").unlink()  # missing image
    study = study_of(variables={"birads": {"type": "ordinal", "order": [2, 3, 4, 5]}, "age": "numeric"},
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
    write_files(tmp_path, ["a.png", "b.png"])
    table = pd.DataFrame({"case_id": ["x", "y"], "patient_id": ["p", "q"], "center": ["A", "A"],
                          "image": [str(tmp_path / "a.png"), str(tmp_path / "b.png")],
                          "mask": [str(tmp_path / "a.png"), str(tmp_path / "missing.png")],
                          "label": [0, 1]}).set_index("case_id", drop=False)
    problems = validate_cases(table)
    assert [(p.case_id, p.column) for p in problems] == [("y", "mask")]
    assert validate_cases(table.drop(columns="center"))[0].column == "center"


def test_spacing_column_is_checked(tmp_path):
    rows = rows_of()
    for i, row in enumerate(rows):
        row["spacing_mm"] = ["0.1", "0.1,0.2", "", "-2", "x"][i % 5]
    csv = make_cohort(tmp_path, rows)
    problems = [p for p in validate_cases(read_cases(csv)) if p.column == "spacing_mm"]
    bad = {rows[i]["case_id"] for i in range(len(rows)) if i % 5 in (3, 4)}
    assert {p.case_id for p in problems} == bad
    assert all("positive number" in p.fix for p in problems)


def test_unseen_other_with_declared_levels_is_for_cases_to_score_only(tmp_path):
    rows = rows_of(n_patients=6, images_per_patient=1, site=["a", "b", "a", "z", "b", "a"])
    table = read_cases(make_cohort(tmp_path, rows))
    study = study_of(variables={"site": {"type": "categorical", "levels": ["a", "b"], "unseen": "other"}})
    [error] = validate_cases(table, study, check_files=False)
    assert error.severity == "error" and error.case_id == "c03_0"
    assert error.message.startswith("site = 'z' is not one of the declared levels [a, b] of this categorical variable")
    [warning] = validate_cases(table.drop(columns="label"), study, check_files=False, require_label=False)
    assert warning.severity == "warning" and warning.case_id == "c03_0"
    assert warning.message == "site = 'z' was never seen in training; coded as missing (imputed)"


def test_centers_mixing_pixel_spacings_block_loading_until_the_study_chooses(tmp_path):
    rows = rows_of(n_patients=12, images_per_patient=1)
    for row in rows:
        row["spacing_mm"] = "0.08" if row["center"] == "C" else ""
    csv = make_cohort(tmp_path, rows)
    split = {"by": "center", "train": ["A", "B"], "external": ["C"]}
    with pytest.raises(CohortError) as err:
        load_cohort(csv, study_of(split=split))
    text = str(err.value)
    assert "centers A, B have no pixel spacing while center C has one" in text
    assert "features.spacing: resample" in text and "features.spacing: pixels" in text
    cohort = load_cohort(csv, study_of(split=split, features={"spacing": "pixels"}))
    assert any("pixel spacing by center" in str(w) for w in cohort.warnings)


def test_a_negative_value_among_positive_ones_is_pointed_out_without_a_declared_range(tmp_path):
    rows = rows_of(n_patients=12, images_per_patient=1)
    for i, row in enumerate(rows):
        row["age"] = 40 + i
    rows[4]["age"] = -5
    problems = validate_cases(read_cases(make_cohort(tmp_path, rows)), study_of(variables={"age": "numeric"}))
    negative = [p for p in problems if "is negative" in p.message]
    assert [(p.case_id, p.column, p.severity) for p in negative] == [("c04_0", "age", "warning")]
    assert "age = -5 is negative while the other values of this column are not" in negative[0].message
    assert "variables.age.range" in negative[0].fix
    declared = study_of(variables={"age": {"type": "numeric", "range": [-10, 120]}})
    assert not [p for p in validate_cases(read_cases(make_cohort(tmp_path, rows)), declared) if "negative" in p.message]


def test_a_variable_that_is_often_negative_is_not_flagged(tmp_path):
    rows = rows_of(n_patients=12, images_per_patient=1)
    for i, row in enumerate(rows):
        row["shift"] = (-1) ** i * (i + 1)
    problems = validate_cases(read_cases(make_cohort(tmp_path, rows)), study_of(variables={"shift": "numeric"}))
    assert not [p for p in problems if "is negative" in p.message]


def test_a_variable_missing_for_a_whole_center_is_said_once_for_that_center(tmp_path):
    rows = rows_of(n_patients=12, centers=("A", "B", "C"), images_per_patient=1)
    for i, row in enumerate(rows):
        row["birads"] = "" if row["center"] == "C" else 3 + i % 3
    problems = validate_cases(read_cases(make_cohort(tmp_path, rows)), study_of(variables={"birads": "numeric"}))
    center = [p for p in problems if "center 'C' has no value of birads" in p.message]
    assert len(center) == 1 and center[0].severity == "warning" and center[0].case_id is None
    assert "invert its ranking" in center[0].message
    assert not [p for p in problems if "center 'A'" in p.message or "center 'B'" in p.message]
