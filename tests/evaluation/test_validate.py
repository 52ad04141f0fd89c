"""Tests of sonorad.evaluation._validate: input checks that name the argument and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.evaluation._validate import check_choice, check_labels, check_level, check_scores


def test_check_labels_accepts_0_1_and_booleans():
    assert check_labels([True, False, True]).tolist() == [1, 0, 1]
    assert check_labels(np.array([0.0, 1.0])).dtype.kind == "i"


@pytest.mark.parametrize("labels, match", [
    (["a", "b"], "coded 0/1"),
    ([0, 1, 2], "only 0 and 1"),
    ([1, 1, 1], "one class only"),
    ([0.0, np.nan, 1.0], "NaN"),
    ([], "empty"),
    ([[0, 1]], "1-D"),
])
def test_check_labels_errors_name_the_argument(labels, match):
    with pytest.raises(ValueError, match=match):
        check_labels(labels, name="outcome")


def test_check_scores():
    assert check_scores([0.2, 0.8], 2, probability=True).tolist() == [0.2, 0.8]
    with pytest.raises(ValueError, match="predict_proba"):
        check_scores(np.zeros((3, 2)), 3)
    with pytest.raises(ValueError, match="length mismatch"):
        check_scores([0.1, 0.2], 3)
    with pytest.raises(ValueError, match=r"NaN/infinite.*positions \[1\]"):
        check_scores([0.1, np.inf], 2)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        check_scores([0.1, 1.5], 2, probability=True)


def test_check_level_and_choice():
    assert check_level(0.95) == 0.95
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        check_level(95)
    assert check_choice("a", ("a", "b"), "method") == "a"
    with pytest.raises(ValueError, match="method='c' is not supported"):
        check_choice("c", ("a", "b"), "method")
