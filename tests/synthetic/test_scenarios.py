"""Tests of sonorad.synthetic.scenarios: cohort sizes, splits, argument checks and where the label's signal goes."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sonorad.errors import ConfigError
from sonorad.synthetic import SCENARIOS, CenterProfile, Scenario, make_cohort, simulate_table


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
    assert set(SCENARIOS["clnm"].variables) == set(c.columns) - {"case_id", "patient_id", "center", "split", "label"}


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
        ({"scenario": "thyroid"}, "primary_secondary"),
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


def _auc_distance(y, x) -> float:
    return abs(roc_auc_score(y, x) - 0.5)


@pytest.mark.parametrize("scenario", ["clnm", "primary_secondary"])
def test_signal_zero_makes_label_independent_of_everything(scenario):
    t = simulate_table(scenario, seed=11, signal=0.0, n_patients=4000)
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


def test_scenario_totals_add_up_over_centers():
    for scenario in SCENARIOS.values():
        assert isinstance(scenario, Scenario)
        assert scenario.n_patients == sum(c.n_patients for c in scenario.centers)
        assert 0 < scenario.n_positive < scenario.n_patients
    assert SCENARIOS["clnm"].n_patients == 214 and SCENARIOS["primary_secondary"].n_patients == 140
