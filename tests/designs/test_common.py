"""sonorad.designs._common: column routing, zoo tuning and the imaging selection shared by the designs."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from sonorad.designs._common import FeatureBlocks, selection_steps
from sonorad.designs.score_fusion import ScoreFusionEngine

from .builders import CLINICAL, US, make_score_fusion_cohort, split

SMALL = {"rad_score": {"n_lambdas": 8, "cv": 5}, "dl_score": {"n_lambdas": 8, "cv": 5},
         "final_selection": {"n_lambdas": 8, "cv": 5}}


def test_the_mlp_iteration_cap_is_not_reported_as_a_convergence_failure():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    cohort = make_score_fusion_cohort(n_patients=100, n_radiomics=20, n_deep=20, seed=5)
    tr, ex, ytr, yex, ptr, ctr, cex = split(*cohort)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ScoreFusionEngine(models=["mlp"], clinical_variables=CLINICAL, us_variables=US, cv=3, random_state=0,
                          **SMALL).fit(tr, ytr, groups=ptr)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning) and "lbfgs" in str(w.message)]


def test_feature_blocks_route_fit_parameters_by_block_name_and_concatenate_the_blocks():
    class Doubler(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None, groups=None):
            self.groups_ = groups
            return self

        def transform(self, X):
            return X * 2.0

    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5, 6]})
    blocks = FeatureBlocks([("imaging", Doubler(), ["a", "b"]), ("variables", "passthrough", ["c"])])
    blocks.fit(X, None, imaging__groups=["p1", "p2"], variables__unused=1)
    assert blocks.transformers_[0][1].groups_ == ["p1", "p2"]  # only its own block's parameters
    out = blocks.transform(X[["c", "b", "a"]])
    assert list(out.columns) == ["a", "b", "c"] and list(blocks.get_feature_names_out()) == ["a", "b", "c"]
    assert out.to_numpy().tolist() == [[2.0, 6.0, 5.0], [4.0, 8.0, 6.0]]
    with pytest.raises(ValueError, match="Block 'imaging'.*'b'"):
        FeatureBlocks([("imaging", Doubler(), ["a", "b"])]).fit(X.drop(columns="b"))
    with pytest.raises(ValueError, match="duplicate columns"):
        FeatureBlocks([("one", "passthrough", ["a"]), ("two", "passthrough", ["a"])]).fit(X)
    with pytest.raises(TypeError, match="DataFrame"):
        blocks.fit(X.to_numpy())


def test_selection_steps_describe_only_the_steps_the_section_turns_on():
    default = selection_steps(None)
    assert default == ["z-score with training means and SDs", "Mann-Whitney U test (p < 0.05)",
                       "Spearman redundancy filter (|r| < 0.9, keeping the member of each pair more related "
                       "to the outcome)",
                       "LASSO logistic regression with 10-fold patient-grouped cross-validation (minimum-error rule)"]
    steps = selection_steps({"icc": "icc.csv", "fdr": True, "max_univariate": 20, "correlation_threshold": None,
                             "rule": "1se", "cv": 5, "method": "linear"})
    assert steps[1] == "ICC(3,1) >= 0.75"
    assert steps[2] == "Mann-Whitney U test (p < 0.05, Benjamini-Hochberg FDR, at most 20 features)"
    assert not any("redundancy" in s for s in steps)
    assert steps[-1] == "LASSO linear regression with 5-fold patient-grouped cross-validation (one-standard-error rule)"
