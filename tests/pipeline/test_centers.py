"""Tests of sonorad.pipeline.centers: a predictor missing for a whole validation center."""

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from sonorad.pipeline.centers import MISSING_COLUMNS, missing_predictor_centers


class _Columns:
    def __init__(self, model, columns):
        self.model, self.columns = model, columns

    def predict_proba(self, frame):
        return self.model.predict_proba(frame[self.columns])


def _setup():
    rng = np.random.default_rng(1)
    n = 60
    ids = [f"c{i}" for i in range(n)]
    X = pd.DataFrame({"birads": rng.integers(2, 6, n).astype(float), "rad_score": rng.normal(size=n)}, index=ids)
    y = (X["rad_score"] + X["birads"] - 3.5 + rng.normal(size=n) > 0).astype(int)
    train, ext = ids[:40], ids[40:]
    full = LogisticRegression().fit(X.loc[train], y.loc[train])
    score_only = LogisticRegression().fit(X.loc[train, ["rad_score"]], y.loc[train])
    models = {"lr": full, "rad_score": _Columns(score_only, ["rad_score"])}
    table = pd.DataFrame({"center": ["A"] * 40 + ["B"] * 10 + ["C"] * 10,
                          "birads": list(X.loc[train, "birads"]) + [""] * 10 + ["3"] * 10}, index=ids)
    by_center = pd.DataFrame([{"cohort": "external", "model": m, "center": c, "n": 10, "auc": a,
                               "auc_low": a - 0.1, "auc_high": min(a + 0.1, 1.0)}
                              for m, c, a in [("lr", "B", 0.40), ("rad_score", "B", 0.80), ("lr", "C", 0.9),
                                              ("rad_score", "C", 0.7), ("cnn", "B", 0.75)]])
    inputs = {"training": X.loc[train], "external": X.loc[ext]}
    return models, inputs, table, by_center


def test_the_center_without_the_predictor_gets_the_chosen_model_and_the_models_that_do_not_need_it():
    models, inputs, table, by_center = _setup()
    out = missing_predictor_centers(models, "lr", inputs, table, ["birads"], by_center, cnns=("cnn",))
    assert list(out.columns) == MISSING_COLUMNS
    assert set(out["center"]) == {"B"}  # C has its BI-RADS
    rows = out.set_index("model")
    assert list(rows.index) == ["lr", "rad_score", "cnn"]
    assert rows.loc["lr", "role"] == "chosen" and bool(rows.loc["lr", "reads_variable"])
    assert not rows.loc["rad_score", "reads_variable"] and rows.loc["rad_score", "auc"] == 0.80
    assert rows.loc["cnn", "role"] == "does not need it"


def test_no_missing_center_gives_an_empty_table():
    models, inputs, table, by_center = _setup()
    table["birads"] = "3"
    out = missing_predictor_centers(models, "lr", inputs, table, ["birads"], by_center)
    assert out.empty and list(out.columns) == MISSING_COLUMNS
    assert missing_predictor_centers(models, "lr", inputs, table, ["birads"], None).empty
