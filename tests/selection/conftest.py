"""Fixtures of the selection tests: tables with planted informative features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _planted(n=150, p=60, informative=4, seed=0, sep=1.0):
    """Noise columns plus planted ones: column j < informative is shifted by ``sep`` in class 1."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    X = rng.normal(size=(n, p))
    X[:, :informative] += sep * y[:, None]
    names = [f"original_glcm_Feature{i}" for i in range(p)]
    return pd.DataFrame(X, columns=names, index=[f"c{i}" for i in range(n)]), y, names[:informative]


@pytest.fixture
def planted():
    """``planted(n, p, informative, seed, sep) -> (X, y, informative names)``."""
    return _planted
