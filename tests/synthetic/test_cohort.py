"""Tests of sonorad.synthetic.cohort: written cohorts and their determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.metrics import roc_auc_score

from sonorad.synthetic import make_cohort, simulate_table

REQUIRED = ["case_id", "patient_id", "center", "image", "mask", "label"]
SMALL = (96, 120)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_make_cohort_writes_a_valid_cohort(tmp_path):
    csv = make_cohort(tmp_path / "cohort", n_patients=12, image_size=SMALL, seed=2)
    assert csv == tmp_path / "cohort" / "cases.csv"
    c = pd.read_csv(csv)
    assert list(c.columns[:6]) == REQUIRED and "split" in c.columns
    assert len(c) == 12 and (tmp_path / "cohort" / "truth.csv").exists()
    expected = simulate_table("clnm", seed=2, n_patients=12).cases
    assert c["label"].tolist() == expected["label"].tolist()
    assert c["age"].tolist() == expected["age"].tolist()
    for _, row in c.iterrows():
        assert not Path(row["image"]).is_absolute()
        image = Image.open(csv.parent / row["image"])
        mask = Image.open(csv.parent / row["mask"])
        assert image.mode == "L" and mask.mode == "L" and image.size == mask.size
        m = np.asarray(mask)
        assert set(np.unique(m)) == {0, 255}
        assert m[:, 0].max() == 0 and m[:, -1].max() == 0 and m[-1].max() == 0


def test_make_cohort_is_deterministic(tmp_path):
    kwargs = dict(n_patients=8, image_size=SMALL, second_reader=True, second_lesion_rate=0.5)
    make_cohort(tmp_path / "a", seed=7, **kwargs)
    make_cohort(tmp_path / "b", seed=7, **kwargs)
    make_cohort(tmp_path / "c", seed=8, **kwargs)
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert a == b and len(a) >= 8 * 3 + 2
    assert a["cases.csv"] != c["cases.csv"]
    assert a["images/C1-001-1.png"] != c["images/C1-001-1.png"]


def test_make_cohort_second_lesion_and_reader(tmp_path):
    csv = make_cohort(tmp_path, n_patients=8, image_size=(128, 160), second_lesion_rate=1.0, second_reader=True)
    c = pd.read_csv(csv)
    assert "mask2" in c.columns
    multi = c[c["mask"].str.contains(";")]
    assert len(multi) >= 6  # a satellite is skipped only when it does not fit
    for _, row in multi.iterrows():
        first, second = (np.asarray(Image.open(tmp_path / p)) > 0 for p in row["mask"].split(";"))
        assert first.any() and second.any() and not (first & second).any()
        reader2 = np.asarray(Image.open(tmp_path / row["mask2"])) > 0
        assert (first & reader2).sum() > 0.7 * first.sum()


def test_pyradiomics_finds_the_shape_signal(tmp_path):
    """End to end through PyRadiomics: shape features of the written masks separate the classes."""
    import SimpleITK as sitk
    from radiomics import featureextractor

    csv = make_cohort(tmp_path, seed=3, signal=1.0, n_patients=80, image_size=(128, 160))
    cases = pd.read_csv(csv)
    extractor = featureextractor.RadiomicsFeatureExtractor(force2D=True, binWidth=8)
    extractor.disableAllFeatures()
    extractor.enableFeaturesByName(shape2D=["Perimeter", "Elongation"])
    rows = []
    for _, row in cases.iterrows():
        pixels = np.asarray(Image.open(tmp_path / row["image"]), dtype=np.float32)[None]
        mask = (np.asarray(Image.open(tmp_path / row["mask"])) > 0).astype(np.uint8)[None]
        out = extractor.execute(sitk.GetImageFromArray(pixels), sitk.GetImageFromArray(mask), label=1)
        rows.append({k: float(v) for k, v in out.items() if k.startswith("original_shape2D")})
    features = pd.DataFrame(rows)
    y = cases["label"].to_numpy()
    assert roc_auc_score(y, features["original_shape2D_Perimeter"]) > 0.7
    assert roc_auc_score(y, features["original_shape2D_Elongation"]) > 0.7
