"""Row builders shared by the scoring modules."""

from sonorad.bundle.rows import failure_row, format_value
from sonorad.errors import FAILURE_COLUMNS


def test_failure_row_has_the_failure_columns_and_a_text_id():
    row = failure_row(12, "image", "unreadable", "re-export it")
    assert list(row) == FAILURE_COLUMNS and row["case_id"] == "12"


def test_format_value_rounds_floats_only():
    assert format_value(1 / 3) == "0.333333" and format_value(150) == "150" and format_value("x") == "x"
