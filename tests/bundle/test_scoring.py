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
    labels = result.nomogram["labels"]
    assert set(labels) == set(result.nomogram["points"])
    assert not any(label == name for name, label in labels.items() if name.startswith("noise_cat"))
    assert result.gradcam is None  # no deep model in this bundle
    json.dumps(result.to_dict())


def test_predict_case_warns_and_imputes_missing_values(bundle, small_bundle, one_case):
    image, mask, values = one_case(small_bundle.external_ids[1])
    values.pop("age")
    values["shoe_size"] = 44
    result = bundle.predict_case(image, mask, values)
    assert any(w.startswith("No value was given for age") and "training value" in w for w in result.warnings)
    assert any("shoe_size" in w for w in result.warnings)


def test_predict_case_with_an_unusable_value_or_mask_raises_a_case_error(bundle, small_bundle, one_case):
    image, mask, values = one_case(small_bundle.external_ids[2])
    with pytest.raises(CaseError, match="noise_cat1"):
        bundle.predict_case(image, mask, {**values, "noise_cat1": "q"}, case_id="x")
    with pytest.raises(CaseError, match="mask is empty"):
        bundle.predict_case(image, np.zeros_like(mask), values, case_id="x")


def test_predict_case_refuses_an_roi_far_larger_than_any_training_lesion_before_extraction(
        bundle, small_bundle, one_case, monkeypatch):
    import sonorad.bundle.scoring as scoring

    image, mask, values = one_case(small_bundle.external_ids[2])
    monkeypatch.setattr(scoring, "inputs_from_case", lambda *a, **k: pytest.fail("extraction started"))
    with pytest.raises(CaseError, match="far more than any lesion of the training patients"):
        bundle.predict_case(image, np.ones_like(mask), values, case_id="x")


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


# -- labels of a predict batch -------------------------------------------------------------------
def test_a_one_class_labelled_batch_is_scored_written_and_its_metrics_say_not_computable(bundle, small_bundle,
                                                                                         tmp_path):
    cases = small_bundle.table.loc[small_bundle.external_ids].copy()
    cases["label"] = 0                                              # every case benign
    result = bundle.predict(cases, cache=small_bundle.cache, explain=False)
    assert set(result.scored_cases) == set(cases.index)
    m = result.metrics.set_index("model")
    assert (m["n"] == len(cases)).all() and (m["positives"] == 0).all()
    assert m["auc"].isna().all() and m["sensitivity"].isna().all() and m["brier"].isna().all()
    assert m["specificity"].notna().all()
    assert m["note"].str.contains("not computable").all() and m["note"].str.contains("one outcome class").all()
    assert any("not computable" in n for n in result.notes)
    written = {p.name for p in result.write(tmp_path)}
    assert {"predictions.csv", "metrics.csv"} <= written
    assert len(pd.read_csv(tmp_path / "predictions.csv")) == len(cases) * len(small_bundle.models)


def test_labels_that_are_neither_the_positive_value_nor_a_negative_are_left_out_of_the_metrics(bundle, small_bundle):
    cases = small_bundle.table.loc[small_bundle.external_ids].copy()
    ids = list(cases.index)
    cases["label"] = cases["label"].astype(object)
    cases.loc[ids[:2], "label"] = 2                                 # a third value: not a negative
    result = bundle.predict(cases, cache=small_bundle.cache, explain=False)
    assert set(result.scored_cases) == set(ids)                     # still scored
    m = result.metrics.set_index("model")
    y = small_bundle.table.loc[ids[2:], "label"].astype(int)
    assert (m["n"] == len(ids) - 2).all() and (m["positives"] == y.sum()).all()
    label_rows = result.warnings[result.warnings["column"] == "label"]
    assert set(label_rows["case_id"]) == set(ids[:2])
    assert label_rows["message"].str.contains("'2'").all() and label_rows["message"].str.contains("'0'").all()
    note = [n for n in result.notes if "label" in n]
    assert note and ids[0] in note[0] and ids[1] in note[0] and "'1'" in note[0]

    yes_no = cases.assign(label=np.where(small_bundle.table.loc[ids, "label"] == 1, "yes", "no"))
    result = bundle.predict(yes_no, cache=small_bundle.cache, explain=False)
    assert set(result.scored_cases) == set(ids)
    assert (result.metrics["n"] == 0).all() and result.metrics["auc"].isna().all()
    assert any("'yes'" in n and "'no'" in n for n in result.notes)


def test_an_infinite_value_is_one_clear_failure_of_its_case(bundle, external, small_bundle):
    cases = external.astype({"age": object}).copy()
    ids = list(cases.index)
    cases.loc[ids[0], "age"] = np.inf
    cases.loc[ids[1], "age"] = "-inf"
    cases.loc[ids[2], "age"] = 1e308                                 # beyond float32: the models compute in it
    result = bundle.predict(cases, cache=small_bundle.cache, explain=False)
    for cid in ids[:3]:
        rows = result.failures[result.failures["case_id"] == cid]
        assert len(rows) == 1 and rows["stage"].iloc[0] == "variables"
        assert "age" in rows["error"].iloc[0] and "not a finite number" in rows["error"].iloc[0]
        assert result.warnings[result.warnings["case_id"] == cid].empty   # not "outside the training range"
    assert not result.failures["stage"].str.startswith("model").any()
    assert set(result.scored_cases) == set(ids[3:])


# -- a predictor missing for a whole batch or center ---------------------------------------------
def test_a_predictor_missing_for_the_whole_batch_is_said_once_with_the_models_that_need_it(bundle, external,
                                                                                           small_bundle):
    cases = external.copy()
    cases["age"] = np.nan
    result = bundle.predict(cases, cache=small_bundle.cache, explain=False)
    age = result.warnings[result.warnings["column"] == "age"]
    assert len(age) == 1 and age["case_id"].iloc[0] == ""            # once, for the batch
    message = age["message"].iloc[0]
    assert "age is missing for every case of the batch" in message and "C3" in message and "C4" in message
    assert "imputes the training value" in message and "invert a model's ranking" in message
    assert f"{small_bundle.chosen} (the chosen model)" in message and "radiomics/knn" not in message
    assert any("age is missing for every case" in n for n in result.notes)
    assert set(result.scored_cases) == set(cases.index)


def test_a_predictor_missing_for_one_whole_center_is_said_once_for_that_center(bundle, external, small_bundle):
    cases = external.copy()
    c3 = cases.index[cases["center"] == "C3"]
    cases.loc[c3, "age"] = np.nan
    other = cases.index[cases["center"] == "C4"][0]
    cases.loc[other, "age"] = np.nan                                 # one case elsewhere: its own warning
    result = bundle.predict(cases, cache=small_bundle.cache, explain=False)
    age = result.warnings[result.warnings["column"] == "age"]
    assert set(age["case_id"]) == {"", other}
    center_row = age[age["case_id"] == ""]["message"].iloc[0]
    assert f"every case of center C3 ({len(c3)} cases)" in center_row
