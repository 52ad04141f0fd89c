"""ICC(3,1) per feature (sonorad.features.icc)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonorad.errors import ConfigError
from sonorad.features import icc as icc_module
from sonorad.features.icc import feature_icc, icc_3_1, icc_table
from sonorad.features.store import FeatureCache

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)

SMALL = {
    "setting": {"binWidth": 5, "label": 1, "additionalInfo": False},
    "imageType": {"Original": {}},
    "featureClass": {"shape2D": ["PixelSurface", "Perimeter"], "firstorder": ["Mean"], "glcm": ["Contrast"]},
}


def pingouin_icc3(x):
    import pingouin as pg

    long = pd.DataFrame([(i, j, x[i, j]) for i in range(x.shape[0]) for j in range(x.shape[1])],
                        columns=["target", "rater", "rating"])
    with warnings.catch_warnings():  # pingouin's own pandas deprecations
        warnings.simplefilter("ignore")
        table = pg.intraclass_corr(long, targets="target", raters="rater", ratings="rating").set_index("Type")
    row = table.loc["ICC(C,1)"]  # pingouin's name for Shrout & Fleiss' ICC(3,1)
    return float(row["ICC"]), [float(v) for v in row["CI95"]]


# ---------------------------------------------------------------- the statistic
def test_shrout_fleiss_textbook_value():
    assert round(icc_3_1(SHROUT_FLEISS), 2) == 0.71
    assert icc_3_1(SHROUT_FLEISS) == pytest.approx(pingouin_icc3(SHROUT_FLEISS)[0], rel=1e-12)


@pytest.mark.parametrize("seed, n, k", [(0, 10, 2), (1, 25, 3), (2, 40, 7)])
def test_matches_pingouin_on_random_data(seed, n, k):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1)) * rng.uniform(0.5, 2) + rng.normal(scale=0.7, size=(n, k)) + rng.normal(size=k)
    expected, (low, high) = pingouin_icc3(x)
    assert icc_3_1(x) == pytest.approx(expected, rel=1e-10)
    table = icc_table([pd.DataFrame({"f": x[:, j]}) for j in range(k)])
    assert table.loc["f", "icc"] == pytest.approx(expected, rel=1e-10)
    # pingouin rounds its interval to 2 decimals
    assert table.loc["f", "ci_low"] == pytest.approx(low, abs=0.0051)
    assert table.loc["f", "ci_high"] == pytest.approx(high, abs=0.0051)
    assert table.loc["f", "n"] == n


def test_icc_3_1_input_checks():
    with pytest.raises(ValueError, match="shape"):
        icc_3_1(np.ones(5))
    with pytest.raises(ValueError, match="shape"):
        icc_3_1(np.ones((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        icc_3_1([[1.0, np.nan], [2.0, 3.0]])
    assert np.isnan(icc_3_1(np.ones((4, 2))))


def test_icc_table_is_the_per_feature_statistic():
    rng = np.random.default_rng(3)
    n, p = 30, 5
    truth = rng.normal(size=(n, p))
    raters = [pd.DataFrame(truth + rng.normal(scale=s, size=(n, p)), columns=[f"f{j}" for j in range(p)],
                           index=[f"c{i}" for i in range(n)]) for s in (0.2, 0.5, 0.3)]
    table = icc_table(raters)
    assert list(table.columns) == ["icc", "ci_low", "ci_high", "n"] and table.index.name == "feature"
    for j in range(p):
        x = np.column_stack([r[f"f{j}"] for r in raters])
        assert table.loc[f"f{j}", "icc"] == pytest.approx(icc_3_1(x), rel=1e-10)
    assert (table["ci_low"] < table["icc"]).all() and (table["icc"] < table["ci_high"]).all()


def test_icc_table_alignment_missing_values_and_edge_cases():
    a = pd.DataFrame({"f": [1.0, 2.0, 3.0, 4.0, 5.0], "same": [1.0, 2.0, 3.0, 4.0, 5.0], "const": 7.0,
                      "only_a": 0.0}, index=list("abcde"))
    b = pd.DataFrame({"f": [1.5, 2.5, 2.0, 4.5, np.nan], "same": [1.0, 2.0, 3.0, 4.0, 5.0], "const": 7.0},
                     index=list("abcde"))
    b = b.iloc[::-1]  # order does not matter: cases are matched by id
    table = icc_table([a, b.assign(extra=1.0)])
    assert list(table.index) == ["f", "same", "const"]
    assert table.loc["f", "n"] == 4  # case e has no value for rater b
    assert table.loc["f", "icc"] == pytest.approx(icc_3_1([[1, 1.5], [2, 2.5], [3, 2.0], [4, 4.5]]))
    assert table.loc["same", ["icc", "ci_low", "ci_high"]].tolist() == [1.0, 1.0, 1.0]
    assert table.loc["const", ["icc", "ci_low", "ci_high"]].isna().all()
    with pytest.raises(ValueError, match="at least 2"):
        icc_table([a])


# ---------------------------------------------------------------- on a cohort
def write_case(folder, case_id, seed, shape=(48, 56)):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    r0, c0 = shape[0] / 2 + rng.integers(-4, 5), shape[1] / 2 + rng.integers(-4, 5)
    mask = ((rows - r0) / rng.uniform(8, 14)) ** 2 + ((cols - c0) / rng.uniform(8, 16)) ** 2 < 1
    pixels = np.clip(rng.normal(80, 20, shape) + rng.uniform(20, 60) * mask, 0, 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(folder / f"{case_id}.png")
    Image.fromarray((mask * 255).astype(np.uint8), mode="L").save(folder / f"{case_id}_mask.png")
    # a second reader: the same lesion outlined one pixel wider
    from scipy.ndimage import binary_dilation

    Image.fromarray((binary_dilation(mask) * 255).astype(np.uint8), mode="L").save(folder / f"{case_id}_mask2.png")


@pytest.fixture
def cohort(tmp_path):
    folder = tmp_path / "cohort"
    folder.mkdir()
    rows = []
    for i in range(5):
        write_case(folder, f"c{i}", seed=i)
        rows.append({"case_id": f"c{i}", "patient_id": f"p{i}", "center": "A", "image": f"c{i}.png",
                     "mask": f"c{i}_mask.png", "mask2": f"c{i}_mask2.png", "label": i % 2})
    path = folder / "cases.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def read_table(csv):
    from sonorad.cohort import read_cases

    return read_cases(csv)


def test_second_reader_design_equals_icc_of_the_two_extractions(cohort, tmp_path):
    from sonorad.features.extract import extract_radiomics

    table = read_table(cohort)
    result = feature_icc(table, params=SMALL, cache=tmp_path / "cache", progress=False)
    first, _ = extract_radiomics(table, params=SMALL, progress=False)
    second, _ = extract_radiomics(table.assign(mask=table["mask2"]), params=SMALL, progress=False)
    expected = icc_table([first, second])
    pd.testing.assert_frame_equal(result, expected)
    assert (result["n"] == 5).all()
    assert len(FeatureCache(tmp_path / "cache")) == 10  # 5 cases x 2 readers
    same = feature_icc(table.assign(mask2=table["mask"]), params=SMALL, progress=False)
    assert same.loc["original_shape2D_PixelSurface", "icc"] == 1.0


def test_perturbed_design_is_deterministic(cohort, tmp_path, monkeypatch):
    table = read_table(cohort).drop(columns="mask2")
    a = feature_icc(table, params=SMALL, seed=1, n_perturbations=2, progress=False)
    b = feature_icc(table, params=SMALL, seed=1, n_perturbations=2, cache=tmp_path / "cache", progress=False)
    pd.testing.assert_frame_equal(a, b)
    assert len(FeatureCache(tmp_path / "cache")) == 5 * 3  # mask + 2 perturbed masks per case
    c = feature_icc(table, params=SMALL, seed=2, n_perturbations=2, progress=False)
    assert not np.allclose(a["icc"], c["icc"])
    assert (a["icc"] > -1).all() and (a["icc"] <= 1).all()
    # the case seed depends on the study seed and the case id only, so a subset reuses the same masks
    assert icc_module._case_seed(1, "c3") == icc_module._case_seed(1, "c3") != icc_module._case_seed(2, "c3")


def test_subset_and_failures(cohort, tmp_path):
    table = read_table(cohort)
    sub = icc_module._subset(table, 3, seed=0)
    assert len(sub) == 3 and list(sub.index) == sorted(sub.index)
    assert sub.index.equals(icc_module._subset(table, 3, seed=0).index)
    with pytest.raises(ConfigError, match="n_cases"):
        icc_module._subset(table, 1, seed=0)
    table.loc["c2", "mask2"] = str(tmp_path / "missing.png")
    result, failures, design, _ = icc_module._feature_icc(table, params=SMALL, progress=False)
    assert design == "mask2" and (result["n"] == 4).all()
    assert list(failures["case_id"]) == ["c2"] and list(failures["stage"]) == ["icc_mask2"]
    table.loc["c2", "mask2"] = None
    with pytest.raises(ConfigError, match="c2"):
        feature_icc(table, params=SMALL, progress=False)


def test_cli_icc_writes_the_table(cohort, tmp_path, capsys):
    from sonorad.cli import main

    out = tmp_path / "out"
    rc = main(["icc", str(cohort), "--out", str(out), "--n-cases", "4", "--seed", "3", "--quiet",
               "--params", str(_write_params(tmp_path))])
    assert rc == 0 and "icc.csv" in capsys.readouterr().out
    table = pd.read_csv(out / "icc.csv")
    assert list(table.columns) == ["feature", "icc", "ci_low", "ci_high", "n"]
    assert set(table["feature"]) == {"original_shape2D_PixelSurface", "original_shape2D_Perimeter",
                                     "original_firstorder_Mean", "original_glcm_Contrast"}
    assert (table["n"] == 4).all()
    assert pd.read_csv(out / "icc_failures.csv").empty


def _write_params(tmp_path):
    import yaml

    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return path


def test_the_segmenters_masks_are_the_second_reader(tmp_path, capsys):
    from sonorad.cli import main
    from sonorad.segment.io import load_segmenter
    from sonorad.segment.predict import segment_cases
    from tests.pipeline.test_automatic_rois import train_saved_segmenter
    from tests.segment.conftest import write_cohort

    segmenter = train_saved_segmenter(tmp_path / "seg")
    csv = write_cohort(tmp_path / "cohort", n_cases=6, seed=3)
    params = _write_params(tmp_path)
    out = tmp_path / "out"
    assert main(["icc", str(csv), "--out", str(out), "--segmenter", str(segmenter), "--params", str(params),
                 "--quiet"]) == 0
    said = capsys.readouterr().out
    assert "mask2 = the segmenter's masks" in said and "icc.csv" in said
    # the same as the second-reader design on the proposals (made once more here, deterministically)
    proposed = segment_cases(load_segmenter(segmenter), csv, tmp_path / "again", boxes="mask")
    table = read_table(csv)
    kept = proposed.per_case.dropna(subset=["mask_file"])
    table = table.loc[kept["case_id"]].assign(mask2=[str(tmp_path / "again" / f) for f in kept["mask_file"]])
    expected = feature_icc(table, params=SMALL, progress=False)
    got = pd.read_csv(out / "icc.csv", index_col="feature")
    pd.testing.assert_frame_equal(got, expected.rename_axis("feature"), check_dtype=False, check_names=False)
    assert len(list((out / "auto_masks" / "masks").glob("*_auto.png"))) == len(kept)
    # a table that already has a second reader is refused
    with_mask2 = pd.read_csv(csv).assign(mask2=lambda t: t["mask"])
    with_mask2.to_csv(tmp_path / "cohort" / "two.csv", index=False)
    assert main(["icc", str(tmp_path / "cohort" / "two.csv"), "--out", str(tmp_path / "out2"), "--segmenter",
                 str(segmenter), "--quiet"]) != 0
    assert "has a mask2 column and --segmenter was given" in capsys.readouterr().err
    assert not (tmp_path / "out2" / "auto_masks").exists()  # refused before any proposal
