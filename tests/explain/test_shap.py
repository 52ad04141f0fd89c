"""Tests of SHAP explanations: explainer choice, selected-feature space, additivity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import AdaBoostClassifier, RandomForestClassifier
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sonorad.explain.shap import choose_explainer, explain_model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(80, 6)), columns=[f"feat_{i}" for i in range(6)],
                     index=[f"case{i:03d}" for i in range(80)])
    y = (2 * X.feat_0 - X.feat_1 + rng.normal(0, 0.5, 80) > 0).astype(int)
    return X, y


def _model_output(model, X, output):
    p = model.predict_proba(X)[:, 1]
    return np.log(p / (1 - p)) if output == "log-odds" else p


@pytest.mark.parametrize("clf,kind,output", [
    (LogisticRegression(), "linear", "log-odds"),
    (RandomForestClassifier(n_estimators=30, random_state=0), "tree", "probability"),
    (KNeighborsClassifier(7), "permutation", "probability"),
    (AdaBoostClassifier(n_estimators=20, random_state=0), "permutation", "probability"),
])
def test_values_add_up_to_the_model_output(data, clf, kind, output):
    X, y = data
    model = make_pipeline(StandardScaler(), clf).fit(X, y)
    cases = X.iloc[:25]
    r = explain_model(model, cases, background=X, random_state=0)
    assert (r.explainer, r.output) == (kind, output)
    recon = r.values.sum(axis=1) + r.base_values
    np.testing.assert_allclose(recon, _model_output(model, cases, output), atol=1e-6)
    assert r.importance().index[0] == "feat_0"
    assert r.case_ids[0] == "case000"


def test_pipeline_is_explained_in_the_selected_feature_space(data):
    X, y = data
    model = make_pipeline(StandardScaler(), SelectKBest(f_classif, k=3),
                          LogisticRegression()).fit(X, y)
    r = explain_model(model, X, max_background=len(X))
    assert r.values.shape == (80, 3)
    assert r.feature_names == list(model[:-1].get_feature_names_out())
    assert {"feat_0", "feat_1"} <= set(r.feature_names)
    # linear SHAP of a linear model: coef * (x - background mean), exactly
    Xt = model[:-1].transform(X)
    coef = model[-1].coef_[0]
    np.testing.assert_allclose(r.values, coef * (Xt - Xt.mean(axis=0)), atol=1e-10)


def test_permutation_is_seeded(data):
    X, y = data
    model = KNeighborsClassifier(5).fit(X, y)
    a = explain_model(model, X.iloc[:5], background=X, random_state=1).values
    b = explain_model(model, X.iloc[:5], background=X, random_state=1).values
    np.testing.assert_array_equal(a, b)


def test_boosted_trees_explained_in_log_odds(data):
    import lightgbm
    import xgboost

    X, y = data
    for clf in (xgboost.XGBClassifier(n_estimators=20, max_depth=2, random_state=0),
                lightgbm.LGBMClassifier(n_estimators=20, random_state=0, verbose=-1)):
        model = clf.fit(X, y)
        r = explain_model(model, X)
        assert (r.explainer, r.output) == ("tree", "log-odds")
        np.testing.assert_allclose(r.values.sum(1) + r.base_values,
                                   _model_output(model, X, "log-odds"), atol=1e-4)


def test_choose_explainer_and_errors(data):
    X, y = data
    from sklearn.svm import SVC

    with pytest.raises(ValueError, match="predict_proba"):
        choose_explainer(SVC())
    with pytest.raises(ValueError, match="not fitted"):
        explain_model(LogisticRegression(), X)
    with pytest.raises(ValueError, match="empty"):
        explain_model(LogisticRegression().fit(X, y), X.iloc[:0])
    with pytest.raises(ValueError, match="max_evals"):
        explain_model(KNeighborsClassifier().fit(X, y), X.iloc[:3], max_evals=5)


@pytest.mark.slow
def test_every_zoo_model_is_explained(data):
    models = pytest.importorskip("sonorad.models")
    X, y = data
    for name in models.available_models():
        model = models.get_model(name, random_state=0).fit(X, y)
        r = explain_model(model, X.iloc[:30], background=X)
        out = _model_output(model, X.iloc[:30], r.output)
        np.testing.assert_allclose(r.values.sum(1) + r.base_values, out, atol=1e-4,
                                   err_msg=name)


def test_the_parts_of_a_nested_pipeline(data):
    from sonorad.explain.shap import apply_steps, explain_space

    X, y = data
    inner = make_pipeline(StandardScaler(), LogisticRegression())
    model = make_pipeline(SelectKBest(f_classif, k=3), inner).fit(X, y)
    display, scale, final = explain_space(model)
    assert [type(s).__name__ for s in display] == ["SelectKBest"]
    assert [type(s).__name__ for s in scale] == ["StandardScaler"] and final is inner[-1]
    shown = apply_steps(display, X)
    assert list(shown.columns) == list(model[0].get_feature_names_out()) and list(shown.index) == list(X.index)


def test_explain_cases_names_the_predictors_and_ranks_contributions(data):
    from sonorad.explain.shap import CONTRIBUTION_FIELDS, display_table, explain_cases, top_contributions

    X, y = data
    model = make_pipeline(SelectKBest(f_classif, k=3), make_pipeline(StandardScaler(), LogisticRegression()))
    model.fit(X.to_numpy(), y)  # fitted on arrays: every step names its outputs x0, x1, ...
    frame = pd.DataFrame(X.to_numpy(), index=X.index, columns=[f"x{i}" for i in range(6)])
    r = explain_cases(model, frame.iloc[:4], display_table(model, frame))
    assert r.feature_names == list(model[0].get_feature_names_out())
    rows = top_contributions(r, 2)
    assert len(rows) == 8 and all(tuple(row) == CONTRIBUTION_FIELDS for row in rows)
    with pytest.raises(ValueError, match="background lacks"):
        explain_cases(model, frame.iloc[:1], frame[["x0"]])


def test_contributions_show_levels_of_coded_variables_with_unchanged_shap():
    """BI-RADS coded 0..3 is shown as its level ("3"), not as 1.0; the SHAP numbers stay those of the code."""
    from sklearn.compose import ColumnTransformer

    from sonorad.clinical import ClinicalEncoder
    from sonorad.explain.shap import display_table, explain_cases, top_contributions

    rng = np.random.default_rng(5)
    raw = pd.DataFrame({"birads": rng.choice([2, 3, 4, 5], 60), "age": rng.normal(50, 10, 60)},
                       index=[f"c{i}" for i in range(60)])
    y = (rng.random(60) < 0.15 + 0.2 * (raw.birads - 2)).astype(int)
    ct = ColumnTransformer([("us", ClinicalEncoder({"birads": "ordinal"}, {"birads": [2, 3, 4, 5]}), ["birads"]),
                            ("age", "passthrough", ["age"])], verbose_feature_names_out=False)
    model = make_pipeline(ct, StandardScaler(), LogisticRegression()).fit(raw, y)
    r = explain_cases(model, raw.iloc[:6], display_table(model, raw))
    rows = top_contributions(r, 2)
    j = r.feature_names.index("birads")
    for i, cid in enumerate(r.case_ids):
        row = next(x for x in rows if x["case_id"] == cid and x["feature"] == "birads")
        assert row["label"] == str(raw.loc[cid, "birads"])
        assert row["value"] == raw.loc[cid, "birads"] - 2 and row["shap"] == r.values[i, j]
    age = next(x for x in rows if x["feature"] == "age")
    assert age["label"] == f"{age['value']:.4g}"
    from sonorad.evaluation.plots import plot_shap_waterfall

    fig = plot_shap_waterfall(r, r.case_ids[0])
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert any(t.startswith(f"{raw.birads.iloc[0]} = birads") for t in ticks), ticks
