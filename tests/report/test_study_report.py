"""Tests of sonorad.report.study_report: every report section has its drawing function."""

import importlib

from sonorad.report.study_report import SECTION_TITLES, write_study_report


def test_every_section_title_has_an_add_function():
    modules = [importlib.import_module(f"sonorad.report.sections.{m}")
               for m in ("overview", "performance", "explanations", "appendix")]
    for section in SECTION_TITLES:
        assert any(hasattr(m, f"add_{section}") for m in modules), section
    assert callable(write_study_report)
