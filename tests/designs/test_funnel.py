"""sonorad.designs.funnel: the features left after each fitted selection step."""

from __future__ import annotations

import numpy as np

from sonorad.designs.funnel import selection_funnel


class _Kept:
    """A fitted selection step that kept the first ``n`` of its inputs."""

    def __init__(self, n_in, n, **params):
        self.support = np.arange(n_in) < n
        self.__dict__.update(params)

    def get_support(self):
        return self.support


def test_each_step_reports_the_features_it_left():
    steps = [("zscore", object()), ("univariate", _Kept(10, 6, test="mannwhitney", alpha=0.05, fdr=False)),
             ("correlation", _Kept(6, 4, method="spearman", threshold=0.9)), ("lasso", _Kept(4, 2, rule="1se", cv=5))]
    funnel = selection_funnel(steps, 10, "Rad-score")
    assert list(funnel["n_features"]) == [10, 10, 6, 4, 2]
    assert list(funnel["step"]) == ["extracted", "z-score", "univariate filter (Mann-Whitney U p < 0.05)",
                                    "redundancy filter (spearman |r| < 0.9)", "LASSO (1se rule, 5-fold CV)"]
    assert set(funnel["signature"]) == {"Rad-score"}
