"""Rad-score / DL-score: the formula reproduces the transform; planted features recovered."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from sonorad.scores import DLScore, RadScore


def cohort(n=160, p=80, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    X = rng.normal(size=(n, p))
    X[:, 0] += 1.2 * y
    X[:, 1] -= 1.0 * y
    # PyRadiomics-like positive features on very different scales
    X = np.exp(0.5 * X) * np.logspace(-2, 3, p)
    names = [f"wavelet-LHH_glcm_SumEntropy{i}" if i == 0 else f"original_firstorder_F{i}" for i in range(p)]
    return pd.DataFrame(X, columns=names, index=[f"case{i}" for i in range(n)]), y


@pytest.fixture(scope="module")
def fitted():
    X, y = cohort()
    return RadScore(rule="1se", n_lambdas=20, cv=5, random_state=0).fit(X, y), X, y


def test_recovers_planted_features(fitted):
    score, X, _ = fitted
    assert {"wavelet-LHH_glcm_SumEntropy0", "original_firstorder_F1"} <= set(score.features_)
    assert len(score.features_) <= 8  # a few of the 78 noise columns may pass by chance


def test_raw_formula_applied_by_hand_reproduces_transform(fitted):
    score, X, _ = fitted
    table = score.coefficients()
    b0 = table["coef_raw"].iloc[0]
    by_hand = b0 + X[table["feature"].iloc[1:]].to_numpy() @ table["coef_raw"].iloc[1:].to_numpy()
    out = score.transform(X)
    assert list(out.columns) == ["rad_score"] and out.index.equals(X.index)
    np.testing.assert_allclose(by_hand, out["rad_score"], rtol=0, atol=1e-10)


def test_printed_formulas_reproduce_transform(fitted):
    score, X, _ = fitted
    text = score.formula(scale="raw", digits=17)
    assert text.startswith("Rad-score = ")
    terms = re.findall(r"([+-]) ([0-9.e+-]+) × (\S+)", text)
    b0 = float(re.match(r"Rad-score = (\S+)", text).group(1))
    by_hand = b0 + sum((1 if s == "+" else -1) * float(b) * X[f] for s, b, f in terms)
    np.testing.assert_allclose(by_hand, score.transform(X)["rad_score"], rtol=0, atol=1e-10)
    std = score.formula(scale="standardized", digits=17)
    means = dict(re.findall(r"  (\S+): mean = (\S+),", std))
    sds = dict(re.findall(r"  (\S+): mean = \S+, sd = (\S+)", std))
    b0z = float(re.match(r"Rad-score = (\S+)", std).group(1))
    terms = re.findall(r"([+-]) ([0-9.e+-]+) × z\((\S+)\)", std)
    by_hand = b0z + sum((1 if s == "+" else -1) * float(b) * (X[f] - float(means[f])) / float(sds[f])
                        for s, b, f in terms)
    np.testing.assert_allclose(by_hand, score.transform(X)["rad_score"], rtol=0, atol=1e-10)


def test_probability_is_logistic_of_score_and_separates(fitted):
    from sklearn.metrics import roc_auc_score

    score, X, y = fitted
    s = score.decision_function(X)
    np.testing.assert_allclose(score.predict_proba(X)[:, 1], 1 / (1 + np.exp(-s)))
    assert roc_auc_score(y, s) > 0.8


def test_same_seed_same_score_and_numpy_input():
    X, y = cohort(n=120, p=30, seed=2)
    a = RadScore(n_lambdas=10, cv=5, random_state=3).fit(X, y)
    b = RadScore(n_lambdas=10, cv=5, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    c = RadScore(n_lambdas=10, cv=5, random_state=3).fit(X.to_numpy(), y)
    np.testing.assert_allclose(c.transform(X.to_numpy())[:, 0], a.transform(X)["rad_score"])


def test_dl_score_names_and_linear_method():
    X, y = cohort(n=120, p=30, seed=4)
    X.columns = [f"resnet50_{i}" for i in range(X.shape[1])]
    dl = DLScore(method="linear", n_lambdas=10, cv=5).fit(X, y)
    assert list(dl.get_feature_names_out()) == ["dl_score"]
    assert dl.formula().startswith("DL-score = ")
    p = dl.predict_proba(X)[:, 1]
    assert p.min() >= 0 and p.max() <= 1


def test_icc_filter_runs_first_and_formula_still_exact():
    X, y = cohort(n=120, p=30, seed=5)
    icc = pd.Series(0.9, index=X.columns)
    icc["wavelet-LHH_glcm_SumEntropy0"] = 0.3  # planted but not reproducible: must be dropped
    score = RadScore(icc=icc, n_lambdas=10, cv=5).fit(X, y)
    assert "wavelet-LHH_glcm_SumEntropy0" not in score.features_
    assert "original_firstorder_F1" in score.features_
    table = score.coefficients()
    raw = table["coef_raw"].to_numpy()
    by_hand = raw[0] + X[table["feature"].iloc[1:]].to_numpy() @ raw[1:]
    np.testing.assert_allclose(by_hand, score.decision_function(X), rtol=0, atol=1e-10)
