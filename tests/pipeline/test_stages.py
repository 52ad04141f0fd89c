"""Stages of a run: which feature columns reach the models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sonorad.designs.base import backbone_of
from sonorad.pipeline import stages
from sonorad.runner import run_config
from sonorad.study import StudyConfig


def _features(ids):
    rng = np.random.default_rng(0)
    deep = {b: pd.DataFrame(rng.normal(size=(len(ids), 3)), index=ids, columns=[f"{b}_{i}" for i in range(3)])
            for b in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")}
    radiomics = pd.DataFrame(rng.normal(size=(len(ids), 2)), index=ids,
                             columns=["original_shape2D_Elongation", "original_firstorder_Mean"])
    return stages.Features(radiomics=radiomics, deep=deep, failures=pd.DataFrame(columns=["case_id"]))


def test_the_dl_backbones_and_only_they_reach_the_models_in_their_order():
    ids = pd.Index(["a", "b", "c", "d"], name="case_id")
    features = _features(ids)
    study = StudyConfig.from_dict({
        "name": "s", "label": {"positive": 1},
        "variables": {"age": {"type": "numeric", "role": "clinical"}},
        "features": {"deep": ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"],
                     "dl_backbone": ["efficientnet_lite2", "efficientnet_lite0"]}})
    config = run_config(study)
    columns = stages.feature_columns(features, study, config)
    assert columns.backbones == ("efficientnet_lite2", "efficientnet_lite0")
    assert columns.deep == tuple(f"efficientnet_lite2_{i}" for i in range(3)) + tuple(
        f"efficientnet_lite0_{i}" for i in range(3))
    assert tuple(c for c in columns.deep if backbone_of(c) == "efficientnet_lite0") == tuple(
        f"efficientnet_lite0_{i}" for i in range(3))
    table = pd.DataFrame({"age": [50, 60, 70, 80], "center": ["C1", "C1", "C2", "C2"]}, index=ids)
    X = stages.model_inputs(table, features, columns, ids, config)
    assert not any(c.startswith("efficientnet_lite1") for c in X.columns)
    assert [c for c in X.columns if c.startswith("efficientnet")] == list(columns.deep)
    np.testing.assert_array_equal(X["efficientnet_lite2_1"], features.deep["efficientnet_lite2"]["efficientnet_lite2_1"])
    assert list(X.columns[-2:]) == ["age", "center"]
