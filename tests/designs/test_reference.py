"""sonorad.designs.reference: the clinical reference model, a logistic regression on the declared variables."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sonorad.designs import DesignResult, FeatureColumns
from sonorad.designs.reference import REFERENCE, fit_reference, logistic_predictors, with_reference

from .builders import CLINICAL, US, design_cohort


@pytest.fixture(scope="module")
def cohort():
    return design_cohort()


def _engine(**kw):
    return SimpleNamespace(clinical_variables=CLINICAL, us_variables=US, categories=None, cv=3, n_iter=None,
                           class_weight=None, resample=None, random_state=0, n_jobs=None, **kw)


def _result(models=None):
    return DesignResult(design="d", models=models or {}, families={}, chosen={}, primary="m", highlight=("m",),
                        cv_auc=pd.Series({"m": 0.7}, name="cv_auc"), selected_features={}, funnel=pd.DataFrame())


def test_the_reference_reads_only_the_declared_variables_encoded_by_role(cohort):
    tables, y, patients, centers, X, columns = cohort
    model, auc, folds = fit_reference(_engine(), X, y, patients, columns)
    assert list(model.columns) == [*CLINICAL, *US]
    encode = model.estimator_.named_steps["encode"]
    assert [name for name, _, _ in encode.transformers_] == ["clinical", "us"]
    assert "sex" in encode.get_feature_names_out() and "age_missing" in encode.get_feature_names_out()
    assert 0.5 < auc <= 1 and auc == pytest.approx(folds["logistic_regression"].mean())
    # imaging columns do not move it: changing every radiomics and deep value changes nothing
    noisy = X.copy()
    imaging = list(columns.radiomics) + list(columns.deep)
    noisy[imaging] = np.random.default_rng(0).normal(size=(len(X), len(imaging)))
    np.testing.assert_array_equal(model.predict_proba(noisy), model.predict_proba(X))
    assert roc_auc_score(y, model.predict_proba(X)[:, 1]) > 0.6


def test_the_reference_is_added_as_its_own_model_and_never_chosen(cohort):
    tables, y, patients, centers, X, columns = cohort
    result = with_reference(_result({"m": None}), _engine(), X, y, patients, columns)
    assert result.reference == REFERENCE and REFERENCE in result.models
    assert result.families[REFERENCE] == (REFERENCE,) and REFERENCE not in result.chosen.values()
    assert result.primary == "m" and result.highlight == ("m", REFERENCE)
    assert list(result.cv_auc.index) == ["m", REFERENCE] and result.cv_auc.name == "cv_auc"
    assert "clinical reference model" in result.methods[-1]
    # no declared variable: no reference, the result unchanged
    bare = FeatureColumns(radiomics=columns.radiomics, deep=columns.deep)
    unchanged = _result()
    assert with_reference(unchanged, _engine(), X, y, patients, bare) is unchanged


def test_logistic_predictors_give_what_the_regression_reads_and_none_for_other_models(cohort):
    tables, y, patients, centers, X, columns = cohort
    model, _, _ = fit_reference(_engine(), X, y, patients, columns)
    predictors = logistic_predictors(model, X)
    assert list(predictors.columns) == list(model.estimator_[:-1].get_feature_names_out())
    assert predictors.index.equals(X.index)
    assert logistic_predictors(object(), X) is None
