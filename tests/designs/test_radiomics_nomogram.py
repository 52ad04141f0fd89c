"""sonorad.designs.radiomics_nomogram: Rad-score + declared variables -> one logistic regression."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.designs import build_design

from .builders import design_cohort


@pytest.fixture(scope="module")
def cohort():
    return design_cohort()


def test_radiomics_nomogram_design_in_one_module(cohort):
    tables, y, patients, centers, X, columns = cohort
    result = build_design({"design": "radiomics_nomogram", "cv": 3}, seed=0).fit(X, y, patients, columns=columns)
    assert set(result.models) == {"rad_score", "logistic_regression", "clinical_reference"}
    assert result.reference == "clinical_reference" and result.choices["combined"].chosen == "logistic_regression"
    assert result.primary == "logistic_regression" and result.nomogram_model == "logistic_regression"
    assert "Rad-score" in result.formulas and "DL-score" not in result.formulas
    # deep columns are not read: dropping them changes nothing
    no_deep = X.drop(columns=list(columns.deep))
    np.testing.assert_allclose(result.predict_proba(no_deep).to_numpy(), result.predict_proba(X).to_numpy())
