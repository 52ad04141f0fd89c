"""Scoring with a bundle: same probabilities as the fitted models, per-case failures, metrics of a
labelled batch from the run's own metrics function."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sonorad.errors import CaseError


def test_predict_without_labels_reproduces_every_model(prediction, small_bundle):
    probs = prediction.probabilities()
    assert set(probs.columns) == set(small_bundle.models)
    for name, model in small_bundle.models.items():
        expected = model.predict_proba(small_bundle.external_input)[:, 1]
        np.testing.assert_allclose(probs[name].reindex(small_bundle.external_ids), expected, rtol=0, atol=1e-12)
    assert prediction.metrics is None and prediction.failures.empty


def test_risk_groups_follow_the_saved_cutoffs(prediction, small_bundle):
    p = prediction.predictions
    expected = np.where(p["probability"] >= p["model"].map(small_bundle.cutoffs), "high", "low")
    assert (p["risk_group"] == expected).all()
    assert list(p.columns) == ["case_id", "model", "probability", "risk_group", "cutoff"]


def test_metrics_when_labels_are_present(bundle, small_bundle):
    from sonorad.evaluation import roc_auc_ci

    cases = small_bundle.table.loc[small_bundle.external_ids]
    result = bundle.predict(cases, cache=small_bundle.cache, explain=False)
    metrics = result.metrics.set_index("model")
    y = cases["label"].to_numpy()
    for name, model in small_bundle.models.items():
        auc = roc_auc_ci(y, model.predict_proba(small_bundle.external_input)[:, 1])
        assert metrics.at[name, "n"] == len(y) and metrics.at[name, "positives"] == y.sum()
        assert metrics.at[name, "auc"] == pytest.approx(auc.auc)
        assert metrics.at[name, "auc_low"] == pytest.approx(auc.low)
    assert result.contributions.empty


def test_one_bad_case_does_not_stop_the_others(bundle, external, small_bundle, tmp_path):
    cases = external.astype({"age": object, "noise_cat1": object}).copy()
    ids = list(cases.index)
    cases.loc[ids[0], "image"] = str(tmp_path / "missing.png")
    cases.loc[ids[1], "age"] = "forty"
    cases.loc[ids[2], "noise_cat1"] = "z"
    result = bundle.predict(cases, cache=small_bundle.cache)
    failures = result.failures.set_index("case_id")
    assert failures.at[ids[0], "stage"] == "image" and "missing.png" in failures.at[ids[0], "error"]
    assert failures.at[ids[1], "stage"] == "variables" and "not a number" in failures.at[ids[1], "error"]
    assert "noise_cat1" in failures.at[ids[2], "error"] and "'z'" in failures.at[ids[2], "error"]
    assert all(failures["fix"].str.len() > 10)
    assert set(result.scored_cases) == set(ids[3:])


def test_predict_case_matches_predict(bundle, prediction, small_bundle, one_case):
    cid = small_bundle.external_ids[0]
    image, mask, values = one_case(cid)
    result = bundle.predict_case(image, mask, values, case_id=cid)
    expected = prediction.probabilities().loc[cid]
    assert result.probability == pytest.approx(expected[small_bundle.chosen], abs=1e-12)
    for name in small_bundle.models:
        assert result.probabilities[name] == pytest.approx(expected[name], abs=1e-12)
    assert result.risk_group == ("high" if result.probability >= result.cutoff else "low")
    logit = np.log(result.probability / (1 - result.probability))
    assert sum(c["shap"] for c in result.contributions) + result.base_value == pytest.approx(logit, abs=1e-9)
    assert result.nomogram["probability"] == pytest.approx(result.probability, abs=1e-9)
    assert result.gradcam is None  # no deep model in this bundle
    json.dumps(result.to_dict())


def test_predict_case_warns_and_imputes_missing_values(bundle, small_bundle, one_case):
    image, mask, values = one_case(small_bundle.external_ids[1])
    values.pop("age")
    values["shoe_size"] = 44
    result = bundle.predict_case(image, mask, values)
    assert any("age: no value; imputed" in w for w in result.warnings)
    assert any("shoe_size" in w for w in result.warnings)


def test_predict_case_with_an_unusable_value_or_mask_raises_a_case_error(bundle, small_bundle, one_case):
    image, mask, values = one_case(small_bundle.external_ids[2])
    with pytest.raises(CaseError, match="noise_cat1"):
        bundle.predict_case(image, mask, {**values, "noise_cat1": "q"}, case_id="x")
    with pytest.raises(CaseError, match="mask is empty"):
        bundle.predict_case(image, np.zeros_like(mask), values, case_id="x")


def test_a_case_a_model_refuses_fails_alone_and_the_rest_are_scored_together():
    from sklearn.linear_model import LogisticRegression

    from sonorad.bundle.scoring import run_model

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(20, 2)), columns=["a", "b"], index=[f"c{i}" for i in range(20)])
    model = LogisticRegression().fit(X, (X["a"] > 0).astype(int))
    X.loc["c3", "a"] = np.nan
    failures = []
    p = run_model("lr", model, X, failures)
    assert [f["case_id"] for f in failures] == ["c3"] and "NaN" in failures[0]["error"]
    np.testing.assert_allclose(p, model.predict_proba(X.drop(index="c3"))[:, 1], rtol=0, atol=0)


# -- metrics of a labelled batch ----------------------------------------------------------------
def _labelled_batch():
    rng = np.random.default_rng(3)
    ids = [f"c{i}" for i in range(40)]
    y = pd.Series((rng.random(40) < 0.4).astype(int), index=ids)
    p = pd.DataFrame({"a": np.clip(0.35 * y + 0.65 * rng.random(40), 0, 1), "b": rng.random(40)}, index=ids)
    return y, p


def test_batch_metrics_and_the_run_metrics_are_one_function_with_one_answer(monkeypatch):
    """predict's metrics.csv and the run's metrics table: same function, same columns, same numbers."""
    from types import SimpleNamespace

    import sonorad.evaluation.metrics as metrics_module
    from sonorad.bundle.scoring import labelled_metrics
    from sonorad.evaluation.metrics import PERFORMANCE_COLUMNS
    from sonorad.pipeline.statistics import metrics_table

    y, p = _labelled_batch()
    cut = {"a": 0.42, "b": 0.5}
    calls = []
    original = metrics_module.performance_metrics

    def spy(*args, **kwargs):
        calls.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(metrics_module, "performance_metrics", spy)
    run = metrics_table({"external": p}, y, pd.DataFrame({"_cut": cut, "source": "training_cv"}), seed=7)
    n_run = len(calls)
    predictions = p.rename_axis("case_id").reset_index().melt(id_vars="case_id", var_name="model",
                                                              value_name="probability")
    batch = labelled_metrics(SimpleNamespace(cutoffs=cut, study={"seed": 7}), predictions, y)
    assert n_run == 2 and calls[n_run:] == calls[:n_run] == [0.42, 0.5]

    assert "positives" in batch.columns and "n_positive" not in batch.columns
    assert set(PERFORMANCE_COLUMNS) <= set(run.columns) and set(PERFORMANCE_COLUMNS) <= set(batch.columns)
    pd.testing.assert_frame_equal(run.set_index("model")[PERFORMANCE_COLUMNS],
                                  batch.set_index("model")[PERFORMANCE_COLUMNS], check_exact=True)


def test_a_one_class_batch_gives_nan_not_an_error():
    from types import SimpleNamespace

    from sonorad.bundle.scoring import labelled_metrics

    y, p = _labelled_batch()
    y = pd.Series(1.0, index=y.index)
    y.iloc[0] = np.nan  # unlabelled: left out
    predictions = p.rename_axis("case_id").reset_index().melt(id_vars="case_id", var_name="model",
                                                              value_name="probability")
    m = labelled_metrics(SimpleNamespace(cutoffs={"a": 0.4}, study={}), predictions, y).set_index("model")
    assert m.at["a", "n"] == 39 and m.at["a", "positives"] == 39
    assert np.isnan(m.at["a", "auc"]) and np.isnan(m.at["a", "specificity"]) and np.isnan(m.at["a", "brier"])
    assert 0 < m.at["a", "sensitivity"] <= 1
    assert np.isnan(m.at["b", "threshold"]) and np.isnan(m.at["b", "sensitivity"])  # no saved cut-off
