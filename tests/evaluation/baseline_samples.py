"""Samples shared by the Table 1 tests of the statistics (evaluation) and of the drawing (report)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

# Two samples that pass Shapiro-Wilk (quantiles of a normal distribution) and two skewed ones.
NORMAL_A = stats.norm.ppf(np.linspace(0.05, 0.95, 15), loc=50, scale=8)
NORMAL_B = stats.norm.ppf(np.linspace(0.05, 0.95, 12), loc=56, scale=10)
SKEWED_A = np.array([1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 8, 13, 40, 90], dtype=float)
SKEWED_B = np.array([2, 3, 3, 4, 4, 5, 6, 9, 15, 30, 70, 150], dtype=float)


def frame(a, b, name="x", groups=("train", "external")) -> pd.DataFrame:
    """One column ``name`` holding ``a`` then ``b``, and their ``part``."""
    values = np.concatenate([a, b])
    part = [groups[0]] * len(a) + [groups[1]] * len(b)
    return pd.DataFrame({name: values, "part": part}, index=[f"case{i:03d}" for i in range(len(values))])
