"""Per-patient uncertainty: bootstrap refits of the chosen model's final stage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sonorad.bundle import load_bundle, write_bundle
from sonorad.bundle.uncertainty import case_interval, fit_resamples


def _data(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"], index=[f"c{i}" for i in range(n)])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X["a"] - 0.5 * X["b"])))).astype(int).to_numpy()
    return X, y


def _fit(n: int, seed: int = 0):
    X, y = _data(n, seed)
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(X, y), X, y


def _interval(model, X, y, cases, *, seed=0, resamples=20):
    payload, note = fit_resamples(model, X, y, resamples=resamples, seed=seed, budget_s=None)
    assert note is None
    return [case_interval(model, payload["estimators"], cases.iloc[[i]], classifier=payload["classifier"])
            for i in range(len(cases))]


def test_the_interval_holds_the_point_estimate_and_states_its_method():
    model, X, y = _fit(300)
    cases, _ = _data(8, seed=1)
    p = model.predict_proba(cases)[:, 1]
    for pi, interval in zip(p, _interval(model, X, y, cases, resamples=50)):
        assert interval["low"] <= pi <= interval["high"] and interval["low"] < interval["high"]
        assert interval["level"] == 0.95 and interval["resamples"] == 50
        assert "bootstrap" in interval["method"] and "LogisticRegression" in interval["method"]


def test_the_interval_widens_when_the_training_set_is_smaller():
    cases, _ = _data(10, seed=2)
    widths = {}
    for n in (60, 600):
        model, X, y = _fit(n)
        widths[n] = np.mean([i["high"] - i["low"] for i in _interval(model, X, y, cases)])
    assert widths[60] > 1.5 * widths[600]


def test_the_refits_are_determined_by_the_seed():
    model, X, y = _fit(120)
    cases, _ = _data(3, seed=3)
    first, again = _interval(model, X, y, cases, seed=7), _interval(model, X, y, cases, seed=7)
    other = _interval(model, X, y, cases, seed=8)
    assert first == again and first != other


def test_refits_past_the_time_budget_give_a_note_and_no_interval():
    model, X, y = _fit(60)
    payload, note = fit_resamples(model, X, y, resamples=50, seed=0, budget_s=1e-9)
    assert payload is None and note.startswith("not available: one refit") and "LogisticRegression" in note


def test_a_final_stage_that_keeps_training_cases_gets_a_note_not_refits(tmp_path):
    from sonorad.bundle.writer import _uncertainty

    X, y = _data(60)
    knn = Pipeline([("scale", StandardScaler()), ("model", KNeighborsClassifier())]).fit(X, y)
    info = _uncertainty(tmp_path, knn, X, {"labels": pd.Series(y, index=X.index)}, 0)
    assert info["file"] is None and "keeps its training cases" in info["note"]
    assert not list(tmp_path.iterdir())


def test_a_bundle_saves_the_refits_and_a_case_result_reports_the_interval(tmp_path, small_bundle, one_case):
    chosen = small_bundle.chosen
    path = write_bundle(tmp_path / "model", models={chosen: small_bundle.models[chosen]}, chosen=chosen,
                        cutoffs=small_bundle.cutoffs, features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=small_bundle.variables, training_input=small_bundle.training_input,
                        training_rois=None, card={}, study={"seed": 0},
                        uncertainty={"labels": small_bundle.labels.loc[small_bundle.train_ids], "resamples": 20})
    info = json.loads((path / "uncertainty.json").read_text())
    assert info["file"] == "uncertainty.skops" and info["resamples"] == 20 and info["note"] is None
    bundle = load_bundle(path)
    image, mask, values = one_case(small_bundle.external_ids[0])
    result = bundle.predict_case(image, mask, values, gradcam=False, explain=False)
    assert result.uncertainty["low"] <= result.probability <= result.uncertainty["high"]
    assert result.uncertainty_note is None and result.uncertainty["resamples"] == 20
    plain = load_bundle(small_bundle.path).predict_case(image, mask, values, gradcam=False, explain=False)
    assert plain.probability == pytest.approx(result.probability, abs=1e-12)
    assert plain.uncertainty is None and plain.uncertainty_note.startswith("not available")
    # a site recalibration maps each refit's probability as it maps the model's own
    from sonorad.bundle.recalibrate import recalibrate_bundle

    local = small_bundle.table.loc[small_bundle.external_ids]
    recalibrate_bundle(path, local, method="logistic", out=tmp_path / "recal", cache=small_bundle.cache, force=True)
    recal = load_bundle(tmp_path / "recal").predict_case(image, mask, values, gradcam=False, explain=False)
    assert recal.probability != pytest.approx(result.probability, abs=1e-6)
    assert recal.uncertainty["low"] <= recal.probability <= recal.uncertainty["high"]
    assert "recalibration" in recal.uncertainty["method"]


def test_a_final_stage_that_cannot_be_refitted_leaves_a_note_and_the_bundle_stands(tmp_path):
    from sonorad.bundle.writer import _uncertainty

    X, y = _data(40)
    model = _fit(40)[0]
    info = _uncertainty(tmp_path, model, X, {"labels": pd.Series(y[:-1], index=X.index[:-1])}, 0)
    assert info["file"] is None and info["note"].startswith("not available: refitting the final stage failed")
