import json

import numpy as np
import pytest

from sonorad.errors import CohortError, SonoradError
from sonorad.segment.train import patient_split, train_segmenter


def test_patient_split_keeps_patients_on_one_side():
    patients = np.repeat([f"p{i}" for i in range(10)], 3)
    train, val = patient_split(patients, 0.2, seed=0)
    assert set(patients[train]).isdisjoint(patients[val])
    assert len(train) + len(val) == len(patients) and len(val) > 0
    with pytest.raises(SonoradError, match="at least 2 patients"):
        patient_split(["p1"] * 4, 0.2, seed=0)


def test_trained_segmenter_metadata_has_counts_and_validation_dice(tiny_segmenter):
    meta = tiny_segmenter.meta
    assert meta["image_size"] == 32 and meta["margin"] == 0.2 and meta["mirror_average"] is True
    assert meta["cohort"]["n_cases"] == 10 and meta["cohort"]["n_patients"] == 5
    assert meta["cohort"]["n_train_cases"] + meta["cohort"]["n_validation_cases"] == 10
    assert meta["cohort"]["cases_per_center"] == {"A": 4, "B": 6}
    assert 0.0 <= meta["validation"]["dice_median"] <= 1.0
    assert len(meta["history"]) == 2
    text = json.dumps(meta)  # JSON-serialisable and free of case / patient ids
    assert '"c1"' not in text and '"p0"' not in text


def test_training_refuses_bad_cases_naming_each(tmp_path):
    from PIL import Image

    from sonorad.cohort import read_cases
    from sonorad.segment.data import load_training_cases
    from tests.segment.conftest import write_cohort

    csv = write_cohort(tmp_path, n_cases=4)
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(tmp_path / "masks" / "c1.png")  # empty mask
    (tmp_path / "images" / "c2.png").write_bytes(b"not an image")                      # unreadable image
    table = read_cases(csv)
    table.loc["c3", "mask"] = np.nan                                                    # missing mask
    with pytest.raises(CohortError) as err:
        load_training_cases(table)
    text = str(err.value)
    assert "3 problem(s)" in text
    assert "case c1" in text and "empty" in text
    assert "case c2" in text
    assert "case c3" in text and "no mask given" in text
    assert "case c0" not in text


def test_image_size_must_be_a_multiple_of_32():
    with pytest.raises(SonoradError, match="multiple of 32"):
        train_segmenter([], image_size=48)


def test_adapting_a_segmenter_starts_from_its_weights_and_keeps_its_input(tiny_segmenter, tiny_cohort):
    import torch

    from sonorad.cohort import read_cases
    from sonorad.segment.data import load_training_cases

    cases = load_training_cases(read_cases(tiny_cohort))
    # lr 0: the trained weights stay those of the start (a fresh start would differ), so they show where it began.
    adapted = train_segmenter(cases, image_size=64, margin=0.5, epochs=1, max_minutes=None, batch_size=4, lr=0.0,
                              val_fraction=0.3, initial=tiny_segmenter, threads=1, progress=False)
    assert adapted.image_size == tiny_segmenter.image_size == 32 and adapted.margin == tiny_segmenter.margin
    assert torch.equal(adapted.net.head.weight, tiny_segmenter.net.head.weight)
    assert adapted.meta["initial"]["validation_dice_median"] == tiny_segmenter.meta["validation"]["dice_median"]
    assert adapted.meta["initial"]["cohort"] == tiny_segmenter.meta["cohort"]
    fresh = train_segmenter(cases, image_size=32, epochs=1, max_minutes=None, batch_size=4, lr=0.0,
                            val_fraction=0.3, encoder_weights=None, seed=1, threads=1, progress=False)
    assert not torch.equal(fresh.net.head.weight, tiny_segmenter.net.head.weight)
