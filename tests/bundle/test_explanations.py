"""Explanations of a bundle's predictions: SHAP contributions, the nomogram, Grad-CAM."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from sonorad.bundle import load_bundle
from sonorad.bundle.explanations import contribution_rows


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


def test_cnn_state_dict_round_trip_and_gradcam(small_bundle, tmp_path, one_case):
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
    image, mask, values = one_case(small_bundle.external_ids[0])
    case = bundle.predict_case(image, mask, values)
    assert case.gradcam is not None and case.gradcam.dtype == np.uint8 and case.gradcam.shape[2] == 3
    # a float32 network: one case alone and the same case in a batch of four agree to float32 precision
    assert case.probabilities["cnn"] == pytest.approx(expected[0], abs=1e-6)


def test_a_design_model_wrapper_is_explained_in_its_second_stage(small_bundle, tmp_path, one_case):
    """A ScoreStack (two-stage design) as the chosen model: SHAP and the nomogram see variables + score."""
    from sonorad.bundle import write_bundle

    path = write_bundle(tmp_path / "model", models=small_bundle.models, chosen="stack/logistic_regression",
                        cutoffs=small_bundle.cutoffs, features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=small_bundle.variables, training_input=small_bundle.training_input,
                        training_rois=None, card={}, study={"seed": 0})
    bundle = load_bundle(path)
    cid = small_bundle.external_ids[3]
    image, mask, values = one_case(cid)
    result = bundle.predict_case(image, mask, values, case_id=cid)
    expected = small_bundle.models["stack/logistic_regression"].predict_proba(small_bundle.external_input.loc[[cid]])
    assert result.probability == pytest.approx(expected[0, 1], abs=1e-12)
    features = {c["feature"] for c in result.contributions}
    assert "rad_score" in features and "age" in features
    logit = np.log(result.probability / (1 - result.probability))
    assert sum(c["shap"] for c in result.contributions) + result.base_value == pytest.approx(logit, abs=1e-9)
    assert result.nomogram is not None and set(result.nomogram["points"]) == features
    assert result.nomogram["probability"] == pytest.approx(result.probability, abs=1e-9)


def _tiny_bundle(unit="years"):
    """A stand-in bundle: a fitted encoder + logistic regression, a schema and a study label."""
    from types import SimpleNamespace

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from sonorad.clinical import ClinicalEncoder

    X = pd.DataFrame({"age": [40.0, 50, 60, 70, 45, 65], "smoker": ["no", "yes", "no", "yes", "yes", "no"],
                      "site": ["a", "b", "c", "a", "b", "c"]}, index=[f"c{i}" for i in range(6)])
    model = Pipeline([("encode", ClinicalEncoder({"age": "continuous", "smoker": "binary", "site": "categorical"},
                                                 {"smoker": ["no", "yes"], "site": ["a", "b", "c"]})),
                      ("model", LogisticRegression())]).fit(X, [0, 1, 0, 1, 1, 0])
    schema = {"variables": [{"name": "age", "type": "numeric", "description": "age at surgery", "unit": unit},
                            {"name": "smoker", "type": "binary", "description": "current smoker", "unit": None},
                            {"name": "site", "type": "categorical", "description": "tumour site"}]}
    bundle = SimpleNamespace(schema_data=schema, study={"label": {"column": "n_stage", "positive": "N+"}},
                             model=lambda name: model)
    return bundle, model, X


def test_contributions_are_described_in_the_study_words_with_level_labels_and_units():
    from sonorad.bundle.explanations import describe_contributions, outcome, predictor_description
    from sonorad.explain.shap import explain_cases

    bundle, model, X = _tiny_bundle()
    from sonorad.explain.shap import display_table

    result = explain_cases(model, X.iloc[:2], display_table(model, X), max_background=6)
    rows = describe_contributions(bundle, "m", X.iloc[:2], contribution_rows("m", result, display_table(model, X.iloc[:2])))
    by = {(r["case_id"], r["feature"]): r for r in rows}
    assert by[("c0", "smoker")]["description"] == "current smoker" and by[("c0", "smoker")]["display"] == "no"
    assert by[("c1", "smoker")]["display"] == "yes"
    assert by[("c0", "age")]["description"] == "age at surgery" and by[("c0", "age")]["display"] == "40 years"
    assert {r["description"] for r in rows if r["feature"].startswith("site_")} == {"tumour site: b", "tumour site: c"}
    assert not any(re.fullmatch(r"x\d+", r["description"]) for r in rows)
    assert predictor_description(bundle, "rad_score") == "Rad-score"
    assert predictor_description(bundle, "dl_score") == "DL-score"
    assert predictor_description(bundle, "original_shape2D_Elongation") == "original_shape2D_Elongation"
    assert outcome(bundle) == {"name": "n_stage = N+", "positive": "N+"}
    bundle.study["label"]["description"] = "cervical lymph node metastasis"
    assert outcome(bundle)["name"] == "cervical lymph node metastasis"


def test_a_bundle_case_result_labels_every_contribution_and_says_its_outcome(bundle, small_bundle, one_case):
    image, mask, values = one_case(small_bundle.external_ids[0])
    result = bundle.predict_case(image, mask, values, gradcam=False).to_dict()
    labels = {c["feature"]: c["label"] for c in result["contributions"]}
    assert labels and not any(re.fullmatch(r"x\d+", label) for label in labels.values())
    assert labels["rad_score"] == "Rad-score"  # every predictor is listed (fewer than 10)
    assert labels["tumor_edge"] == "ill-defined tumour edge (1/0)"
    assert labels["noise_cat1_b"] == "a noise category: b"
    shown = {c["feature"]: c["display"] for c in result["contributions"]}
    assert shown["tumor_edge"] == str(int(values["tumor_edge"]))
    assert result["outcome"] == {"name": "label = 1", "positive": "1"}


def test_the_contributions_table_of_predict_describes_each_predictor(prediction, tmp_path):
    c = prediction.contributions
    assert not c["description"].str.fullmatch(r"x\d+").any()
    assert set(c.loc[c["feature"] == "rad_score", "description"]) == {"Rad-score"}
    assert set(c.loc[c["feature"] == "age", "description"]) == {"age at surgery (years)"}
    prediction.write(tmp_path)
    written = pd.read_csv(tmp_path / "contributions.csv")
    assert {"description", "display"} <= set(written.columns)
