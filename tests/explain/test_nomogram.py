"""Tests of the nomogram: the points-to-probability path must reproduce predict_proba."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

from sonorad.explain.nomogram import build_nomogram, nomogram_points


@pytest.fixture(scope="module")
def cohort():
    rng = np.random.default_rng(0)
    n = 150
    X = pd.DataFrame({
        "age": rng.normal(50, 10, n),
        "rad_score": rng.normal(0, 1, n),
        "birads": rng.choice(["3", "4a", "4b", "5"], n),
        "vascularity": rng.integers(0, 2, n),
    })
    lp = (-1 + 0.03 * (X.age - 50) + 1.2 * X.rad_score
          + X.birads.map({"3": 0, "4a": 0.5, "4b": 1, "5": 2}) + 0.7 * X.vascularity)
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    return X, y


def _pipeline():
    ct = ColumnTransformer([("num", StandardScaler(), ["age", "rad_score"]),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["birads"]),
                            ("bin", "passthrough", ["vascularity"])])
    return make_pipeline(ct, LogisticRegression(C=5.0))


def test_points_probability_equals_predict_proba(cohort):
    X, y = cohort
    model = _pipeline().fit(X, y)
    nomo = build_nomogram(model, X)
    proba = model.predict_proba(X)[:, 1]
    got = np.array([nomogram_points(nomo, X.iloc[[i]]).probability for i in range(len(X))])
    assert np.max(np.abs(got - proba)) < 1e-10
    # a case outside the training range still maps exactly
    case = {"age": 95.0, "rad_score": 5.0, "birads": "5", "vascularity": 1}
    exact = model.predict_proba(pd.DataFrame([case]))[0, 1]
    assert nomo.nomogram_points(case).probability == pytest.approx(exact, abs=1e-10)


def test_points_scale_conventions(cohort):
    X, y = cohort
    model = _pipeline().fit(X, y)
    nomo = build_nomogram(model, X)
    tab = nomo.to_frame()
    widest = tab.groupby("predictor")["points"].agg(lambda s: s.max() - s.min())
    assert widest.max() == pytest.approx(100)
    assert widest.idxmax() == "rad_score"
    assert tab.points.min() == pytest.approx(0)
    kinds = {a.name: a.kind for a in nomo.axes}
    assert kinds == {"age": "numeric", "rad_score": "numeric", "birads": "categorical",
                     "vascularity": "categorical"}
    # numeric points are linear in the value (z-scoring is affine)
    pts = nomo.points_scale("age", [30, 40, 50])
    assert pts[2] - pts[1] == pytest.approx(pts[1] - pts[0])
    # total points <-> probability are inverse maps
    assert nomo.probability_to_total_points(nomo.total_points_to_probability(80.0)) == pytest.approx(80.0)


def test_plain_logistic_regression_on_arrays():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    y = (X.a - X.b + rng.normal(size=80) > 0).astype(int)
    model = LogisticRegression().fit(X.to_numpy(), y)
    nomo = build_nomogram(model, X)
    p = nomo.nomogram_points(X.iloc[3]).probability
    assert p == pytest.approx(model.predict_proba(X.to_numpy()[[3]])[0, 1], abs=1e-10)


def test_rejects_models_a_nomogram_cannot_draw(cohort):
    X, y = cohort
    num = X[["age", "rad_score"]]
    inter = make_pipeline(StandardScaler(), PolynomialFeatures(2, interaction_only=True),
                          LogisticRegression()).fit(num, y)
    with pytest.raises(ValueError, match="not additive"):
        build_nomogram(inter, num)
    from sklearn.ensemble import RandomForestClassifier

    with pytest.raises(ValueError, match="LogisticRegression"):
        build_nomogram(RandomForestClassifier(n_estimators=5).fit(num, y), num)
    with pytest.raises(ValueError, match="not fitted"):
        build_nomogram(LogisticRegression(), num)
    model = _pipeline().fit(X, y)
    with pytest.raises(ValueError, match="DataFrame"):
        build_nomogram(model, X.to_numpy())
    nomo = build_nomogram(model, X)
    with pytest.raises(ValueError, match="missing predictor"):
        nomo.nomogram_points({"age": 40})


def test_integer_typed_predictor_is_not_truncated(cohort):
    X, y = cohort
    Xi = X.assign(age=X.age.round().astype(int))
    model = _pipeline().fit(Xi, y)
    nomo = build_nomogram(model, Xi)
    case = {"age": 45.5, "rad_score": 0.3, "birads": "4a", "vascularity": 0}
    exact = model.predict_proba(pd.DataFrame([case]))[0, 1]
    assert nomo.nomogram_points(case).probability == pytest.approx(exact, abs=1e-10)
    a, b = nomo.points_scale("age", [45.0, 45.5])
    assert b > a


# --- level-coded variables (ClinicalEncoder) against R's rms::nomogram -------------------------
_DATA = Path(__file__).parent / "data"


def _encoded_model(kind: str, X, y):
    from sonorad.clinical import ClinicalEncoder

    enc = ClinicalEncoder({"birads": kind}, {"birads": [2, 3, 4, 5]}, add_indicator=False)
    ct = ColumnTransformer([("us", enc, ["birads"]), ("age", "passthrough", ["age"])])
    lr = LogisticRegression(penalty=None, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    return make_pipeline(ct, lr).fit(X, y)


@pytest.mark.parametrize("kind,rms_model", [("categorical", "factor"), ("ordinal", "ordinal")])
def test_level_coded_points_match_rms_nomogram(kind, rms_model):
    """Points per BI-RADS level and per age tick equal rms::nomogram's for the same unpenalised
    logistic model (fixture written by data/make_rms_nomogram.R), to 1e-6 points on the 0-100 scale."""
    data = pd.read_csv(_DATA / "nomogram_cohort.csv")
    ref = pd.read_csv(_DATA / "rms_nomogram_points.csv", dtype={"value": str})
    ref = ref[ref.model == rms_model]
    X = data[["age", "birads"]]
    nomo = build_nomogram(_encoded_model(kind, X, data.y), X)
    axis = {a.name: a for a in nomo.axes}
    assert axis["birads"].kind == "categorical"
    assert list(axis["birads"].values) == ["2", "3", "4", "5"]
    birads = ref[ref.predictor == "birads"]
    got = nomo.points_scale("birads", list(birads.value))
    np.testing.assert_allclose(got, birads.points.to_numpy(), rtol=0, atol=1e-6)
    age = ref[ref.predictor == "age"]
    got = nomo.points_scale("age", age.value.astype(float).to_numpy())
    np.testing.assert_allclose(got, age.points.to_numpy(), rtol=0, atol=1e-6)


def test_ordinal_variable_gets_ticks_at_its_levels_with_missing_values():
    """An ordinal BI-RADS coded 0..3 by the encoder is drawn at its levels under their own text, not
    on a numeric grid of raw values (2.03, 2.06, ...) the encoder refuses; missing values are imputed."""
    data = pd.read_csv(_DATA / "nomogram_cohort.csv")
    X = data[["age", "birads"]].astype({"birads": float})
    X.loc[[0, 5], "birads"] = np.nan
    from sonorad.clinical import ClinicalEncoder

    ct = ColumnTransformer([("us", ClinicalEncoder({"birads": "ordinal"}, {"birads": ["2", "3", "4", "5"]}),
                             ["birads"]), ("age", "passthrough", ["age"])])
    model = make_pipeline(ct, LogisticRegression()).fit(X, data.y)
    nomo = build_nomogram(model, X)
    tab = nomo.to_frame()
    assert list(tab.loc[tab.predictor == "birads", "value"]) == ["2", "3", "4", "5"]
    for i in (0, 1, 5):
        p = nomo.nomogram_points(X.iloc[[i]]).probability
        assert p == pytest.approx(model.predict_proba(X.iloc[[i]])[0, 1], abs=1e-10)
    from sonorad.evaluation.plots import plot_nomogram

    fig = plot_nomogram(nomo)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"2", "3", "4", "5"} <= texts and "2.03" not in texts
