"""sonorad.bundle._trust: a skops file is built only when every type it holds is on the trusted list."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sonorad.bundle._trust import (TRUSTED_TYPES, BundleError, check_skops, dump_skops, load_skops,
                                   trusted_types)
from sonorad.selection import ZScore


class Stranger(ClassifierMixin, BaseEstimator):
    """An estimator no sonorad bundle contains."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        return np.tile([0.5, 0.5], (len(X), 1))


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    return X, (X[:, 0] + 0.3 * rng.normal(size=30) > 0).astype(int)


def test_a_sonorad_pipeline_round_trips_through_the_checks(tmp_path):
    X, y = _data()
    model = Pipeline([("zscore", ZScore()), ("model", LogisticRegression())]).fit(X, y)
    data = dump_skops(model, tmp_path / "lr.skops", "lr")
    assert (tmp_path / "lr.skops").read_bytes() == data
    assert set(check_skops(data, "lr.skops")) <= set(trusted_types())
    again = load_skops(data, "lr.skops")
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


def test_a_foreign_type_is_refused_before_anything_is_built(tmp_path):
    import skops.io as sio

    X, y = _data()
    data = sio.dumps(Stranger().fit(X, y))
    with pytest.raises(BundleError, match=r"Stranger.*nothing in it was run"):
        check_skops(data, "stranger.skops")
    with pytest.raises(BundleError, match="Stranger"):
        load_skops(data, "stranger.skops")
    with pytest.raises(BundleError, match="model 'stranger'.*Stranger"):
        dump_skops(Stranger().fit(X, y), tmp_path / "stranger.skops", "stranger")
    assert not (tmp_path / "stranger.skops").exists()


def test_bytes_that_are_no_skops_file_are_a_bundle_error():
    with pytest.raises(BundleError, match="models/x.skops is not a readable skops file"):
        check_skops(b"not a zip archive", "models/x.skops")


def test_the_trusted_list_follows_feature_blocks_to_its_current_module():
    from sonorad.designs._common import FeatureBlocks

    names = trusted_types()
    assert names == sorted(set(names)) and set(TRUSTED_TYPES) <= set(names)
    assert f"{FeatureBlocks.__module__}.{FeatureBlocks.__qualname__}" in names
    assert not any(name.startswith(("builtins.", "os.", "subprocess.")) for name in names)
