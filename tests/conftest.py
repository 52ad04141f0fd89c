"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SONORAD_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def shared_data() -> Path:
    """The real cohorts in ../shared/data; tests that need them are skipped when absent."""
    if not (SHARED_DATA / "bus_bra" / "cases.csv").exists():
        pytest.skip(f"real cohorts not found at {SHARED_DATA}")
    return SHARED_DATA
