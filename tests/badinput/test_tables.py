"""Hostile cohort tables: header layout and the cells that mean "missing".

Each test writes a tiny table by hand (no image is decoded: the file checks are off or the files are
dummy PNGs) and states what :func:`sonorad.cohort.read_cases` / :func:`sonorad.cohort.validate_cases`
must say about it.
"""

from __future__ import annotations

import pytest

from sonorad.cohort import read_cases, validate_cases
from sonorad.errors import CohortError
from sonorad.study import StudyConfig

HEADER = ["case_id", "patient_id", "center", "image", "mask", "label"]


def _write(tmp_path, header, rows, sep=","):
    csv = tmp_path / "cases.csv"
    csv.write_text("\n".join(sep.join(map(str, line)) for line in [header, *rows]) + "\n", encoding="utf-8")
    return csv


def _study(**variables) -> StudyConfig:
    return StudyConfig.from_dict({"name": "t", "variables": variables})


# --- layout of the header ------------------------------------------------------------------------

def test_duplicate_column_header_is_refused_by_name(tmp_path):
    csv = _write(tmp_path, HEADER + ["age", "size", "age"], [["c1", "p1", "A", "a.png", "m.png", 1, 50, 3, 51]])
    with pytest.raises(CohortError) as info:
        read_cases(csv)
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.column == "age" and "'age'" in problem.message and "2 times" in problem.message
    assert "age.1" not in str(info.value) and "rename" in problem.fix


def test_header_duplicated_only_by_surrounding_spaces_is_refused(tmp_path):
    csv = _write(tmp_path, HEADER + ["age", " age "], [["c1", "p1", "A", "a.png", "m.png", 1, 50, 51]])
    with pytest.raises(CohortError, match="'age' appears 2 times"):
        read_cases(csv)


@pytest.mark.parametrize("sep, word", [("\t", "tab-separated"), (";", "separated by semicolons"),
                                       ("|", "separated by '|'")])
def test_table_with_another_separator_gets_one_message(tmp_path, sep, word):
    rows = [["c1", "p1", "A", "a.png", "m.png", 1], ["c2", "p2", "A", "b,c.png", "m.png", 0]]
    csv = _write(tmp_path, HEADER, rows, sep=sep)
    with pytest.raises(CohortError) as info:
        read_cases(csv)
    assert len(info.value.problems) == 1, str(info.value)
    assert word in str(info.value) and "comma-separated" in info.value.problems[0].fix
    assert "required column" not in str(info.value)


# --- the cells that mean "missing" ----------------------------------------------------------------

@pytest.mark.parametrize("word", ["None", "null", "NULL", "nil"])
def test_declared_level_written_like_a_missing_marker_is_a_level(tmp_path, word):
    rows = [["c1", "p1", "A", "a.png", "m.png", 1, word], ["c2", "p2", "A", "b.png", "m.png", 0, "irregular"],
            ["c3", "p3", "A", "c.png", "m.png", 0, ""]]
    table = read_cases(_write(tmp_path, HEADER + ["margin"], rows))
    assert table.at["c1", "margin"] == word
    study = _study(margin={"type": "categorical", "levels": [word, "irregular"]})
    problems = validate_cases(table, study, check_files=False)
    missing = [p for p in problems if p.column == "margin"]
    assert [p.severity for p in missing] == ["warning"] and "c3" in missing[0].message  # only the empty cell


def test_patient_id_na_is_an_id_not_a_missing_value(tmp_path):
    rows = [["c1", "NA", "A", "a.png", "m.png", 1], ["c2", "N/A", "A", "b.png", "m.png", 0]]
    table = read_cases(_write(tmp_path, HEADER, rows))
    assert table["patient_id"].tolist() == ["NA", "N/A"]
    problems = validate_cases(table, None, check_files=False)
    assert not [p for p in problems if p.column == "patient_id"], problems


