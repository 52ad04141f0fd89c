"""Tests of the bootstrap optimism correction on a plain LogisticRegression pipeline.

Known qualitative behaviour (Harrell 1996; Steyerberg 2019 ch. 17): a model with many noise
features on a small sample is optimistic (apparent AUC above the corrected one, slope shrunk
below 1); a one-feature model on a large sample has almost no optimism.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from sonorad.evaluation.optimism import bootstrap_validation


def _fit_predict(X_train, y_train, groups_train, X_predict):
    model = LogisticRegression(C=1.0, max_iter=2000).fit(X_train, y_train)
    return model.predict_proba(X_predict)[:, 1]


def _data(n, noise, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 1 + noise))
    y = (rng.random(n) < 1 / (1 + np.exp(-0.8 * X[:, 0]))).astype(int)
    return X, y


def test_overfit_model_is_optimistic_and_corrected_downwards():
    X, y = _data(100, 25)
    r = bootstrap_validation(_fit_predict, X, y, n_resamples=15, random_state=0)
    t = r.table
    assert list(t.index) == ["AUC", "Intercept", "Slope", "Brier"]
    assert t.loc["AUC", "optimism"] > 0.08
    assert t.loc["AUC", "corrected"] < t.loc["AUC", "apparent"] - 0.08
    assert t.loc["Slope", "corrected"] < 0.8          # predictions too extreme for new patients
    assert t.loc["Brier", "optimism"] < 0              # a lower Brier is better: optimism < 0
    np.testing.assert_allclose(t["optimism"], t["training"] - t["test"], atol=1e-12)
    np.testing.assert_allclose(t["corrected"], t["apparent"] - t["optimism"], atol=1e-12)
    assert (t["n"] == 15).all() and not r.failures
    c = r.calibration
    assert len(c) == 50 and c["predicted"].is_monotonic_increasing
    np.testing.assert_allclose(c["corrected"], c["apparent"] - c["optimism"], atol=1e-12)
    assert r.mean_absolute_error > 0.03              # the corrected curve departs from the diagonal


def test_small_model_on_large_sample_has_no_optimism():
    X, y = _data(2000, 0)
    r = bootstrap_validation(_fit_predict, X, y, n_resamples=10, random_state=0)
    t = r.table
    assert abs(t.loc["AUC", "optimism"]) < 0.005
    assert abs(t.loc["Slope", "optimism"]) < 0.05 and abs(t.loc["Intercept", "optimism"]) < 0.05
    assert abs(t.loc["Brier", "optimism"]) < 0.002
    assert r.mean_absolute_error < 0.03


def test_seeded_runs_are_identical_and_do_not_depend_on_n_jobs():
    from joblib import parallel_config

    X, y = _data(80, 5)
    a = bootstrap_validation(_fit_predict, X, y, n_resamples=6, random_state=3)
    with parallel_config(backend="threading"):        # workers finish in any order
        b = bootstrap_validation(_fit_predict, X, y, n_resamples=6, random_state=3, n_jobs=3)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.calibration, b.calibration)
    c = bootstrap_validation(_fit_predict, X, y, n_resamples=6, random_state=4)
    assert not np.allclose(a.table["optimism"], c.table["optimism"])


@pytest.mark.slow
def test_worker_processes_give_the_same_numbers(tmp_path):
    # loky worker processes (start-up dominates: ~15 s on 2 cores); a closure is sent by cloudpickle
    X, y = _data(80, 5)
    C = 1.0

    def closure(Xt, yt, gt, Xp):
        return LogisticRegression(C=C, max_iter=2000).fit(Xt, yt).predict_proba(Xp)[:, 1]

    a = bootstrap_validation(closure, X, y, n_resamples=4, random_state=3)
    b = bootstrap_validation(closure, X, y, n_resamples=4, random_state=3, n_jobs=2, checkpoint=tmp_path)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert len(list(tmp_path.glob("resample_*.json"))) == 4


def test_interrupted_run_resumes_from_checkpoint_with_identical_numbers(tmp_path):
    X, y = _data(80, 5)
    calls = []

    def counting(Xt, yt, gt, Xp):
        calls.append(len(yt))
        return _fit_predict(Xt, yt, gt, Xp)

    full = bootstrap_validation(counting, X, y, n_resamples=8, random_state=0, checkpoint=tmp_path)
    assert len(calls) == 9 and len(list(tmp_path.glob("resample_*.json"))) == 8
    for b in (2, 5, 7):                                   # as if killed before these finished
        (tmp_path / f"resample_{b:05d}.json").unlink()
    calls.clear()
    seen = []
    resumed = bootstrap_validation(counting, X, y, n_resamples=8, random_state=0, checkpoint=tmp_path,
                                   progress=lambda done, total: seen.append((done, total)))
    assert len(calls) == 1 + 3                            # the apparent fit and the 3 missing resamples
    assert seen[0] == (5, 8) and seen[-1] == (8, 8)
    pd.testing.assert_frame_equal(full.table, resumed.table)
    pd.testing.assert_frame_equal(full.calibration, resumed.calibration)
    # more resamples later reuse the 8 done
    calls.clear()
    bootstrap_validation(counting, X, y, n_resamples=10, random_state=0, checkpoint=tmp_path)
    assert len(calls) == 1 + 2
    with pytest.raises(ValueError, match="another bootstrap run"):
        bootstrap_validation(counting, X, y, n_resamples=8, random_state=1, checkpoint=tmp_path)


def test_patients_are_resampled_with_all_their_rows():
    X, y = _data(90, 2)
    groups = np.repeat([f"p{i:02d}" for i in range(30)], 3)     # three lesions per patient
    y = np.repeat(y[:30], 3)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(3)])
    seen = []

    def check(Xt, yt, gt, Xp):
        assert isinstance(Xt, pd.DataFrame) and len(Xt) == len(yt) == len(gt)
        counts = pd.Series(gt).value_counts()
        seen.append(bool((counts % 3 == 0).all()))
        return _fit_predict(Xt, yt, gt, Xp)

    r = bootstrap_validation(check, frame, y, groups, n_resamples=4, random_state=0)
    assert all(seen) and len(seen) == 5 and (r.table["n"] == 4).all()


def test_bad_input_and_one_class_resamples():
    X, y = _data(40, 1)
    with pytest.raises(ValueError, match="one patient id per row"):
        bootstrap_validation(_fit_predict, X, y, groups=np.arange(5), n_resamples=2)
    with pytest.raises(ValueError, match="one probability in"):
        bootstrap_validation(lambda Xt, yt, gt, Xp: np.zeros(3), X, y, n_resamples=2)
    # 1 event among 12 patients: some bootstrap samples have no event and are not used
    y = np.zeros(12, int)
    y[0] = 1
    X = np.arange(12, dtype=float)[:, None]
    r = bootstrap_validation(_fit_predict, X, y, n_resamples=12, random_state=0)
    assert r.failures and all("one outcome class" in v for v in r.failures.values())
    assert (r.table["n"] <= 12 - len(r.failures)).all()
