"""Patient-grouped, stratified, deterministic splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.cohort import load_cohort

from .builders import make_cohort, patient_parts, rows_of, study_of


def test_patient_split_is_grouped_stratified_and_deterministic(tmp_path):
    rows = rows_of(n_patients=40, centers=("A", "B"), images_per_patient=3)
    csv = make_cohort(tmp_path, rows)
    study = study_of(seed=5, split={"by": "patient", "test_fraction": 0.25})
    cohort = load_cohort(csv, study=study)
    parts = patient_parts(cohort)
    assert (parts == "internal").sum() == 10          # round(0.25 * 40) patients, all their images
    patients = pd.DataFrame(rows).drop_duplicates("patient_id").set_index("patient_id")
    held = patients.loc[parts[parts == "internal"].index]
    # stratified by (center, label): strata of 14, 6, 7, 13 patients have quotas 3.5, 1.5, 1.75, 3.25;
    # largest remainders give the two extra patients to (B, 0) then (A, 0)
    assert held.groupby(["center", "label"]).size().to_dict() == {("A", 0): 4, ("A", 1): 1, ("B", 0): 2, ("B", 1): 3}
    again = load_cohort(csv, study=study).split_labels()
    assert again.equals(cohort.split_labels())
    # row order does not matter; the seed does
    shuffled = make_cohort(tmp_path / "shuffled", list(np.random.default_rng(0).permutation(rows)))
    reordered = load_cohort(shuffled, study=study).split_labels()
    assert reordered.sort_index().equals(cohort.split_labels().sort_index())
    other = load_cohort(csv, study=study_of(seed=6, split={"by": "patient", "test_fraction": 0.25})).split_labels()
    assert not other.equals(cohort.split_labels())
    own_seed = study_of(seed=6, split={"by": "patient", "test_fraction": 0.25, "seed": 5})
    assert load_cohort(csv, study=own_seed).split_labels().equals(cohort.split_labels())


def test_center_split_with_internal_hold_out(tmp_path):
    rows = rows_of(n_patients=30, centers=("A", "B", "C"), images_per_patient=2)
    csv = make_cohort(tmp_path, rows)
    study = study_of(split={"by": "center", "train": ["A", "B"], "external": ["C"], "internal_fraction": 0.3})
    cohort = load_cohort(csv, study=study)
    parts = cohort.split_labels()
    assert (parts[cohort.table["center"] == "C"] == "external").all()
    assert set(parts[cohort.table["center"] != "C"]) == {"train", "internal"}
    per_patient = patient_parts(cohort)
    assert (per_patient == "internal").sum() == 6     # 0.3 of the 20 training patients
    train = cohort.subset("train")
    assert len(train.table) == 28 and set(train.split_labels()) == {"train"}
    assert train.y.index.equals(train.table.index)
    assert len(cohort.subset(["internal", "external"]).table) == 32
    with pytest.raises(ValueError, match="part must be one of train, internal, external"):
        cohort.subset("test")
