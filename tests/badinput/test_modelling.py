"""The modelling path on small or unbalanced training sets (items 2 and 8)."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.models import cv_folds_note, get_model, tune_model


def _small_training_set(n_pos=6, n=30, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array([1] * n_pos + [0] * (n - n_pos))
    return rng.normal(size=(n, 4)) + 0.8 * y[:, None], y, np.arange(n)


def test_svm_tunes_where_an_inner_fold_has_fewer_than_5_cases_of_a_class():
    X, y, groups = _small_training_set()
    search = tune_model("svm", X, y, groups, cv=5, return_search=True, class_weight="balanced")
    assert 0.5 < search.best_score_ <= 1.0
    assert search.best_estimator_.predict_proba(X).shape == (30, 2)


def test_svm_with_a_single_case_of_a_class_says_why_its_probabilities_are_optimistic():
    X, y, _ = _small_training_set(n_pos=1, n=12)
    with pytest.warns(UserWarning, match="too few to cross-fit Platt scaling.*add cases of the rare class"):
        get_model("svm").fit(X, y)


def test_lowered_cv_folds_are_said():
    n, note = cv_folds_note(50, np.r_[np.zeros(49), np.ones(11)])
    assert n == 11 and note.startswith("evaluation.cv_folds = 50 was lowered to 11 folds")
    assert "11 cases" in note


@pytest.mark.parametrize("n_pos", [6, 1])
def test_svm_survives_the_bundle_skops_check(n_pos, tmp_path):
    import warnings

    from sonorad.bundle._trust import dump_skops, load_skops

    X, y, _ = _small_training_set(n_pos=n_pos, n=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = get_model("svm").fit(X, y)
    data = dump_skops(model, tmp_path / "svm.skops", "svm")
    again = load_skops(data, "svm.skops")
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X))
