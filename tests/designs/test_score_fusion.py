"""sonorad.designs.score_fusion: the score-fusion engine on small synthetic multicenter cohorts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sonorad.errors import ConfigError
from sonorad.designs import FeatureColumns, build_design
from sonorad.designs.score_fusion import ScoreFusionEngine

from .builders import CLINICAL, US, make_score_fusion_cohort, split

SMALL = {"rad_score": {"n_lambdas": 8, "cv": 5}, "dl_score": {"n_lambdas": 8, "cv": 5},
         "final_selection": {"n_lambdas": 8, "cv": 5}}


@pytest.fixture(scope="module")
def score_fusion():
    cohort = make_score_fusion_cohort(n_radiomics=60, n_deep=50, seed=1)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    family = ScoreFusionEngine(models=["logistic_regression", "knn", "naive_bayes"],
                               clinical_variables=CLINICAL, us_variables=US, random_state=0, **SMALL)
    # one cases-like table serves as both "clinical" and "us": only declared columns are used
    both = pd.concat([tr["clinical"], tr["us"]], axis=1)
    family.fit({**tr, "clinical": both, "us": both}, ytr, groups=ptr)
    return family, tr, ex, ytr, yex


def test_score_fusion_fits_predicts_and_exposes_steps(score_fusion):
    family, tr, ex, ytr, yex = score_fusion
    proba = family.predict_proba(ex)
    assert list(proba.columns) == ["rad_score", "dl_score", "logistic_regression", "knn", "naive_bayes"]
    assert proba.index.equals(ex["radiomics"].index)
    assert {"rad_score", "dl_score"} <= set(family.selected_features_)
    assert set(family.rad_score_.features_) & {f"original_glcm_Feature{i}" for i in range(5)}
    assert family.rad_score_.formula().startswith("Rad-score = ")
    assert family.dl_score_.formula().startswith("DL-score = ")
    lr = family.pipelines_["logistic_regression"]
    assert list(lr.named_steps) == ["encode", "lasso", "model"]
    assert list(lr[:-1].get_feature_names_out()) == family.selected_features_  # what SHAP should label
    assert family.cv_auc_.between(0, 1).all() and family.best_model_ in family.cv_auc_.index
    assert roc_auc_score(yex, proba["logistic_regression"]) > 0.8
    assert roc_auc_score(yex, proba["rad_score"]) > 0.7


def test_score_fusion_training_scores_are_out_of_fold(score_fusion):
    family, tr, ex, ytr, yex = score_fusion
    full = family.scores(tr)
    oof = family.oof_scores_
    assert oof.index.equals(full.index)
    # The refitted score has seen every training label; the out-of-fold one has not, so it is
    # different and less optimistic on the training cohort.
    assert not np.allclose(oof["rad_score"], full["rad_score"])
    assert roc_auc_score(ytr, oof["rad_score"]) < roc_auc_score(ytr, full["rad_score"])
    assert family.stage2_training_["rad_score"].equals(oof["rad_score"])


def test_score_fusion_same_seed_same_predictions_and_harmonization():
    cohort = make_score_fusion_cohort(n_patients=120, n_radiomics=20, n_deep=20, center_shift=1.0, seed=5)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    kwargs = dict(models=["logistic_regression"], clinical_variables=CLINICAL, us_variables=US,
                  harmonize=True, cv=3, random_state=4, **SMALL)
    a = ScoreFusionEngine(**kwargs).fit(tr, ytr, groups=ptr, centers=ctr).predict_proba(ex, centers=cex)
    b = ScoreFusionEngine(**kwargs).fit(tr, ytr, groups=ptr, centers=ctr).predict_proba(ex, centers=cex)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="harmonize=True needs the center"):
        ScoreFusionEngine(**kwargs).fit(tr, ytr, groups=ptr)


def _two_backbone_cohort():
    """Score-fusion tables whose deep table holds two backbones; only backbone b's first columns carry the label."""
    tables, y, patients, centers = make_score_fusion_cohort(n_patients=150, n_radiomics=20, n_deep=40, seed=3)
    deep = tables["deep"].to_numpy()
    a = pd.DataFrame(deep[:, 20:], index=y.index, columns=[f"net_a_{i}" for i in range(20)])  # noise only
    b = pd.DataFrame(deep[:, :20], index=y.index, columns=[f"net_b_{i}" for i in range(20)])
    tables["deep"] = pd.concat([a, b], axis=1)
    return split(tables, y, patients, centers)


