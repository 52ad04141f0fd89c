"""A bundle over the frozen deep features of two backbones: saved crop settings, each backbone's
weights hash, one DL-score per backbone, DL-score Grad-CAM."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from sonorad.bundle import BundleError, load_bundle, write_bundle

pytestmark = pytest.mark.slow

BACKBONES = ("efficientnet_lite0", "efficientnet_lite1")


@pytest.fixture(scope="module")
def deep_bundle(small_bundle, feature_blocks_class, tmp_path_factory):
    from sonorad.clinical import ClinicalEncoder
    from sonorad.deep.extractor import extract_deep
    from sonorad.features.store import FeatureCache
    from sonorad.models import get_model
    from sonorad.scores import DLScore

    table = small_bundle.table
    cache = FeatureCache(small_bundle.cache)
    tables = []
    for backbone in BACKBONES:
        deep, failures = extract_deep(table, backbone, cache=cache, margin=0.15, progress=False)
        assert failures.empty
        tables.append(deep)
    deep = pd.concat(tables, axis=1)
    var_cols = list(small_bundle.variables)
    X_all = pd.concat([deep, table[var_cols], table[["center"]]], axis=1)
    train, external = small_bundle.train_ids, small_bundle.external_ids
    y = table.loc[train, "label"].to_numpy()
    encoder = ClinicalEncoder({"age": "continuous", "tumor_edge": "binary", "calcification": "binary",
                               "noise_cat1": "categorical"}, {"noise_cat1": ["a", "b", "c"]})
    blocks = [(f"dl{i}", DLScore(name=f"dl_score_{b}", cv=3, alpha=0.5, n_lambdas=10), list(t.columns))
              for i, (b, t) in enumerate(zip(BACKBONES, tables))]
    model = Pipeline([("encode", feature_blocks_class([*blocks, ("clin", encoder, var_cols)])),
                      ("model", get_model("logistic_regression"))]).fit(X_all.loc[train], y)
    path = write_bundle(tmp_path_factory.mktemp("deep") / "model", models={"dl_clin": model}, chosen="dl_clin",
                        cutoffs={"dl_clin": 0.5},
                        features={"radiomics_params": None,
                                  "deep": [{"backbone": b, "margin": 0.15, "mask_background": False, "batch_size": 8}
                                           for b in BACKBONES]},
                        variables=small_bundle.variables, training_input=X_all.loc[train], training_rois=None,
                        card={}, study={"seed": 0})
    return path, model, X_all.loc[external]


def test_saved_deep_settings_and_weights_hash(deep_bundle):
    path, _, _ = deep_bundle
    features = json.loads((path / "features.json").read_text())
    assert [d["backbone"] for d in features["deep"]] == list(BACKBONES)
    for deep in features["deep"]:
        assert deep["margin"] == 0.15 and len(deep["weights_sha256"]) == 64
    assert features["deep"][0]["weights_sha256"] != features["deep"][1]["weights_sha256"]
    kinds = features["column_kinds"]
    assert {kinds[f"{b}_0"] for b in BACKBONES} == {"deep"} and kinds["age"] == "variable"
    assert features["radiomics"] is None and not (path / "radiomics_params.yaml").exists()


def test_predict_recomputes_deep_features_and_reproduces_the_model(deep_bundle, small_bundle, tmp_path):
    path, model, external_input = deep_bundle
    bundle = load_bundle(path)
    cases = small_bundle.table.loc[small_bundle.external_ids].drop(columns=["label"])
    expected = model.predict_proba(external_input)[:, 1]
    # the run's feature cache holds the very vectors the model saw: identical probabilities
    cached = bundle.predict(cases, cache=small_bundle.cache, explain=False)
    np.testing.assert_allclose(cached.probabilities()["dl_clin"].reindex(small_bundle.external_ids), expected,
                               rtol=0, atol=1e-12)
    # without it the features are computed again; the float32 network embeds a crop in a batch of
    # other crops slightly differently (oneDNN picks kernels by batch shape)
    result = bundle.predict(cases, gradcam_dir=tmp_path / "gradcam")
    got = result.probabilities()["dl_clin"].reindex(small_bundle.external_ids)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert len(result.gradcam) == len(cases)  # Grad-CAM of the DL-score network

    from sonorad.imaging import load_roi

    cid = small_bundle.external_ids[0]
    image, mask = load_roi(cases.at[cid, "image"], cases.at[cid, "mask"], case_id=cid)
    case = bundle.predict_case(image, mask, {k: cases.at[cid, k] for k in small_bundle.variables}, case_id=cid)
    assert case.probability == pytest.approx(got[cid], abs=1e-5)  # one crop alone vs a batch: float32 network
    assert case.gradcam is not None


def test_other_backbone_weights_are_refused(deep_bundle, tmp_path):
    path, _, _ = deep_bundle
    folder = tmp_path / "model"
    shutil.copytree(path, folder)
    features = json.loads((folder / "features.json").read_text())
    features["deep"][1]["weights_sha256"] = "0" * 64  # every backbone is checked, not only the first
    (folder / "features.json").write_text(json.dumps(features))
    manifest = json.loads((folder / "manifest.json").read_text())
    import hashlib

    manifest["files"]["features.json"] = hashlib.sha256((folder / "features.json").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    bundle = load_bundle(folder)
    from sonorad.imaging import UltrasoundImage

    roi = np.zeros((64, 64), bool)
    roi[16:48, 16:48] = True
    with pytest.raises(BundleError, match="weights"):
        bundle.predict_case(UltrasoundImage(np.random.default_rng(0).uniform(0, 255, (64, 64))), roi,
                            {"age": 50, "tumor_edge": 0, "calcification": 0, "noise_cat1": "a"})
