"""Model zoo: registry, construction, imbalance options, grouped tuning, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from sonorad.errors import ConfigError
from sonorad.models import (
    MODEL_ZOO,
    ImbalanceWrapper,
    available_models,
    get_model,
    search_space,
    tune_model,
)


def data(n=80, seed=0, positive_rate=0.5):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positive_rate).astype(int)
    X = rng.normal(size=(n, 4))
    X[:, 0] += 1.5 * y
    return X, y


def test_registry_has_lr_plus_eight_with_search_spaces():
    names = available_models()
    assert names[0] == "logistic_regression" and len(names) >= 9
    assert {"svm", "knn", "random_forest", "extra_trees", "xgboost", "lightgbm", "mlp", "adaboost",
            "gradient_boosting", "naive_bayes"} <= set(names)
    for name in names:
        assert MODEL_ZOO[name].search_space, name
        model = get_model(name)
        model.set_params(**{k: v[0] for k, v in search_space(name, model).items()})


@pytest.mark.parametrize("name", available_models())
def test_every_model_fits_and_is_deterministic(name):
    X, y = data()
    a = get_model(name, random_state=3).fit(X, y).predict_proba(X)[:, 1]
    b = get_model(name, random_state=3).fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_array_equal(a, b)
    assert a.shape == (80,) and np.all((a >= 0) & (a <= 1))


def test_class_weight_native_or_wrapped():
    assert get_model("logistic_regression", class_weight="balanced")[-1].class_weight == "balanced"
    assert get_model("svm", class_weight="balanced")[-1].estimator.class_weight == "balanced"
    knn = get_model("knn", class_weight="balanced")[-1]
    assert isinstance(knn, ImbalanceWrapper) and knn.strategy == "oversample"
    nb = get_model("naive_bayes", class_weight="balanced")[-1]
    assert isinstance(nb, ImbalanceWrapper) and nb.strategy == "weight"
    X, y = data(n=100, positive_rate=0.2)
    plain = get_model("naive_bayes").fit(X, y)[-1]
    weighted = get_model("naive_bayes", class_weight="balanced").fit(X, y)[-1].estimator_
    assert weighted.class_prior_[1] == pytest.approx(0.5)  # balanced weights equalise the priors
    assert plain.class_prior_[1] == pytest.approx(y.mean())
    search = search_space("knn", get_model("knn", class_weight="balanced"))
    assert all(k.startswith("clf__estimator__") for k in search)


def test_resampling_balances_training_rows_only():
    X, y = data(n=100, positive_rate=0.2)
    n_pos, n_neg = y.sum(), (1 - y).sum()
    over = ImbalanceWrapper(clone(get_model("naive_bayes")[-1]), strategy="oversample").fit(X, y)
    assert over.estimator_.class_count_.tolist() == [n_neg, n_neg]
    under = ImbalanceWrapper(clone(get_model("naive_bayes")[-1]), strategy="undersample").fit(X, y)
    assert under.estimator_.class_count_.tolist() == [n_pos, n_pos]
    assert get_model("random_forest", resample="oversample").fit(X, y).predict_proba(X).shape == (100, 2)


def test_tune_model_grouped_cv_and_refit_on_all():
    X, y = data(n=90)
    groups = np.arange(90) // 3
    search = tune_model("logistic_regression", X, y, groups, cv=5, random_state=0, return_search=True)
    for split in search.cv:
        train, test = split
        assert not set(groups[train]) & set(groups[test])
    assert search.best_score_ > 0.7
    model = tune_model("logistic_regression", X, y, groups, cv=5, random_state=0)
    assert model[-1].n_features_in_ == 4 and model[-1].C == search.best_params_["clf__C"]
    again = tune_model("logistic_regression", X, y, groups, cv=5, random_state=0)
    np.testing.assert_array_equal(model.predict_proba(X), again.predict_proba(X))
    small = tune_model("svm", X, y, groups, n_iter=2, return_search=True)
    assert len(small.cv_results_["params"]) == 2


def test_unknown_names_and_options_are_config_errors():
    with pytest.raises(ConfigError, match="Unknown model 'catboost'.*logistic_regression"):
        get_model("catboost")
    with pytest.raises(ConfigError, match="class_weight"):
        get_model("svm", class_weight="auto")


def test_svm_inner_calibration_adapts_to_a_small_training_set():
    # 6 positives: each tuning fold trains on 4-5 of them, where CalibratedClassifierCV(cv=5) failed.
    rng = np.random.default_rng(0)
    y = np.array([1] * 6 + [0] * 24)
    X = rng.normal(size=(30, 3)) + y[:, None]
    search = tune_model("svm", X, y, cv=5, return_search=True)
    assert np.isfinite(search.best_score_)
    fitted = search.best_estimator_[-1]
    assert fitted.n_folds_ == 5
    folds = [get_model("svm")[-1].fit(X[:k], y[:k]).n_folds_ for k in (28, 30)]
    assert folds == [5, 5]
    assert get_model("svm")[-1].fit(X[3:], y[3:]).n_folds_ == 3  # 3 positives left: 3 inner folds


def test_svm_with_one_case_of_a_class_warns_and_still_ranks():
    rng = np.random.default_rng(1)
    y = np.array([1] + [0] * 19)
    X = rng.normal(size=(20, 2)) + 3 * y[:, None]
    with pytest.warns(UserWarning, match="single case of a class.*optimistic"):
        model = get_model("svm").fit(X, y)
    assert model[-1].n_folds_ == 0
    p = model.predict_proba(X)[:, 1]
    assert p[0] == p.max()


def test_cv_folds_note_says_when_folds_are_lowered():
    from sonorad.models import cv_folds_note

    n, note = cv_folds_note(50, [0] * 40 + [1] * 11)
    assert n == 11 and "evaluation.cv_folds = 50 was lowered to 11" in note
    assert cv_folds_note(5, [0, 1] * 10) == (5, None)