def test_empty_cells_are_still_missing_and_numbers_still_numbers(tmp_path):
    rows = [["c1", "p1", "A", "a.png", "m.png", 1, 50.5, ""], ["c2", "p2", "A", "b.png", "", "", "", 3]]
    table = read_cases(_write(tmp_path, HEADER + ["age", "size"], rows))
    assert table["age"].dtype.kind == "f" and table["size"].dtype.kind == "f"
    problems = validate_cases(table, _study(age={"type": "numeric"}), check_files=False)
    assert {(p.case_id, p.column) for p in problems if p.severity == "error"} >= {("c2", "mask"), ("c2", "label")}


def test_numeric_column_with_a_text_marker_still_parses(tmp_path):
    rows = [["c1", "p1", "A", "a.png", "m.png", 1, 50], ["c2", "p2", "A", "b.png", "m.png", 0, "NA"],
            ["c3", "p3", "A", "c.png", "m.png", 0, "fifty"]]
    table = read_cases(_write(tmp_path, HEADER + ["age"], rows))
    problems = validate_cases(table, _study(age={"type": "numeric"}), check_files=False)
    errors = [p for p in problems if p.column == "age" and p.severity == "error"]
    assert len(errors) == 1 and "'fifty' is not a number" in errors[0].message and "c3" in str(errors[0])
    assert "empty" in errors[0].fix


def test_label_written_na_is_a_missing_label(tmp_path):
    rows = [["c1", "p1", "A", "a.png", "m.png", 1], ["c2", "p2", "A", "b.png", "m.png", "NA"],
            ["c3", "p3", "A", "c.png", "m.png", 0]]
    problems = validate_cases(read_cases(_write(tmp_path, HEADER, rows)), None, check_files=False)
    assert [(p.case_id, p.message) for p in problems if p.column == "label" and p.severity == "error"] \
        == [("c2", "missing label")]


def test_prediction_tables_are_read_the_same_way(tmp_path):
    from sonorad.bundle import read_cases_for_prediction

    rows = [["c1", "NA", "A", "a.png", "m.png", "None"]]
    table = read_cases_for_prediction(_write(tmp_path, HEADER[:-1] + ["margin"], rows))
    assert table.at["c1", "patient_id"] == "NA" and table.at["c1", "margin"] == "None"
    tab = _write(tmp_path, HEADER[:-1], [["c1", "p1", "A", "a.png", "m.png"]], sep="\t")
    with pytest.raises(CohortError, match="this file is tab-separated"):
        read_cases_for_prediction(tab)


def test_numeric_cell_written_none_is_not_a_number_with_the_empty_cell_fix(tmp_path):
    rows = [["c1", "p1", "A", "a.png", "m.png", 1, 50], ["c2", "p2", "A", "b.png", "m.png", 0, "None"]]
    table = read_cases(_write(tmp_path, HEADER + ["age"], rows))
    problems = validate_cases(table, _study(age={"type": "numeric"}), check_files=False)
    errors = [p for p in problems if p.column == "age" and p.severity == "error"]
    assert len(errors) == 1 and "'None' is not a number" in errors[0].message and "c2" in str(errors[0])
    assert "leave it empty" in errors[0].fix


def test_undeclared_level_that_looks_like_a_missing_marker_is_pointed_out(tmp_path):
    rows = [["c1", "p1", "A", "a.png", "m.png", 1, "None"], ["c2", "p2", "A", "b.png", "m.png", 0, "irregular"],
            ["c3", "p3", "A", "c.png", "m.png", 0, "null"]]
    table = read_cases(_write(tmp_path, HEADER + ["margin"], rows))
    problems = validate_cases(table, _study(margin={"type": "categorical"}), check_files=False)
    notes = [p for p in problems if p.column == "margin"]
    assert len(notes) == 1 and notes[0].severity == "warning"
    assert "'None', 'null'" in notes[0].message and "c1" in notes[0].message and "c3" in notes[0].message
    assert "empty" in notes[0].fix and "variables.margin.levels" in notes[0].fix
