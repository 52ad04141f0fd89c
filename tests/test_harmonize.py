"""ComBat harmonisation: planted center effects shrink; labels are never used."""

from __future__ import annotations

import contextlib
import io
import inspect

import numpy as np
import pandas as pd
import pytest

from sonorad.harmonize import ComBatHarmonizer

SHIFT = {"A": 0.0, "B": 2.0, "C": -1.5, "D": 3.0}
SCALE = {"A": 1.0, "B": 2.0, "C": 0.5, "D": 1.5}


def multicenter(n_per=40, p=25, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.repeat(list(SHIFT), n_per)
    X = rng.normal(size=(len(centers), p))
    for c in SHIFT:
        X[centers == c] = X[centers == c] * SCALE[c] + SHIFT[c]
    frame = pd.DataFrame(X, columns=[f"original_glcm_F{i}" for i in range(p)],
                         index=[f"case{i}" for i in range(len(centers))])
    frame["center"] = centers
    return frame


def center_spread(frame, centers):
    means = frame.groupby(centers).mean().mean(axis=1)
    sds = frame.groupby(centers).std().mean(axis=1)
    return means.max() - means.min(), sds.max() / sds.min()


def test_training_centers_match_neurocombat_reference():
    from neuroCombat import neuroCombat

    X = multicenter()
    train = X[X["center"] != "D"]
    feats = train.drop(columns="center")
    with contextlib.redirect_stdout(io.StringIO()):
        ref = neuroCombat(dat=feats.to_numpy().T, covars=pd.DataFrame({"batch": train["center"].to_numpy()}),
                          batch_col="batch")["data"].T
    out = ComBatHarmonizer().fit(train).transform(train)
    np.testing.assert_allclose(out.to_numpy(), ref, rtol=1e-8, atol=1e-8)
    assert "center" not in out.columns


def test_planted_center_effects_shrink_on_training_and_unseen_centers():
    X = multicenter()
    train = X[X["center"] != "D"]
    h = ComBatHarmonizer().fit(train)
    out = h.transform(X)
    before = center_spread(X.drop(columns="center"), X["center"])
    after = center_spread(out, X["center"])
    assert before[0] > 4 and after[0] < 0.3  # location gap between centers, D (unseen) included
    assert before[1] > 3 and after[1] < 1.3  # SD ratio between centers
    ref = ComBatHarmonizer(unseen="reference").fit(train).transform(X)
    np.testing.assert_array_equal(ref[X["center"] == "D"].to_numpy(),
                                  X[X["center"] == "D"].drop(columns="center").to_numpy())
    with pytest.raises(ValueError, match="Center 'D' was not in the training centers"):
        ComBatHarmonizer(unseen="error").fit(train).transform(X)


def test_labels_are_never_used():
    X = multicenter(seed=1)
    y = np.random.default_rng(0).integers(0, 2, len(X))
    a = ComBatHarmonizer().fit(X, y).transform(X)
    b = ComBatHarmonizer().fit(X, 1 - y).transform(X)
    c = ComBatHarmonizer().fit(X).transform(X)
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    np.testing.assert_array_equal(a.to_numpy(), c.to_numpy())
    assert list(inspect.signature(ComBatHarmonizer.transform).parameters) == ["self", "X"]


def test_unseen_center_estimate_uses_only_its_own_rows():
    X = multicenter(seed=2)
    train = X[X["center"].isin(["A", "B"])]
    h = ComBatHarmonizer().fit(train)
    d_alone = h.transform(X[X["center"] == "D"])
    d_with_others = h.transform(X).loc[d_alone.index]
    np.testing.assert_allclose(d_alone.to_numpy(), d_with_others.to_numpy())


def test_clear_errors():
    X = multicenter()
    with pytest.raises(ValueError, match="'center' column"):
        ComBatHarmonizer().fit(X.drop(columns="center"))
    with pytest.raises(ValueError, match="at least 2 training centers"):
        ComBatHarmonizer().fit(X[X["center"] == "A"])
    small = pd.concat([X[X["center"] != "D"], X[X["center"] == "D"].iloc[:2]])
    h = ComBatHarmonizer().fit(X[X["center"] != "D"])
    with pytest.raises(ValueError, match="Center 'D' has 2 row"):
        h.transform(small)
