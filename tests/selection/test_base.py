"""Tests of sonorad.selection.base: patient-grouped folds and the binary-label check."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.selection import UnivariateFilter, make_grouped_cv


def test_grouped_cv_never_splits_a_patient():
    y = np.tile([0, 1], 30)
    groups = np.repeat(np.arange(20), 3)
    for train, test in make_grouped_cv(5, y, groups, random_state=0):
        assert not set(groups[train]) & set(groups[test])


def test_non_binary_label_is_a_clear_error():
    with pytest.raises(ValueError, match="UnivariateFilter: the label must be binary"):
        UnivariateFilter().fit(np.zeros((6, 2)), [0, 1, 2, 0, 1, 2])
