"""read_cases: parsing the table, resolving paths, refusing an unusable table."""

from __future__ import annotations

import pytest

from sonorad.cohort import read_cases
from sonorad.errors import CohortError

from .builders import make_cohort, write_files


def test_read_cases_resolves_paths_and_reads_ids_as_text(tmp_path):
    rows = [
        {"case_id": "001", "patient_id": "0042", "center": "01", "image": "img/a.png",
         "mask": "msk/a1.png; msk/a2.png", "label": 1, "frame": 0},
        {"case_id": "002", "patient_id": "0043", "center": "01", "image": str(tmp_path / "abs.png"),
         "mask": "msk/b.png", "label": 0, "frame": None},
    ]
    csv = make_cohort(tmp_path, rows)
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
    write_files(tmp_path, ["a.png", "m.png"])
    csv = tmp_path / "cases.csv"
    csv.write_bytes("\ufeffcase_id , patient_id,center,image,mask,label\n x1 ,p1, A , a.png , m.png ,1\n".encode())
    table = read_cases(csv)
    assert list(table.columns) == ["case_id", "patient_id", "center", "image", "mask", "label"]
    assert table.index.tolist() == ["x1"] and table.at["x1", "center"] == "A"
    assert table.at["x1", "mask"] == str(tmp_path / "m.png")
