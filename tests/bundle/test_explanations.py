"""Explanations of a bundle's predictions: SHAP contributions, the nomogram, Grad-CAM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.bundle import load_bundle


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
