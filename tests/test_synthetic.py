"""Tests of sonorad.synthetic: sizes, files, determinism and where the label's signal goes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull
from sklearn.metrics import roc_auc_score

from sonorad.cli import main as cli_main
from sonorad.errors import ConfigError
from sonorad.synthetic import (
    DESIGNS,
    CenterProfile,
    LesionShape,
    lesion_mask,
    make_cohort,
    render_case,
    simulate_case,
    simulate_table,
)

REQUIRED = ["case_id", "patient_id", "center", "image", "mask", "label"]
SMALL = (96, 120)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _solidity_deficit(mask: np.ndarray) -> float:
    """1 - area / convex hull area: 0 for convex (round/oval) lesions, larger for irregular ones."""
    pts = np.argwhere(mask).astype(float)
    corners = np.concatenate([pts + d for d in ([0, 0], [0, 1], [1, 0], [1, 1])])
    return 1.0 - mask.sum() / ConvexHull(corners).volume


def _echo_contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """Median gray level of tissue beside the lesion (same depth rows) minus that of the lesion core.

    Tissue beside the lesion, not below it, so posterior shadowing does not mix in.
    """
    core = ndimage.binary_erosion(mask, iterations=2)
    beside = np.zeros_like(mask)
    beside[mask.any(axis=1)] = True
    beside &= ~ndimage.binary_dilation(mask, iterations=8)
    return float(np.median(image[beside]) - np.median(image[core]))


def _render_table(table, image_size):
    profiles = {c.name: c for c in table.design.centers}
    for i, case_id in enumerate(table.cases["case_id"]):
        rng = np.random.default_rng(i)
        yield render_case(table.traits(case_id), profiles[table.cases.at[case_id, "center"]], image_size, rng)


# ---------------------------------------------------------------- designs and table


def test_clnm_default_sizes_and_split():
    t = simulate_table("clnm", seed=0)
    c = t.cases
    assert len(c) == 214 and c["patient_id"].is_unique and c["case_id"].is_unique
    assert sorted(c["center"].unique()) == ["C1", "C2", "C3", "C4"]
    assert c.groupby("split").size().to_dict() == {"external": 70, "train": 144}
    assert set(c.loc[c["split"] == "train", "center"]) == {"C1", "C2"}
    assert int(c.loc[c["split"] == "external", "label"].sum()) == 19
    assert 0.27 <= c["label"].mean() <= 0.30
    per_center = c.groupby("center")["label"].agg(["min", "max"])
    assert (per_center["min"] == 0).all() and (per_center["max"] == 1).all()
    for col in ["age", "tumor_edge", "calcification", "us_lymph_node", "noise_num1", "noise_cat1"]:
        assert col in c.columns
    assert set(c["tumor_edge"]) <= {0, 1} and set(c["noise_cat1"]) == {"a", "b", "c"}
    assert c["age"].between(18, 90).all()
    assert set(DESIGNS["clnm"].variables) == set(c.columns) - {"case_id", "patient_id", "center", "split", "label"}


def test_primary_secondary_default_sizes_and_split():
    c = simulate_table("primary_secondary", seed=0).cases
    assert len(c) == 140
    assert c["label"].value_counts().to_dict() == {1: 72, 0: 68}
    assert c.groupby("split").size().to_dict() == {"external": 72, "train": 68}
    assert set(c.loc[c["split"] == "external", "center"]) == {"C3", "C4"}
    assert set(c["shape"]) == {"oval", "round", "irregular"}
    assert set(c["vascularity"]) <= {0, 1, 2, 3} and set(c["echogenicity"]) <= {1, 2, 3, 4}


def test_n_patients_is_split_over_centers_with_both_classes():
    c = simulate_table("clnm", seed=3, n_patients=24).cases
    assert len(c) == 24
    sizes = c.groupby("center").size()
    assert sizes.to_dict() == {"C1": 9, "C2": 7, "C3": 4, "C4": 4}
    assert (c.groupby("center")["label"].nunique() == 2).all()


def test_center_subset_and_custom_profile():
    c = simulate_table("clnm", centers=["C1", "C3"]).cases
    assert c.groupby("center").size().to_dict() == {"C1": 80, "C3": 38}
    custom = CenterProfile("H9", "external", 10, 4, gain_db=6.0)
    c = simulate_table("clnm", centers=["C1", custom]).cases
    assert c.groupby("center").size().to_dict() == {"C1": 80, "H9": 10}
    assert int(c.loc[c["center"] == "H9", "label"].sum()) == 4


def test_images_per_patient_share_patient_and_traits():
    t = simulate_table("clnm", seed=1, n_patients=10, images_per_patient=3)
    c = t.cases
    assert len(c) == 30 and c["case_id"].is_unique
    assert (c.groupby("patient_id").size() == 3).all()
    assert (c.groupby("patient_id")["label"].nunique() == 1).all()
    assert (t.truth.groupby(c["patient_id"])["echo_level"].nunique() == 1).all()


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"design": "thyroid"}, "primary_secondary"),
        ({"signal": -1.0}, "signal"),
        ({"signal": float("nan")}, "signal"),
        ({"n_patients": 5}, "n_patients"),
        ({"centers": ["C9"]}, "C9"),
        ({"images_per_patient": 0}, "images_per_patient"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, word):
    with pytest.raises(ConfigError, match=word):
        simulate_table(**kwargs)


def test_bad_image_size_and_rate(tmp_path):
    with pytest.raises(ConfigError, match="image_size"):
        make_cohort(tmp_path, n_patients=8, image_size=(20, 20))
    with pytest.raises(ConfigError, match="second_lesion_rate"):
        make_cohort(tmp_path, n_patients=8, second_lesion_rate=2.0)


# ---------------------------------------------------------------- signal


def _auc_distance(y, x) -> float:
    return abs(roc_auc_score(y, x) - 0.5)


@pytest.mark.parametrize("design", ["clnm", "primary_secondary"])
def test_signal_zero_makes_label_independent_of_everything(design):
    t = simulate_table(design, seed=11, signal=0.0, n_patients=4000)
    c, truth = t.cases, t.truth
    y = c["label"].to_numpy()
    # Same prevalence in every center, so the center itself says nothing about the label.
    prev = c.groupby("center")["label"].mean()
    assert prev.max() - prev.min() < 0.01
    numeric = [col for col in c.columns if col not in ("case_id", "patient_id", "center", "split", "label")]
    for col in numeric:
        values = c[col]
        if not pd.api.types.is_numeric_dtype(values):
            for level in values.unique():
                assert _auc_distance(y, (values == level).to_numpy()) < 0.04, (col, level)
        else:
            assert _auc_distance(y, values) < 0.04, col
    for col in truth.columns.drop("case_id"):
        assert _auc_distance(y, truth[col]) < 0.04, col


def test_signal_one_separates_and_modalities_add_up():
    t = simulate_table("clnm", seed=11, signal=1.0, n_patients=4000)
    y = t.cases["label"].to_numpy()
    auc_img = roc_auc_score(y, t.truth["z_imaging"])
    auc_clin = roc_auc_score(y, t.truth["z_clinical"])
    auc_both = roc_auc_score(y, t.truth["z_imaging"] + t.truth["z_clinical"])
    assert auc_img > 0.8 and auc_clin > 0.8
    assert auc_both > max(auc_img, auc_clin) + 0.03
    for col in ["age", "tumor_edge", "calcification", "us_lymph_node"]:
        assert roc_auc_score(y, t.cases[col]) > 0.6, col
    assert _auc_distance(y, t.cases["noise_num1"]) < 0.04
    # A stronger signal separates more.
    strong = simulate_table("clnm", seed=11, signal=2.0, n_patients=4000)
    assert roc_auc_score(strong.cases["label"], strong.truth["z_imaging"]) > auc_img + 0.05


def test_primary_secondary_ultrasound_descriptors_are_weak():
    t = simulate_table("primary_secondary", seed=2, signal=1.0, n_patients=4000)
    y = t.cases["label"].to_numpy()
    assert roc_auc_score(y, t.truth["z_imaging"]) > 0.8
    for col in ["echogenicity", "vascularity", "age"]:
        assert _auc_distance(y, t.cases[col]) < 0.1, col


def test_image_statistics_follow_the_label():
    """Statistics measured on rendered images and masks: irregularity and lesion contrast."""
    results = {}
    for signal in (0.0, 1.0):
        t = simulate_table("clnm", seed=5, signal=signal, n_patients=120)
        irregularity, contrast = [], []
        for case in _render_table(t, (80, 100)):
            irregularity.append(_solidity_deficit(case.mask))
            contrast.append(_echo_contrast(case.image, case.mask))
        y = t.cases["label"].to_numpy()
        results[signal] = (roc_auc_score(y, irregularity), roc_auc_score(y, contrast))
    assert results[1.0][0] > 0.7 and results[1.0][1] > 0.7
    assert abs(results[0.0][0] - 0.5) < 0.15 and abs(results[0.0][1] - 0.5) < 0.15


def test_center_gain_changes_image_brightness():
    t = simulate_table("clnm", seed=0, signal=1.0, centers=["C2", "C3"], n_patients=16)
    means = {}
    for case in _render_table(t, SMALL):
        means.setdefault(case.center, []).append(case.image[~case.mask].mean())
    # C2 has +3 dB gain and a wider dynamic range, C3 -3 dB: harmonization has work to do.
    assert np.mean(means["C2"]) > np.mean(means["C3"]) + 10


# ---------------------------------------------------------------- arrays


def test_lesion_mask_of_a_circle_has_the_circle_area():
    circle = LesionShape((50.0, 60.0), 20.0, 1.0, 0.0, (), (), ())
    area = lesion_mask(circle, (100, 120)).sum()
    assert abs(area - np.pi * 20.0**2) / (np.pi * 20.0**2) < 0.02
    ellipse = LesionShape((50.0, 60.0), 20.0, 4.0, 0.0, (), (), ())
    m = lesion_mask(ellipse, (100, 120))
    rows, cols = np.nonzero(m)
    assert np.ptp(cols) == pytest.approx(80, abs=2) and np.ptp(rows) == pytest.approx(20, abs=2)


def test_simulate_case_shapes_and_mask_inside_image():
    for label in (0, 1):
        for center in ("C1", "C3"):
            case = simulate_case(label, seed=label, center=center, image_size=SMALL, second_reader=True)
            assert case.image.dtype == np.uint8 and case.image.ndim == 2
            assert case.mask.shape == case.image.shape == case.mask2.shape
            assert case.mask.sum() > 50
            # The lesion stays away from the border and below the dark top band.
            assert not (case.mask[:6].any() or case.mask[-1].any() or case.mask[:, 0].any() or case.mask[:, -1].any())
            dice = 2 * (case.mask & case.mask2).sum() / (case.mask.sum() + case.mask2.sum())
            assert 0.75 < dice < 1.0
    # The center's size scale changes the matrix size.
    assert simulate_case(center="C3", image_size=(100, 120)).image.shape == (110, 132)


def test_signal_zero_case_does_not_depend_on_label():
    a = simulate_case(0, seed=4, signal=0.0, image_size=SMALL)
    b = simulate_case(1, seed=4, signal=0.0, image_size=SMALL)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    c = simulate_case(1, seed=4, signal=1.0, image_size=SMALL)
    assert not np.array_equal(a.image, c.image)


# ---------------------------------------------------------------- files


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


def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "ps"
    rc = cli_main(["synth", "--out", str(out), "--design", "primary_secondary", "--seed", "1",
                   "--signal", "0.5", "--n-patients", "8"])
    assert rc == 0 and "cases.csv" in capsys.readouterr().out
    c = pd.read_csv(out / "cases.csv")
    assert len(c) == 8 and set(c["center"]) == {"C1", "C2", "C3", "C4"}
    rc = cli_main(["synth", "--out", str(tmp_path / "bad"), "--n-patients", "3"])
    assert rc == 2 and "n_patients" in capsys.readouterr().err


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