def test_score_fusion_fits_one_dl_score_per_backbone_each_on_its_own_columns():
    tr, ex, ytr, yex, ptr, ctr, cex = _two_backbone_cohort()
    kwargs = dict(models=["logistic_regression"], clinical_variables=CLINICAL, us_variables=US, cv=3,
                  random_state=0, **SMALL)
    per = ScoreFusionEngine(dl_backbones=["net_a", "net_b"], **kwargs).fit(tr, ytr, groups=ptr)
    assert list(per.score_pipelines_) == ["rad_score", "dl_score_net_a", "dl_score_net_b"]
    assert per.score_columns_["dl_score_net_a"] == [f"net_a_{i}" for i in range(20)]
    assert per.score_columns_["dl_score_net_b"] == [f"net_b_{i}" for i in range(20)]
    for name in ("dl_score_net_a", "dl_score_net_b"):
        score = per.score_pipelines_[name][-1]
        assert score.name == name and set(score.features_) <= set(per.score_columns_[name])
    assert per.score_pipelines_["dl_score_net_b"][-1].formula().startswith("DL-score (net_b) = ")
    assert list(per.oof_scores_.columns) == ["rad_score", "dl_score_net_a", "dl_score_net_b"]
    assert set(per.lasso_paths()) == {"Rad-score", "DL-score (net_a)", "DL-score (net_b)", "stage 2"}
    proba = per.predict_proba(ex)
    assert roc_auc_score(yex, proba["dl_score_net_b"]) > 0.7  # the informative backbone
    # the whole stack scores new cases from the model input table, as the bundle does
    design = build_design({"design": "score_fusion", **kwargs})
    columns = FeatureColumns(radiomics=tuple(tr["radiomics"].columns), deep=tuple(tr["deep"].columns),
                             clinical=tuple(CLINICAL), us=tuple(US), backbones=("net_a", "net_b"))
    X = pd.concat([tr["radiomics"], tr["deep"], tr["clinical"], tr["us"]], axis=1).assign(center="C1")
    result = design.fit(X, ytr, ptr, columns=columns)
    assert {"dl_score_net_a", "dl_score_net_b"} <= set(result.models) and "dl_score" not in result.models
    Xe = pd.concat([ex["radiomics"], ex["deep"], ex["clinical"], ex["us"]], axis=1).assign(center="C3")
    np.testing.assert_allclose(result.predict_proba(Xe)["logistic_regression"], proba["logistic_regression"])
    # joint: one DL-score over both backbones' columns
    joint = ScoreFusionEngine(dl_backbones=["net_a", "net_b"], dl_scores="joint", **kwargs).fit(tr, ytr, groups=ptr)
    assert list(joint.score_pipelines_) == ["rad_score", "dl_score"]
    assert len(joint.score_columns_["dl_score"]) == 40
    with pytest.raises(ConfigError, match="dl_scores"):
        ScoreFusionEngine(dl_backbones=["net_a", "net_b"], dl_scores="mean", **kwargs).fit(tr, ytr, groups=ptr)
    with pytest.raises(ConfigError, match="models.dl_scores: must be per_backbone or joint"):  # before any work
        build_design({"design": "score_fusion", "dl_scores": "mean"})
    with pytest.raises(ConfigError, match="dl_backbones"):  # set from the features, not the study file
        build_design({"design": "score_fusion", "dl_backbones": ["net_a"]})


def test_score_fusion_input_errors_name_the_missing_case_and_the_unknown_model():
    tables, y, patients, centers = make_score_fusion_cohort(n_patients=60, n_radiomics=10, n_deep=10)
    tables["deep"] = tables["deep"].drop(index="case0003")
    with pytest.raises(ValueError, match="case0003"):
        ScoreFusionEngine(models=["logistic_regression"]).fit(tables, y, patients)
    with pytest.raises(ConfigError, match="Unknown model"):
        ScoreFusionEngine(models=["catboost"]).fit(tables, y, patients)


@pytest.mark.slow
def test_fits_on_two_workers_give_the_one_worker_numbers():
    from joblib import parallel_config

    cohort = make_score_fusion_cohort(n_patients=120, n_radiomics=30, n_deep=20, seed=4)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    kwargs = dict(models=["logistic_regression", "random_forest"], clinical_variables=CLINICAL, us_variables=US,
                  cv=3, random_state=2, **SMALL)
    one = ScoreFusionEngine(**kwargs).fit(tr, ytr, groups=ptr).predict_proba(ex)
    with parallel_config(n_jobs=2):
        two = ScoreFusionEngine(**kwargs).fit(tr, ytr, groups=ptr).predict_proba(ex)
    pd.testing.assert_frame_equal(one, two, check_exact=True)
