"""Fixtures of the explanation tests: the deep tests' synthetic lesion images and PNG cohorts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_deep_fixtures", Path(__file__).parents[1] / "deep" / "conftest.py")
_deep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_deep)

make_images = _deep.make_images
png_cohort = _deep.png_cohort
