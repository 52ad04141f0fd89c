"""Bundle.predict / predict_case: same probabilities as the fitted models, per-case warnings and failures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sonorad.bundle import load_bundle
from sonorad.errors import CaseError
from sonorad.imaging import load_roi


@pytest.fixture(scope="module")
def bundle(small_bundle):
    return load_bundle(small_bundle.path)


@pytest.fixture(scope="module")
def external(small_bundle):
    """The external cases as a new hospital would send them: no label column."""
    return small_bundle.table.loc[small_bundle.external_ids].drop(columns=["label"])


@pytest.fixture(scope="module")
def prediction(bundle, external, small_bundle):
    return bundle.predict(external, cache=small_bundle.cache)


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


def test_contributions_add_up_to_the_linear_predictor(prediction, small_bundle):
    c = prediction.contributions
    assert set(c["model"]) == {small_bundle.chosen} and set(c["case_id"]) == set(small_bundle.external_ids)
    assert (c["explainer"] == "linear").all() and (c["output"] == "log-odds").all()
    p = prediction.probabilities()[small_bundle.chosen]
    for cid, group in c.groupby("case_id"):
        assert len(group) < 10  # every predictor is listed, so the values add up exactly
        logit = np.log(p[cid] / (1 - p[cid]))
        assert group["shap"].sum() + group["base_value"].iloc[0] == pytest.approx(logit, abs=1e-9)
        assert group["shap"].abs().is_monotonic_decreasing


def test_metrics_when_labels_are_present(bundle, small_bundle):
    from sonorad.evaluation import roc_auc_ci

    cases = small_bundle.table.loc[small_bundle.external_ids]
    result = bundle.predict(cases, cache=small_bundle.cache, explain=False)
    metrics = result.metrics.set_index("model")
    y = cases["label"].to_numpy()
    for name, model in small_bundle.models.items():
        auc = roc_auc_ci(y, model.predict_proba(small_bundle.external_input)[:, 1])
        assert metrics.at[name, "n"] == len(y) and metrics.at[name, "n_positive"] == y.sum()
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


def test_out_of_distribution_inputs_get_per_case_warnings(bundle, external, small_bundle, tmp_path):
    from PIL import Image

    cases = external.copy()
    ids = list(cases.index)
    cases.loc[ids[0], "age"] = 150
    cases.loc[ids[1], "age"] = np.nan
    # a lesion mask that covers most of the image: an ROI far larger than any training lesion
    mask = np.asarray(Image.open(cases.loc[ids[2], "mask"]))
    big = np.zeros_like(mask)
    big[5:-5, 5:-5] = 255
    Image.fromarray(big).save(tmp_path / "big.png")
    cases.loc[ids[2], "mask"] = str(tmp_path / "big.png")
    result = bundle.predict(cases, explain=False)
    w = result.warnings
    age = w[(w["case_id"] == ids[0]) & (w["column"] == "age")]["message"].iloc[0]
    assert "150 is outside the training range" in age
    assert "no value; imputed with the training value" in w[(w["case_id"] == ids[1])]["message"].iloc[0]
    roi = w[(w["case_id"] == ids[2]) & (w["column"] == "area_px")]["message"]
    assert len(roi) == 1 and "far from the training cohort" in roi.iloc[0]
    assert set(result.scored_cases) == set(ids)


def test_missing_columns_are_reported_before_any_work(bundle, external):
    from sonorad.errors import CohortError

    with pytest.raises(CohortError, match="'age'"):
        bundle.predict(external.drop(columns=["age"]))


def test_predict_reads_a_csv_without_label(bundle, external, small_bundle, tmp_path):
    csv = tmp_path / "new.csv"
    external.head(3).to_csv(csv, index=False)
    result = bundle.predict(csv, cache=small_bundle.cache, models=[small_bundle.chosen])
    assert result.scored_cases == list(external.index[:3]) and set(result.predictions["model"]) == {small_bundle.chosen}


# -- one case in memory -------------------------------------------------------------------------
def _case(small_bundle, cid):
    row = small_bundle.table.loc[cid]
    image, mask = load_roi(row["image"], row["mask"], case_id=cid)
    values = {k: row[k] for k in small_bundle.variables}
    return image, mask, values


def test_predict_case_matches_predict(bundle, prediction, small_bundle):
    cid = small_bundle.external_ids[0]
    image, mask, values = _case(small_bundle, cid)
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


def test_predict_case_warns_and_imputes_missing_values(bundle, small_bundle):
    image, mask, values = _case(small_bundle, small_bundle.external_ids[1])
    values.pop("age")
    values["shoe_size"] = 44
    result = bundle.predict_case(image, mask, values)
    assert any("age: no value; imputed" in w for w in result.warnings)
    assert any("shoe_size" in w for w in result.warnings)


def test_predict_case_with_an_unusable_value_or_mask_raises_a_case_error(bundle, small_bundle):
    image, mask, values = _case(small_bundle, small_bundle.external_ids[2])
    with pytest.raises(CaseError, match="noise_cat1"):
        bundle.predict_case(image, mask, {**values, "noise_cat1": "q"}, case_id="x")
    with pytest.raises(CaseError, match="mask is empty"):
        bundle.predict_case(image, np.zeros_like(mask), values, case_id="x")


# -- a fine-tuned CNN in the bundle -------------------------------------------------------------
def test_cnn_state_dict_round_trip_and_gradcam(small_bundle, tmp_path):
    import torch

    from sonorad.bundle import write_bundle
    from sonorad.deep.backbones import load_backbone
    from sonorad.deep.finetune import CNNClassifier

    torch.manual_seed(0)
    cnn = CNNClassifier(backbone="small_cnn", weights=None, margin=0.2)
    cnn.model_, cnn.classes_, cnn.best_epoch_ = load_backbone("small_cnn", None), np.array([0, 1]), 1
    models = {"lr": small_bundle.models[small_bundle.chosen], "cnn": cnn}
    path = write_bundle(tmp_path / "model", models=models, chosen="lr", cutoffs={"lr": 0.5, "cnn": 0.5},
                        features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=small_bundle.variables, training_input=small_bundle.training_input,
                        training_rois=None, card={}, study={"seed": 0})
    assert (path / "models" / "cnn.pt").is_file() and not (path / "models" / "cnn.skops").exists()
    bundle = load_bundle(path)
    cases = small_bundle.table.loc[small_bundle.external_ids[:4]]
    result = bundle.predict(cases, cache=small_bundle.cache, gradcam_dir=tmp_path / "gradcam")
    expected = cnn.predict_proba(cases)[:, 1]
    got = result.probabilities()["cnn"].reindex(cases.index)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert len(result.gradcam) == 4 and all(pd.Series(result.gradcam["path"]).map(lambda p: p.endswith(".png")))
    image, mask, values = _case(small_bundle, small_bundle.external_ids[0])
    case = bundle.predict_case(image, mask, values)
    assert case.gradcam is not None and case.gradcam.dtype == np.uint8 and case.gradcam.shape[2] == 3
    # a float32 network: one case alone and the same case in a batch of four agree to float32 precision
    assert case.probabilities["cnn"] == pytest.approx(expected[0], abs=1e-6)


def test_a_design_model_wrapper_is_explained_in_its_second_stage(small_bundle, tmp_path):
    """A ScoreStack (two-stage design) as the chosen model: SHAP and the nomogram see variables + score."""
    from sonorad.bundle import write_bundle

    path = write_bundle(tmp_path / "model", models=small_bundle.models, chosen="stack/logistic_regression",
                        cutoffs=small_bundle.cutoffs, features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=small_bundle.variables, training_input=small_bundle.training_input,
                        training_rois=None, card={}, study={"seed": 0})
    bundle = load_bundle(path)
    cid = small_bundle.external_ids[3]
    image, mask, values = _case(small_bundle, cid)
    result = bundle.predict_case(image, mask, values, case_id=cid)
    expected = small_bundle.models["stack/logistic_regression"].predict_proba(small_bundle.external_input.loc[[cid]])
    assert result.probability == pytest.approx(expected[0, 1], abs=1e-12)
    features = {c["feature"] for c in result.contributions}
    assert "rad_score" in features and "age" in features
    logit = np.log(result.probability / (1 - result.probability))
    assert sum(c["shap"] for c in result.contributions) + result.base_value == pytest.approx(logit, abs=1e-9)
    assert result.nomogram is not None and set(result.nomogram["points"]) == features
    assert result.nomogram["probability"] == pytest.approx(result.probability, abs=1e-9)


def test_unseen_policy_other_codes_a_new_category_and_warns(small_bundle, external, tmp_path):
    import dataclasses

    from sonorad.bundle import write_bundle
    from sonorad.study import VariableSpec

    if "unseen" not in {f.name for f in dataclasses.fields(VariableSpec)}:
        pytest.skip("this sonorad has no variables.X.unseen policy")
    variables = dict(small_bundle.variables)
    variables["noise_cat1"] = dataclasses.replace(variables["noise_cat1"], unseen="other")
    path = write_bundle(tmp_path / "model", models={"lr": small_bundle.models[small_bundle.chosen]}, chosen="lr",
                        cutoffs={}, features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=variables, training_input=small_bundle.training_input, training_rois=None,
                        card={}, study={"seed": 0})
    cases = external.head(2).astype({"noise_cat1": object}).copy()
    cases.iloc[0, cases.columns.get_loc("noise_cat1")] = "z"
    result = load_bundle(path).predict(cases, cache=small_bundle.cache, explain=False)
    assert result.failures.empty and set(result.scored_cases) == set(cases.index)
    w = result.warnings[result.warnings["column"] == "noise_cat1"]
    assert list(w["case_id"]) == [cases.index[0]] and "never seen in training" in w["message"].iloc[0]


def test_a_case_a_model_refuses_fails_alone_and_the_rest_are_scored_together():
    from sklearn.linear_model import LogisticRegression

    from sonorad.bundle.predict import _run_model

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(20, 2)), columns=["a", "b"], index=[f"c{i}" for i in range(20)])
    model = LogisticRegression().fit(X, (X["a"] > 0).astype(int))
    X.loc["c3", "a"] = np.nan
    failures = []
    p = _run_model("lr", model, X, failures)
    assert [f["case_id"] for f in failures] == ["c3"] and "NaN" in failures[0]["error"]
    np.testing.assert_allclose(p, model.predict_proba(X.drop(index="c3"))[:, 1], rtol=0, atol=0)
