"""Tests of sonorad.selection.scaling: ZScore known values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sonorad.selection import ZScore


def test_zscore_known_values_and_constant_column():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [5.0, 5.0, 5.0]})
    z = ZScore().set_output(transform="pandas").fit(X)
    out = z.transform(X)
    np.testing.assert_allclose(out["a"], [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(out["b"], 0.0)
    assert list(out.columns) == ["a", "b"]
    np.testing.assert_allclose(z.transform(pd.DataFrame({"a": [4.0], "b": [6.0]})), [[2.0, 1.0]])
