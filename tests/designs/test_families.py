"""The study-1 and study-2 engines (model families) on small synthetic multicenter cohorts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sonorad.errors import ConfigError
from sonorad.designs import FeatureColumns, build_design
from sonorad.designs.study1 import Study1Family
from sonorad.designs.study2 import Study2Family

TRAIN_CENTERS = ["C1", "C2"]


def make_study1_cohort(n_patients=214, n_radiomics=1000, n_deep=1280, n_informative=5, signal=1.0,
                       center_shift=0.0, seed=0):
    """A study-1-shaped cohort: 4 centers (72, 72, 35, 35 patients), one image per patient.

    Returns ``(tables, y, patients, centers)``. The first ``n_informative`` radiomics and deep
    columns, age and the three US variables depend on the label; every other column is noise.
    ``center_shift`` adds a per-center location offset to every imaging feature.
    """
    rng = np.random.default_rng(seed)
    sizes = np.round(np.array([72, 72, 35, 35]) * n_patients / 214).astype(int)
    sizes[-1] = n_patients - sizes[:-1].sum()
    centers = np.repeat(["C1", "C2", "C3", "C4"], sizes)
    ids = pd.Index([f"case{i:04d}" for i in range(n_patients)], name="case_id")
    y = (rng.normal(size=n_patients) + rng.normal(scale=0.8, size=n_patients) > 0.6).astype(int)
    lat = np.where(y == 1, 1.0, -1.0) * signal
    offsets = {"C1": 0.0, "C2": 1.0, "C3": -1.0, "C4": 0.5}
    shift = np.array([offsets[c] for c in centers]) * center_shift
    R = rng.normal(size=(n_patients, n_radiomics)) + shift[:, None]
    R[:, :n_informative] += 0.5 * lat[:, None]
    D = rng.normal(size=(n_patients, n_deep)) + shift[:, None]
    D[:, :n_informative] += 0.5 * lat[:, None]
    radiomics = pd.DataFrame(np.exp(0.3 * R), index=ids,
                             columns=[f"original_glcm_Feature{i}" for i in range(n_radiomics)])
    deep = pd.DataFrame(D, index=ids, columns=[f"resnet50_{i}" for i in range(n_deep)])
    clinical = pd.DataFrame({"age": 50 + 10 * rng.normal(size=n_patients) + 4 * lat,
                             "sex": rng.choice(["F", "M"], n_patients)}, index=ids)
    clinical.loc[ids[rng.choice(n_patients, 5, replace=False)], "age"] = np.nan
    us = pd.DataFrame({
        "tumour_edge": np.where(rng.random(n_patients) < 0.3 + 0.15 * lat, "irregular", "smooth"),
        "calcification": (rng.random(n_patients) < 0.3 + 0.1 * lat).astype(int),
        "us_ln_positive": (rng.random(n_patients) < 0.3 + 0.15 * lat).astype(int),
    }, index=ids)
    patients = pd.Series([f"p{i:04d}" for i in range(n_patients)], index=ids)
    tables = {"radiomics": radiomics, "deep": deep, "clinical": clinical, "us": us}
    return tables, pd.Series(y, index=ids), patients, pd.Series(centers, index=ids)


def split(tables, y, patients, centers):
    train = centers.isin(TRAIN_CENTERS)
    tr = {k: v[train] for k, v in tables.items()}
    ex = {k: v[~train] for k, v in tables.items()}
    return tr, ex, y[train], y[~train], patients[train], centers[train], centers[~train]


SMALL = {"rad_score": {"n_lambdas": 8, "cv": 5}, "dl_score": {"n_lambdas": 8, "cv": 5},
         "final_selection": {"n_lambdas": 8, "cv": 5}}
CLINICAL = {"age": "continuous", "sex": "binary"}
US = {"tumour_edge": "binary", "calcification": "binary", "us_ln_positive": "binary"}


@pytest.fixture(scope="module")
def study1():
    cohort = make_study1_cohort(n_radiomics=60, n_deep=50, seed=1)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    family = Study1Family(models=["logistic_regression", "knn", "naive_bayes"],
                          clinical_variables=CLINICAL, us_variables=US, random_state=0, **SMALL)
    # one cases-like table serves as both "clinical" and "us": only declared columns are used
    both = pd.concat([tr["clinical"], tr["us"]], axis=1)
    family.fit({**tr, "clinical": both, "us": both}, ytr, groups=ptr)
    return family, tr, ex, ytr, yex


def test_study1_fits_predicts_and_exposes_steps(study1):
    family, tr, ex, ytr, yex = study1
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


def test_study1_training_scores_are_out_of_fold(study1):
    family, tr, ex, ytr, yex = study1
    full = family.scores(tr)
    oof = family.oof_scores_
    assert oof.index.equals(full.index)
    # The refitted score has seen every training label; the out-of-fold one has not, so it is
    # different and less optimistic on the training cohort.
    assert not np.allclose(oof["rad_score"], full["rad_score"])
    assert roc_auc_score(ytr, oof["rad_score"]) < roc_auc_score(ytr, full["rad_score"])
    assert family.stage2_training_["rad_score"].equals(oof["rad_score"])


def test_study1_same_seed_same_predictions_and_harmonization():
    cohort = make_study1_cohort(n_patients=120, n_radiomics=20, n_deep=20, center_shift=1.0, seed=5)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    kwargs = dict(models=["logistic_regression"], clinical_variables=CLINICAL, us_variables=US,
                  harmonize=True, cv=3, random_state=4, **SMALL)
    a = Study1Family(**kwargs).fit(tr, ytr, groups=ptr, centers=ctr).predict_proba(ex, centers=cex)
    b = Study1Family(**kwargs).fit(tr, ytr, groups=ptr, centers=ctr).predict_proba(ex, centers=cex)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="harmonize=True needs the center"):
        Study1Family(**kwargs).fit(tr, ytr, groups=ptr)


def _two_backbone_cohort():
    """Study-1 tables whose deep table holds two backbones; only backbone b's first columns carry the label."""
    tables, y, patients, centers = make_study1_cohort(n_patients=150, n_radiomics=20, n_deep=40, seed=3)
    deep = tables["deep"].to_numpy()
    a = pd.DataFrame(deep[:, 20:], index=y.index, columns=[f"net_a_{i}" for i in range(20)])  # noise only
    b = pd.DataFrame(deep[:, :20], index=y.index, columns=[f"net_b_{i}" for i in range(20)])
    tables["deep"] = pd.concat([a, b], axis=1)
    return split(tables, y, patients, centers)


