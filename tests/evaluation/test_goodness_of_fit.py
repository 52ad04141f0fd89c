"""Tests of sonorad.evaluation.goodness_of_fit: the Hosmer-Lemeshow test.

Hosmer-Lemeshow known answer: the R package ``performance`` documents
``performance_hosmer(glm(vs ~ wt + mpg, data = mtcars, family = "binomial"))`` as
``Chi-squared: 5.137, df: 8, p-value: 0.743`` (easystats.github.io/performance/reference/
performance_hosmer.html; its grouping, in ``R/performance_hosmer.R`` of easystats/performance,
is the same as ``ResourceSelection::hoslem.test``). The statistic is also checked against an
independent ``pandas.qcut`` grouping and a constructed case whose statistic is exactly 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sonorad.evaluation.goodness_of_fit import hosmer_lemeshow


def test_hosmer_lemeshow_matches_published_mtcars_example(mtcars):
    import statsmodels.api as sm

    d = mtcars
    # transcription check: R's glm(vs ~ wt + disp) output as published (coefficients 1.60859,
    # 1.62635, -0.03443; residual deviance 21.40, null deviance 43.86)
    chk = sm.GLM(d.vs, sm.add_constant(d[["wt", "disp"]]), family=sm.families.Binomial()).fit()
    assert chk.params.to_numpy() == pytest.approx([1.60859, 1.62635, -0.03443], abs=5e-5)
    assert (round(chk.deviance, 2), round(chk.null_deviance, 2)) == (21.40, 43.86)
    fit = sm.GLM(d.vs, sm.add_constant(d[["wt", "mpg"]]), family=sm.families.Binomial()).fit(tol=1e-12)
    r = hosmer_lemeshow(d.vs, fit.fittedvalues)
    assert round(r.statistic, 3) == 5.137
    assert r.df == 8
    assert round(r.p_value, 3) == 0.743


def test_hosmer_lemeshow_equals_independent_decile_grouping(df_binary):
    y, p = df_binary.cancer.to_numpy(), df_binary.cancerpredmarker.to_numpy()
    r = hosmer_lemeshow(y, p)
    grp = pd.qcut(p, 10)
    d = pd.DataFrame({"y": y, "p": p, "g": grp}).groupby("g", observed=True)
    o1, e1 = d.y.sum(), d.p.sum()
    o0, e0 = d.y.count() - o1, d.y.count() - e1
    chi2 = float(((o1 - e1) ** 2 / e1 + (o0 - e0) ** 2 / e0).sum())
    assert r.statistic == pytest.approx(chi2, rel=1e-12)
    assert r.df == 8
    assert r.p_value == pytest.approx(stats.chi2.sf(chi2, 8), rel=1e-12)
    assert r.groups["n"].sum() == 750


def test_hosmer_lemeshow_zero_when_every_group_matches_exactly():
    probs = np.repeat(np.arange(10) / 10 + 0.05, 20)
    y = np.concatenate([np.r_[np.ones(round(20 * q)), np.zeros(20 - round(20 * q))]
                        for q in np.arange(10) / 10 + 0.05]).astype(int)
    r = hosmer_lemeshow(y, probs)
    assert r.statistic == pytest.approx(0, abs=1e-12) and r.p_value == pytest.approx(1)
    assert len(r.groups) == 10


def test_hosmer_lemeshow_with_one_risk_group_is_not_computable_and_does_not_raise():
    y = np.array([0, 1] * 20)
    p = np.where(np.arange(40) < 38, 0.3, 0.6)        # two distinct risks -> fewer than 3 groups
    r = hosmer_lemeshow(y, p)
    assert not r.computable and np.isnan(r.statistic) and r.df is None
    assert "risk group" in r.reason and "2 distinct" in r.reason
    assert not r.to_frame()["computable"].iloc[0]


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        hosmer_lemeshow([0, 1, 0, 1], [0.1, 1.2, 0.3, 0.4])
