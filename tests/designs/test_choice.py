"""sonorad.designs.choice: the one-standard-error rule that breaks ties of tuning-CV AUCs by simplicity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.designs.choice import SIMPLICITY_ORDER, TIE_RULE, choose_model


def test_the_simplicity_order_names_every_zoo_model_once():
    from sonorad.models import available_models

    assert len(SIMPLICITY_ORDER) == len(set(SIMPLICITY_ORDER))
    assert set(SIMPLICITY_ORDER) == set(available_models())
    assert SIMPLICITY_ORDER[0] == "logistic_regression" and " < ".join(SIMPLICITY_ORDER) in TIE_RULE


def test_the_simplest_model_within_one_standard_error_of_the_best_is_chosen():
    # the demo's situation: mlp best by 0.004, logistic regression and svm close behind
    auc = pd.Series({"logistic_regression": 0.9440, "svm": 0.9404, "mlp": 0.9483, "decision_tree": 0.8849})
    mlp_folds = np.array([0.90, 0.95, 0.97, 0.96, 0.9615])  # mean 0.9483
    folds = pd.DataFrame({"mlp": mlp_folds, "logistic_regression": 0.944, "svm": 0.9404, "decision_tree": 0.88})
    se = mlp_folds.std(ddof=1) / np.sqrt(5)
    choice = choose_model(auc, folds)
    assert choice.best == "mlp" and choice.se == pytest.approx(se)
    assert choice.tied == ("logistic_regression", "svm", "mlp")  # simplest first; the tree is out of reach
    assert choice.chosen == "logistic_regression" and choice.is_tie
    text = choice.sentence()
    assert "3 models" in text and "logistic_regression" in text and f"{se:.3f}" in text
    frame = choice.to_frame()
    assert frame.loc[frame["chosen"], "model"].tolist() == ["logistic_regression"]
    assert frame["within_1se"].sum() == 3


def test_a_clear_winner_is_chosen_and_family_prefixed_names_are_ranked_by_their_zoo_name():
    auc = pd.Series({"combined/logistic_regression": 0.80, "combined/xgboost": 0.90})
    folds = pd.DataFrame({"combined/xgboost": [0.89, 0.90, 0.91], "combined/logistic_regression": [0.8] * 3})
    choice = choose_model(auc, folds)
    assert choice.chosen == "combined/xgboost" and not choice.is_tie
    # with noisy folds the two are tied and the logistic regression, simpler, wins
    noisy = folds.assign(**{"combined/xgboost": [0.70, 0.90, 1.10]})
    assert choose_model(auc, noisy).chosen == "combined/logistic_regression"


def test_without_fold_aucs_the_best_model_is_chosen_and_the_sentence_says_why():
    choice = choose_model(pd.Series({"knn": 0.7, "mlp": 0.8}))
    assert choice.chosen == "mlp" and np.isnan(choice.se)
    assert "not available" in choice.sentence()
    with pytest.raises(ValueError, match="no model"):
        choose_model(pd.Series(dtype=float))


def test_the_fold_aucs_of_the_tuning_search_average_to_the_tuning_cv_auc():
    from sonorad.designs._common import _fit_zoo

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = (X["a"] + rng.normal(size=60) > 0).astype(int).to_numpy()
    pipes, auc, _, folds = _fit_zoo([], X, y, None, {}, models=["logistic_regression", "naive_bayes"], cv=3,
                                    n_iter=None, class_weight=None, resample=None, random_state=0, memory=None)
    assert folds.shape == (3, 2) and list(folds.columns) == ["logistic_regression", "naive_bayes"]
    np.testing.assert_allclose(folds.mean().to_numpy(), auc.to_numpy(), atol=1e-12)
