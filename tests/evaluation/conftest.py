"""Fixtures of the evaluation tests: the reference data sets in ``data/``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def asah() -> pd.DataFrame:
    """pROC's aSAH data (113 patients; poor_outcome, wfns, s100b, ndka)."""
    return pd.read_csv(DATA / "asah.csv")


@pytest.fixture(scope="module")
def df_binary() -> pd.DataFrame:
    """dcurves' df_binary (750 patients; cancer, cancerpredmarker)."""
    return pd.read_csv(DATA / "dcurves_df_binary.csv")


@pytest.fixture(scope="module")
def mtcars() -> pd.DataFrame:
    """R's mtcars (32 cars; car, mpg, disp, wt, vs)."""
    return pd.read_csv(DATA / "mtcars.csv")


@pytest.fixture
def fitted_logistic():
    """``(y, p)``: in-sample predictions of a logistic model fitted by statsmodels (400 cases, seed 0)."""
    import numpy as np
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (rng.random(400) < 1 / (1 + np.exp(-(0.3 + x @ [1.0, -0.7])))).astype(int)
    fit = sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit()
    return y, np.asarray(fit.fittedvalues)
