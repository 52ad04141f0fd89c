"""Corrected resampled t interval of the cross-validated AUC (Nadeau & Bengio 2003)."""

import numpy as np
import pytest
from scipy import stats

from sonorad.evaluation.cv_interval import CvAucInterval, corrected_cv_auc_interval, cv_auc_interval

FOLD_AUCS = [0.6, 0.7, 0.65, 0.55, 0.75]


def test_known_answer_by_hand():
    # mean = 3.25 / 5 = 0.65; squared deviations 0.0025, 0.0025, 0, 0.01, 0.01 sum to 0.025,
    # S^2 = 0.025 / 4 = 0.00625; n_test / n_train = 8 / 32 = 0.25;
    # corrected variance = (1/5 + 0.25) x 0.00625 = 0.0028125, SE = 0.05303301; t(0.975, 4) = 2.776445105;
    # half-width 2.776445105 x 0.05303301 = 0.1472432: interval 0.5027568 to 0.7972432
    se = np.sqrt(0.0028125)
    t = stats.t.ppf(0.975, 4)
    assert t == pytest.approx(2.776445105, abs=1e-9)
    r = corrected_cv_auc_interval(FOLD_AUCS, n_train=32, n_test=8)
    assert isinstance(r, CvAucInterval)
    assert r.estimate == pytest.approx(0.65, abs=1e-12)
    assert r.fold_sd ** 2 == pytest.approx(0.00625, abs=1e-12)
    assert r.test_train_ratio == pytest.approx(0.25)
    assert r.se == pytest.approx(se, abs=1e-12)
    assert r.low == pytest.approx(0.65 - t * se, abs=1e-12)
    assert r.high == pytest.approx(0.65 + t * se, abs=1e-12)
    assert (r.low, r.high) == pytest.approx((0.5027568, 0.7972432), abs=1e-7)
    assert (r.n_folds, r.df, r.level) == (5, 4, 0.95)
    assert "Nadeau" in r.method and "Machine Learning 52:239-281" in r.reference
    assert r.to_frame().loc["AUC (mean over folds)", "estimate"] == pytest.approx(0.65)


def test_wider_than_the_naive_interval_of_the_mean():
    naive_se = np.std(FOLD_AUCS, ddof=1) / np.sqrt(5)
    r = corrected_cv_auc_interval(FOLD_AUCS, n_train=32, n_test=8)
    # (1/K + 1/(K-1)) / (1/K) = 1 + K/(K-1) = 2.25 for K = 5
    assert r.se ** 2 / naive_se ** 2 == pytest.approx(2.25)


def test_repeated_cross_validation_uses_all_fold_aucs():
    aucs = FOLD_AUCS + [0.62, 0.68, 0.6, 0.58, 0.71]  # 2 repetitions x 5 folds
    r = corrected_cv_auc_interval(aucs, n_train=32, n_test=8, level=0.9)
    s2 = np.var(aucs, ddof=1)
    se = np.sqrt((1 / 10 + 0.25) * s2)
    t = stats.t.ppf(0.95, 9)
    assert (r.n_folds, r.df) == (10, 9)
    assert (r.low, r.high) == pytest.approx((np.mean(aucs) - t * se, np.mean(aucs) + t * se), abs=1e-12)


def test_interval_is_clipped_to_0_1():
    r = corrected_cv_auc_interval([0.9, 1.0, 0.8], n_train=20, n_test=10)
    assert r.high == 1.0 and r.low == pytest.approx(0.9 - stats.t.ppf(0.975, 2) * r.se)


def test_per_fold_sizes_average_the_ratio():
    r = corrected_cv_auc_interval([0.6, 0.7, 0.8], n_train=[20, 20, 22], n_test=[11, 11, 9])
    assert r.test_train_ratio == pytest.approx((11 / 20 + 11 / 20 + 9 / 22) / 3)


def test_from_out_of_fold_predictions():
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0])
    p = np.array([.1, .9, .4, .3, .8, .2, .6, .7, .5, .4, .6, .3])
    fold = np.repeat([0, 1, 2], 4)
    # by hand: fold 0 positives .9 .3 vs negatives .1 .4 -> 3/4; fold 1 .8 .7 vs .2 .6 -> 4/4;
    # fold 2 .4 .6 vs .5 .3 -> 3/4
    r = cv_auc_interval(y, p, fold)
    expected = corrected_cv_auc_interval([0.75, 1.0, 0.75], n_train=8, n_test=4)
    assert (r.estimate, r.low, r.high) == pytest.approx((expected.estimate, expected.low, expected.high))
    assert r.skipped_folds == ()


def test_fold_with_one_class_is_skipped_and_listed():
    y = np.array([0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 1])
    p = np.linspace(0, 1, 12)
    fold = np.repeat([0, 1, 2], 4)
    y[4:8] = 0  # fold 1 has negatives only
    r = cv_auc_interval(y, p, fold)
    assert r.n_folds == 2 and r.skipped_folds == (1,)


def test_too_few_folds_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 folds"):
        corrected_cv_auc_interval([0.7], n_train=32, n_test=8)
    with pytest.raises(ValueError, match="between 0 and 1"):
        corrected_cv_auc_interval([0.7, 1.2], n_train=32, n_test=8)
    with pytest.raises(ValueError, match="positive"):
        corrected_cv_auc_interval([0.7, 0.6], n_train=0, n_test=8)
    with pytest.raises(ValueError, match="one fold per unit"):
        cv_auc_interval([0, 1, 0, 1], [.1, .2, .3, .4], [0, 1])