def test_study1_fits_one_dl_score_per_backbone_each_on_its_own_columns():
    tr, ex, ytr, yex, ptr, ctr, cex = _two_backbone_cohort()
    kwargs = dict(models=["logistic_regression"], clinical_variables=CLINICAL, us_variables=US, cv=3,
                  random_state=0, **SMALL)
    per = Study1Family(dl_backbones=["net_a", "net_b"], **kwargs).fit(tr, ytr, groups=ptr)
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
    design = build_design({"design": "study1", **kwargs})
    columns = FeatureColumns(radiomics=tuple(tr["radiomics"].columns), deep=tuple(tr["deep"].columns),
                             clinical=tuple(CLINICAL), us=tuple(US), backbones=("net_a", "net_b"))
    X = pd.concat([tr["radiomics"], tr["deep"], tr["clinical"], tr["us"]], axis=1).assign(center="C1")
    result = design.fit(X, ytr, ptr, columns=columns)
    assert {"dl_score_net_a", "dl_score_net_b"} <= set(result.models) and "dl_score" not in result.models
    Xe = pd.concat([ex["radiomics"], ex["deep"], ex["clinical"], ex["us"]], axis=1).assign(center="C3")
    np.testing.assert_allclose(result.predict_proba(Xe)["logistic_regression"], proba["logistic_regression"])
    # joint: one DL-score over both backbones' columns
    joint = Study1Family(dl_backbones=["net_a", "net_b"], dl_scores="joint", **kwargs).fit(tr, ytr, groups=ptr)
    assert list(joint.score_pipelines_) == ["rad_score", "dl_score"]
    assert len(joint.score_columns_["dl_score"]) == 40
    with pytest.raises(ConfigError, match="dl_scores"):
        Study1Family(dl_backbones=["net_a", "net_b"], dl_scores="mean", **kwargs).fit(tr, ytr, groups=ptr)
    with pytest.raises(ConfigError, match="models.dl_scores: must be per_backbone or joint"):  # before any work
        build_design({"design": "study1", "dl_scores": "mean"})
    with pytest.raises(ConfigError, match="dl_backbones"):  # set from the features, not the study file
        build_design({"design": "study1", "dl_backbones": ["net_a"]})


def test_study2_families_best_by_cv_auc():
    cohort = make_study1_cohort(n_patients=140, n_radiomics=40, n_deep=30, seed=2)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    tables = {k: tr[k] for k in ("radiomics", "deep", "us")}
    family = Study2Family(models=["logistic_regression", "naive_bayes"], us_variables=US,
                          selection={"n_lambdas": 8, "cv": 3}, cv=3, random_state=0).fit(tables, ytr, groups=ptr)
    assert family.cv_auc_.shape == (2, 5)
    for fam, best in family.best_model_.items():
        assert family.cv_auc_.loc[best, fam] == family.cv_auc_[fam].max()
    assert set(family.selected_features_["combined"]) >= set(US)
    assert not set(family.selected_features_["radiomics"]) & set(US)
    combined = family.pipelines_["combined"]["logistic_regression"]
    assert list(combined[:-1].get_feature_names_out()) == family.selected_features_["combined"]
    proba = family.predict_proba({k: ex[k] for k in ("radiomics", "deep", "us")})
    assert proba.shape == (len(yex), 10) and proba.columns.names == ["family", "model"]
    best = family.predict_proba({k: ex[k] for k in ("radiomics", "deep", "us")}, best_only=True)
    assert list(best.columns) == list(family.families)
    assert roc_auc_score(yex, best["radiomics_dl"]) > 0.7


