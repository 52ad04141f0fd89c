"""sonorad.evaluation.nested: the likelihood-ratio test of nested logistic regression models."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sonorad.evaluation.nested import likelihood_ratio_test


def test_likelihood_ratio_matches_the_closed_form_of_a_binary_predictor():
    # one binary predictor: the ML fit reproduces the two groups' event rates, so both log-likelihoods
    # have a closed form (x = 0: 6 events of 30; x = 1: 12 of 20; intercept-only: 18 of 50)
    x = np.r_[np.zeros(30), np.ones(20)]
    y = np.r_[np.ones(6), np.zeros(24), np.ones(12), np.zeros(8)].astype(int)
    full = pd.DataFrame({"x": x})
    reduced = full[[]]
    ll_reduced = 18 * math.log(0.36) + 32 * math.log(0.64)
    ll_full = 6 * math.log(0.2) + 24 * math.log(0.8) + 12 * math.log(0.6) + 8 * math.log(0.4)
    lr = 2 * (ll_full - ll_reduced)
    result = likelihood_ratio_test(y, reduced, full)
    assert result.loglik_reduced == pytest.approx(ll_reduced, abs=1e-8)
    assert result.loglik_full == pytest.approx(ll_full, abs=1e-8)
    assert result.statistic == pytest.approx(lr, abs=1e-8) and result.df == 1
    assert result.statistic == pytest.approx(8.3972, abs=1e-4)  # 2 * (-28.4723 + 32.6709)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(lr / 2)), abs=1e-12)  # chi2(1) upper tail
    assert result.added == ("x",)


def test_likelihood_ratio_matches_statsmodels_llr_and_its_log_likelihoods():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(150, 3)), columns=["age", "birads", "rad_score"])
    y = (0.5 * X["age"] + X["rad_score"] + rng.normal(size=150) > 0).astype(int).to_numpy()
    fit_full = sm.Logit(y, sm.add_constant(X.to_numpy())).fit(disp=0)
    # against the intercept-only model: statsmodels' own likelihood-ratio statistic
    null = likelihood_ratio_test(y, X[[]], X)
    assert null.statistic == pytest.approx(fit_full.llr, rel=1e-8) and null.df == fit_full.df_model == 3
    assert null.p_value == pytest.approx(fit_full.llr_pvalue, rel=1e-6, abs=1e-300)
    # a nested reduced model: twice the difference of statsmodels' maximised log-likelihoods
    fit_reduced = sm.Logit(y, sm.add_constant(X[["age", "birads"]].to_numpy())).fit(disp=0)
    result = likelihood_ratio_test(y, X[["age", "birads"]], X)
    assert result.statistic == pytest.approx(2 * (fit_full.llf - fit_reduced.llf), rel=1e-8) and result.df == 1
    assert result.added == ("rad_score",) and "LR chi-squared" in str(result)


def test_models_that_are_not_nested_are_refused_naming_the_predictor():
    X = pd.DataFrame({"a": [0, 1, 0, 1, 1, 0], "b": [1, 2, 3, 4, 5, 6]})
    with pytest.raises(ValueError, match=r"not nested.*\['a'\]"):
        likelihood_ratio_test([0, 1, 0, 1, 1, 0], X[["a"]], X[["b"]])
    with pytest.raises(ValueError, match="adds no predictor"):
        likelihood_ratio_test([0, 1, 0, 1, 1, 0], X, X)
