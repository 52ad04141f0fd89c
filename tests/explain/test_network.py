"""The one rule that finds a model's DL-score, and the network that computes it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sonorad.designs.base import ColumnModel, ScoreStack
from sonorad.explain.network import dl_score_network, find_dl_score
from sonorad.scores import DLScore


@pytest.fixture(scope="module")
def deep_table():
    rng = np.random.default_rng(0)
    n = 60
    X = pd.DataFrame(rng.normal(size=(n, 8)), columns=[f"small_cnn_{i}" for i in range(8)],
                     index=[f"c{i:02d}" for i in range(n)])
    y = pd.Series((X["small_cnn_1"] - X["small_cnn_5"] + rng.normal(0, 0.5, n) > 0).astype(int), index=X.index)
    return X, y


def _score_model(X, y, front=()):
    pipe = Pipeline([*front, ("score", DLScore(alpha=None, correlation_threshold=None, cv=3, n_lambdas=10))])
    return ColumnModel.fitted(pipe.fit(X, y), list(X.columns))


def test_finds_the_dl_score_inside_a_second_stage(deep_table):
    X, y = deep_table
    score = _score_model(X, y)
    stage2 = LogisticRegression().fit(pd.DataFrame({"dl_score": score.decision_function(X)}), y)
    stack = ScoreStack.fitted([("dl_score", score)], (), stage2)
    found, backbone = find_dl_score(stack, ["resnet18", "small_cnn"])
    assert found is score.estimator_[-1] and backbone == "small_cnn"
    assert find_dl_score(stack, ["resnet18"]) is None  # not a backbone of the study


def test_finds_a_dl_score_that_is_a_block_of_a_column_router(deep_table, feature_blocks_class):
    from sklearn.compose import ColumnTransformer

    X, y = deep_table
    X = X.assign(age=np.linspace(30, 80, len(X)))
    deep = [c for c in X.columns if c != "age"]
    score = DLScore(alpha=None, correlation_threshold=None, cv=3, n_lambdas=10)
    blocks = feature_blocks_class([("deep", score, deep), ("clin", "passthrough", ["age"])])
    model = Pipeline([("encode", blocks), ("clf", LogisticRegression())]).fit(X, y)
    found, backbone = find_dl_score(model, ["small_cnn"])
    assert found is model[0].transformers_[0][1] and backbone == "small_cnn"
    routed = Pipeline([("encode", ColumnTransformer([("clin", "passthrough", ["age"]), ("deep", score, deep)])),
                       ("clf", LogisticRegression())]).fit(X, y)
    assert find_dl_score(routed, ["small_cnn"])[0] is routed[0].named_transformers_["deep"]
    behind = Pipeline([("scale", StandardScaler().set_output(transform="pandas")), ("encode", blocks),
                       ("clf", LogisticRegression())]).fit(X, y)
    assert find_dl_score(behind, ["small_cnn"]) is None


def test_a_dl_score_behind_another_step_is_not_linear_in_the_backbone(deep_table):
    X, y = deep_table
    assert find_dl_score(_score_model(X, y, front=[("scale", StandardScaler())]), ["small_cnn"]) is None
    assert find_dl_score(LogisticRegression().fit(X, y), ["small_cnn"]) is None


def test_the_network_computes_the_dl_score(deep_table):
    torch = pytest.importorskip("torch")
    from sonorad.deep.backbones import load_backbone

    X, y = deep_table
    model = _score_model(X, y)
    torch.manual_seed(0)
    found = dl_score_network(model, ["small_cnn"], lambda b: load_backbone(b, weights=None))
    assert (found.backbone, found.score_name) == ("small_cnn", "dl_score")
    net = found.network
    images = torch.rand(3, 3, net.input_size, net.input_size)
    with torch.no_grad():
        pooled = net.embed(images).double().numpy()
        logits = net(images).double().numpy().reshape(-1)
    features = pd.DataFrame(np.zeros((3, 8)), columns=X.columns)
    score = model.estimator_[-1]
    for f in score.features_:
        features[f] = pooled[:, int(f.rsplit("_", 1)[1])]
    np.testing.assert_allclose(logits, score.decision_function(features), rtol=1e-4, atol=1e-4)