def test_build_design_and_input_errors():
    columns = FeatureColumns()
    fam = build_design({"design": "study2", "models": ["svm"], "cv": 3}).build_engine(columns)
    assert isinstance(fam, Study2Family) and fam.cv == 3
    assert isinstance(build_design({"models": None}).build_engine(columns), Study1Family)
    with pytest.raises(ConfigError, match="unknown key"):
        build_design({"design": "study1", "n_trees": 5})
    with pytest.raises(ConfigError, match="study1"):
        build_design({"design": "study3"})
    tables, y, patients, centers = make_study1_cohort(n_patients=60, n_radiomics=10, n_deep=10)
    tables["deep"] = tables["deep"].drop(index="case0003")
    with pytest.raises(ValueError, match="case0003"):
        Study1Family(models=["logistic_regression"]).fit(tables, y, patients)
    with pytest.raises(ConfigError, match="Unknown model"):
        Study1Family(models=["catboost"]).fit(tables, y, patients)


def test_build_design_from_study_variables_and_seed():
    import doctest

    import sonorad.designs
    from sonorad.study import StudyConfig

    cfg = StudyConfig.from_dict({
        "name": "t", "seed": 7, "label": {"positive": 1},
        "variables": {"age": {"type": "numeric", "role": "clinical"},
                      "tumour_edge": {"type": "binary", "levels": ["smooth", "irregular"], "role": "ultrasound"}}})
    columns = FeatureColumns(clinical=("age",), us=("tumour_edge",))
    fam = build_design({"models": ["svm"]}, variables=cfg.variables, seed=cfg.seed).build_engine(columns)
    assert fam.random_state == 7 and fam.models == ["svm"]
    assert fam.clinical_variables == {"age": "numeric"}
    assert fam.us_variables == {"tumour_edge": "binary"}
    assert fam.categories == {"tumour_edge": ["smooth", "irregular"]}
    assert build_design({"random_state": 1}, seed=7).build_engine(columns).random_state == 1
    assert doctest.testmod(sonorad.designs).failed == 0


def _count_lasso_fits(monkeypatch):
    from sonorad.selection import LassoSelector

    calls = []
    fit = LassoSelector.fit

    def counted(self, *args, **kwargs):
        calls.append(self.n_features_in_ if hasattr(self, "n_features_in_") else None)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LassoSelector, "fit", counted)
    return calls


def test_study2_combined_family_reuses_the_radiomics_dl_selection(monkeypatch):
    cohort = make_study1_cohort(n_patients=120, n_radiomics=30, n_deep=20, seed=3)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    tables = {k: tr[k] for k in ("radiomics", "deep", "us")}
    kwargs = dict(models=["logistic_regression", "naive_bayes"], us_variables=US,
                  selection={"n_lambdas": 6, "cv": 3}, cv=3, random_state=0)
    calls = _count_lasso_fits(monkeypatch)
    shared = Study2Family(families=["radiomics_dl", "combined"], **kwargs).fit(tables, ytr, groups=ptr)
    # one selection per tuning fold and one on all rows, for the two families together
    assert len(calls) == 3 + 1
    alone = Study2Family(families=["combined"], **kwargs).fit(tables, ytr, groups=ptr)
    pd.testing.assert_frame_equal(shared.predict_proba(ex)["combined"], alone.predict_proba(ex)["combined"],
                                  check_exact=True)
    assert shared.selected_features_["combined"] == alone.selected_features_["combined"]


@pytest.mark.slow
def test_fits_on_two_workers_give_the_one_worker_numbers():
    from joblib import parallel_config

    cohort = make_study1_cohort(n_patients=120, n_radiomics=30, n_deep=20, seed=4)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    kwargs = dict(models=["logistic_regression", "random_forest"], clinical_variables=CLINICAL, us_variables=US,
                  cv=3, random_state=2, **SMALL)
    one = Study1Family(**kwargs).fit(tr, ytr, groups=ptr).predict_proba(ex)
    with parallel_config(n_jobs=2):
        two = Study1Family(**kwargs).fit(tr, ytr, groups=ptr).predict_proba(ex)
    pd.testing.assert_frame_equal(one, two, check_exact=True)


def test_the_mlp_iteration_cap_is_not_reported_as_a_convergence_failure():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    cohort = make_study1_cohort(n_patients=100, n_radiomics=20, n_deep=20, seed=5)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Study1Family(models=["mlp"], clinical_variables=CLINICAL, us_variables=US, cv=3, random_state=0,
                     **SMALL).fit(tr, ytr, groups=ptr)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning) and "lbfgs" in str(w.message)]
