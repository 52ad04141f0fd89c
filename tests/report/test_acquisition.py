"""sonorad.report.acquisition: the acquisition-by-center table as the report and the model card show it."""

from __future__ import annotations

import pandas as pd

from sonorad.report.acquisition import ACQUISITION_COLUMNS, acquisition_display


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "center": ["BR", "PL"], "cases": [240, 120], "with_spacing": [0, 120], "spacing_from": ["none", "spacing_mm"],
        "spacing_mm": [None, "0.07-0.1"], "median_spacing_mm": [None, 0.08], "image_size": ["280x380", "600x800"],
        "bit_depth": [8, 8], "format": ["png", "png"], "scanner": [None, None]}).set_index("center")


def test_the_frame_and_its_records_give_the_same_display():
    table = _table()
    shown = acquisition_display(table)
    assert list(shown.columns) == list(ACQUISITION_COLUMNS) and list(shown.index) == ["BR", "PL"]
    pd.testing.assert_frame_equal(shown, acquisition_display(table.reset_index().to_dict("records")))


def test_sources_and_unknowns_are_said_in_words():
    shown = acquisition_display(_table())
    assert shown.loc["PL", "Spacing from"] == "spacing_mm column"
    assert shown.loc["BR", "Scanner"] == "not recorded"
    assert shown.loc["BR", "Cases"] == "240"
