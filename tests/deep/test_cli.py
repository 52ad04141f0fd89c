"""`sonorad extract --deep BACKBONE --no-radiomics` end to end on a tiny PNG cohort."""

from __future__ import annotations

import pandas as pd
import pytest


def _write_csv(cohort: pd.DataFrame, root) -> str:
    table = cohort.reset_index(drop=True).copy()
    table["image"] = [str(pd.io.common.Path(p).relative_to(root)) for p in table["image"]]
    table["mask"] = [str(pd.io.common.Path(p).relative_to(root)) for p in table["mask"]]
    csv = root / "cases.csv"
    table.to_csv(csv, index=False)
    return str(csv)


def test_cli_extract_deep_only_writes_identical_tables(png_cohort, tmp_path):
    pytest.importorskip("sonorad.features.extract", reason="sonorad.features.extract is not available yet")
    from sonorad.cli import main

    root = tmp_path / "cohort"
    csv = _write_csv(png_cohort, root)
    tables = []
    for run in ("a", "b"):
        out = tmp_path / f"out_{run}"
        argv = ["extract", csv, "--out", str(out), "--deep", "efficientnet_lite0", "--no-radiomics", "--quiet"]
        assert main(argv) == 0
        tables.append(pd.read_parquet(out / "deep_efficientnet_lite0.parquet"))
        assert not (out / "radiomics.parquet").exists()
    a, b = tables
    assert a.shape == (len(png_cohort), 1280)
    assert a.index.name == "case_id" and list(a.index) == list(png_cohort["case_id"])
    assert a.columns[0] == "efficientnet_lite0_0" and (a.dtypes == "float64").all()
    pd.testing.assert_frame_equal(a, b, check_exact=True)
