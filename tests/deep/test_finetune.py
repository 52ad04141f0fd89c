"""Fine-tuning on a synthetic cohort with a known lesion signal, the DL model and backbone comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from sonorad.deep.finetune import (
    CNNClassifier,
    augment_batch,
    compare_backbones,
    finetune,
    inner_split,
    scanner_shift_batch,
)
from sonorad.errors import SonoradError

# The synthetic lesion is a gray-level signal on 32-pixel crops, which the default scanner-shift
# augmentation (gain, dynamic range, loss of resolution) is built to hide; tests of learning use the
# plain recipe, and scanner shift has its own tests below.
FAST = dict(weights=None, input_size=32, epochs=12, batch_size=8, lr=3e-3, patience=4, augment=True)


def test_inner_split_is_grouped_and_stratified():
    y = np.array([0, 1] * 20)
    groups = np.repeat(np.arange(10), 4)
    train, val = inner_split(y, groups, 0.2, random_state=0)
    assert not set(groups[train]) & set(groups[val])
    assert set(y[val]) == {0, 1} and len(train) + len(val) == 40
    with pytest.raises(SonoradError, match="both classes"):
        inner_split(np.array([0, 0, 0, 0, 1]), None, 0.2, 0)


def test_augmentation_is_reproducible_and_keeps_range():
    x = torch.rand(4, 1, 16, 16)
    a = augment_batch(x, torch.Generator().manual_seed(1))
    b = augment_batch(x, torch.Generator().manual_seed(1))
    c = augment_batch(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1


def test_scanner_shift_is_reproducible_keeps_range_and_changes_the_look():
    x = 0.2 + 0.6 * torch.rand(8, 1, 32, 32)
    a = scanner_shift_batch(x, torch.Generator().manual_seed(1))
    b = scanner_shift_batch(x, torch.Generator().manual_seed(1))
    c = scanner_shift_batch(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1
    # every image gets its own scanner: per-image mean brightness and row profile move apart
    shift = (a - x).mean(dim=(1, 2, 3))
    assert float(shift.std()) > 0.01
    flat = torch.full((64, 1, 40, 40), 0.5)
    depth = scanner_shift_batch(flat, torch.Generator().manual_seed(3)).mean(dim=(0, 1, 3))
    assert float(depth.std()) < 0.05  # time-gain compensation is symmetric about none on average
    rows = scanner_shift_batch(flat, torch.Generator().manual_seed(3)).mean(dim=(1, 3))
    assert float((rows[:, -1] - rows[:, 0]).abs().mean()) > 0.05  # but changes each image's depth profile


def test_finetune_defaults_to_scanner_shift_deterministically_and_checks_its_value(make_images):
    images, _, y, patient = make_images(24, size=32, seed=3)
    kw = {**FAST, "epochs": 2, "random_state": 5}
    del kw["augment"]
    a = finetune("small_cnn", list(images), y, groups=patient, **kw)  # the default
    b = finetune("small_cnn", list(images), y, groups=patient, augment="scanner_shift", **kw)
    plain = finetune("small_cnn", list(images), y, groups=patient, augment=True, **kw)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not all(torch.equal(va, vp) for va, vp in zip(a.model.state_dict().values(),
                                                           plain.model.state_dict().values()))
    with pytest.raises(SonoradError, match="augment must be true, false or 'scanner_shift', got 'heavy'"):
        finetune("small_cnn", list(images), y, groups=patient, augment="heavy", **kw)


def test_finetuned_cnn_beats_chance_on_held_out_cases(make_images):
    images, _, y, patient = make_images(100, size=32, seed=1, signal=0.6)
    train, test = np.arange(60), np.arange(60, 100)
    clf = CNNClassifier("small_cnn", random_state=0, **FAST).fit(images[train], y[train], groups=patient[train])
    proba = clf.predict_proba(images[test])
    assert proba.shape == (40, 2) and np.allclose(proba.sum(axis=1), 1)
    assert roc_auc_score(y[test], proba[:, 1]) > 0.8
    assert 1 <= clf.best_epoch_ <= len(clf.history_) <= FAST["epochs"]
    assert set(clf.predict(images[test])) <= {0, 1}


def test_finetuning_is_deterministic_on_cpu(make_images):
    images, _, y, patient = make_images(24, size=32, seed=3)
    kw = dict(FAST, epochs=2)
    a = finetune("small_cnn", list(images), y, groups=patient, random_state=5, **kw)
    b = finetune("small_cnn", list(images), y, groups=patient, random_state=5, **kw)
    c = finetune("small_cnn", list(images), y, groups=patient, random_state=6, **kw)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not all(torch.equal(va, vc) for va, vc in zip(a.model.state_dict().values(),
                                                           c.model.state_dict().values()))
    assert a.model.input_size == 32 and a.seconds_per_epoch > 0


def test_finetune_mode_of_the_transformer_uses_the_tuned_trunk(make_images):
    from sonorad.deep.extractor import DeepFeatureExtractor

    images, _, y, patient = make_images(24, size=32, seed=4)
    frozen = DeepFeatureExtractor("small_cnn", weights=None, input_size=32, random_state=0).fit(images, y)
    tuned = DeepFeatureExtractor("small_cnn", mode="finetune", weights=None, input_size=32, epochs=2,
                                 batch_size=8, random_state=0).fit(images, y, groups=patient)
    assert tuned.history_ is not None and len(tuned.history_) >= 1
    assert tuned.transform(images).shape == frozen.transform(images).shape == (24, 64)
    assert not np.allclose(tuned.transform(images), frozen.transform(images))


def test_labels_must_be_binary(make_images):
    images, _, _, _ = make_images(6, size=32)
    with pytest.raises(SonoradError, match="exactly two classes"):
        CNNClassifier("small_cnn", **FAST).fit(images, np.zeros(6))


def test_compare_backbones_picks_the_best_by_inner_cv_auc(make_images):
    images, _, y, patient = make_images(32, size=32, seed=7, signal=0.8)
    names = ["small_cnn", "efficientnet_lite0"]
    result = compare_backbones(images, y, names, groups=patient, n_splits=2, random_state=0,
                               **dict(FAST, epochs=2))
    table = result.to_frame()
    assert list(table["backbone"]) == sorted(names, key=lambda b: -result.fold_auc.loc[b].mean())
    assert result.best == table["backbone"].iloc[0]
    assert {"auc_mean", "auc_sd", "fold_1", "fold_2"} <= set(table.columns)
    assert table["auc_mean"].between(0, 1).all()
