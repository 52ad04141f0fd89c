"""sonorad.designs.feature_families: the feature-families engine on small synthetic multicenter cohorts."""

from __future__ import annotations

import pandas as pd
from sklearn.metrics import roc_auc_score

from sonorad.designs.feature_families import FeatureFamiliesEngine

from .builders import US, make_score_fusion_cohort, split


def test_feature_families_families_chosen_by_the_one_standard_error_rule():
    cohort = make_score_fusion_cohort(n_patients=140, n_radiomics=40, n_deep=30, seed=2)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    tables = {k: tr[k] for k in ("radiomics", "deep", "us")}
    family = FeatureFamiliesEngine(models=["logistic_regression", "naive_bayes"], us_variables=US,
                                   selection={"n_lambdas": 8, "cv": 3}, cv=3, random_state=0)
    family.fit(tables, ytr, groups=ptr)
    assert family.cv_auc_.shape == (2, 5)
    for fam, chosen in family.best_model_.items():
        # the one-standard-error rule: the simplest model within one SE of the best tuning-CV AUC
        choice = family.choice_[fam]
        assert chosen == choice.chosen and choice.best == family.cv_auc_[fam].idxmax()
        assert family.cv_auc_.loc[chosen, fam] >= family.cv_auc_[fam].max() - choice.se
        assert family.fold_auc_[fam].shape == (3, 2)
    assert set(family.selected_features_["combined"]) >= set(US)
    assert not set(family.selected_features_["radiomics"]) & set(US)
    combined = family.pipelines_["combined"]["logistic_regression"]
    assert list(combined[:-1].get_feature_names_out()) == family.selected_features_["combined"]
    proba = family.predict_proba({k: ex[k] for k in ("radiomics", "deep", "us")})
    assert proba.shape == (len(yex), 10) and proba.columns.names == ["family", "model"]
    best = family.predict_proba({k: ex[k] for k in ("radiomics", "deep", "us")}, best_only=True)
    assert list(best.columns) == list(family.families)
    assert roc_auc_score(yex, best["radiomics_dl"]) > 0.7


def _count_lasso_fits(monkeypatch):
    from sonorad.selection import LassoSelector

    calls = []
    fit = LassoSelector.fit

    def counted(self, *args, **kwargs):
        calls.append(self.n_features_in_ if hasattr(self, "n_features_in_") else None)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LassoSelector, "fit", counted)
    return calls


def test_feature_families_combined_family_reuses_the_radiomics_dl_selection(monkeypatch):
    cohort = make_score_fusion_cohort(n_patients=120, n_radiomics=30, n_deep=20, seed=3)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    tables = {k: tr[k] for k in ("radiomics", "deep", "us")}
    kwargs = dict(models=["logistic_regression", "naive_bayes"], us_variables=US,
                  selection={"n_lambdas": 6, "cv": 3}, cv=3, random_state=0)
    calls = _count_lasso_fits(monkeypatch)
    shared = FeatureFamiliesEngine(families=["radiomics_dl", "combined"], **kwargs).fit(tables, ytr, groups=ptr)
    # one selection per tuning fold and one on all rows, for the two families together
    assert len(calls) == 3 + 1
    alone = FeatureFamiliesEngine(families=["combined"], **kwargs).fit(tables, ytr, groups=ptr)
    pd.testing.assert_frame_equal(shared.predict_proba(ex)["combined"], alone.predict_proba(ex)["combined"],
                                  check_exact=True)
    assert shared.selected_features_["combined"] == alone.selected_features_["combined"]
