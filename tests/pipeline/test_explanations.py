"""The run's explanations stage: it calls sonorad.explain and says why an explanation is missing."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sonorad.pipeline.explanations import Explanations, dl_score_network, explain, gradcam_cases


def test_reason_gives_the_cause_without_the_notes_prefix():
    ex = Explanations(notes=("no Grad-CAM: the study has neither a fine-tuned CNN nor a linear DL-score",
                             "shap not computed: ValueError: bad input"))
    assert ex.reason("gradcam", "not computed") == "the study has neither a fine-tuned CNN nor a linear DL-score"
    assert ex.reason("shap", "not computed") == "ValueError: bad input"
    assert ex.reason("nomogram", "none") == "none"


def test_without_a_cnn_or_a_dl_score_the_note_says_so_once():
    y = pd.Series([0, 1, 0, 1], index=[f"c{i}" for i in range(4)])
    result = SimpleNamespace(models={"m": object()}, primary="m", nomogram_model=None)
    config = SimpleNamespace(shap=False, nomogram=False, gradcam=2, dl_backbones=["small_cnn"])
    study = SimpleNamespace(seed=0, variables={})
    ex = explain(result, study=study, config=config, inputs={}, probabilities={"external": pd.DataFrame(index=y.index)},
                 primary="external", cohort_table=pd.DataFrame(index=y.index), parts=pd.Series("external", index=y.index),
                 y=y, cnns={}, say=lambda _: None)
    assert ex.gradcam == () and ex.gradcam_source is None
    assert ex.notes == ("no Grad-CAM: the study has neither a fine-tuned CNN nor a linear DL-score",)
    assert "Grad-CAM" not in ex.reason("gradcam", "")


def test_the_dl_score_is_found_in_the_primary_model():
    pytest.importorskip("torch")
    from sklearn.pipeline import Pipeline

    from sonorad.designs.base import ColumnModel
    from sonorad.scores import DLScore

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 5)), columns=[f"small_cnn_{i}" for i in range(5)])
    y = (X["small_cnn_3"] + rng.normal(0, 0.5, 40) > 0).astype(int)
    score = Pipeline([("score", DLScore(alpha=None, correlation_threshold=None, cv=3, n_lambdas=10))]).fit(X, y)
    result = SimpleNamespace(models={"dl_score": ColumnModel.fitted(score, list(X.columns))}, primary="dl_score")
    net, backbone, name = dl_score_network(result, ["small_cnn"])
    assert (backbone, name) == ("small_cnn", "dl_score") and not net.training
    assert dl_score_network(result, ["resnet18"]) is None


def test_gradcam_cases_are_half_positive():
    y = pd.Series([0] * 6 + [1] * 4, index=[f"c{i}" for i in range(10)])
    ids = gradcam_cases(y, 4, seed=0)
    assert len(ids) == 4 and int(y.loc[ids].sum()) == 2 and ids == gradcam_cases(y, 4, seed=0)
