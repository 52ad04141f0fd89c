"""Tests of sonorad.evaluation._results: a result dataclass prints as its titled table."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sonorad.evaluation._results import ResultMixin


@dataclass(frozen=True, repr=False)
class _Result(ResultMixin):
    value: float
    title = "Known result"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"estimate": [self.value]}, index=["AUC"])


def test_str_is_the_title_and_the_table_with_four_decimals():
    text = str(_Result(0.912345))
    assert text.splitlines()[0] == "Known result"
    assert "AUC" in text and "0.9123" in text and "0.912345" not in text
