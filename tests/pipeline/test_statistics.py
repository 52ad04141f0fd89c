"""Statistics of a run from probabilities and labels: known answers and no leakage of the cut-off."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sonorad.evaluation import delong_test
from sonorad.pipeline import statistics as st


@pytest.fixture
def cohorts():
    rng = np.random.default_rng(0)

    def frame(prefix, n):
        ids = [f"{prefix}{i}" for i in range(n)]
        y = pd.Series((rng.random(n) < 0.4).astype(int), index=ids)
        p = pd.DataFrame({"a": np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1),
                          "b": rng.random(n)}, index=ids)
        return y, p

    y_tr, p_tr = frame("t", 80)
    y_ex, p_ex = frame("e", 50)
    cv = p_tr * 0.9 + 0.05
    return pd.concat([y_tr, y_ex]), {"training": p_tr, "training_cv": cv, "external": p_ex}


def test_metrics_match_sklearn_and_cutoff_comes_from_training_cv(cohorts):
    y, probs = cohorts
    cut = st.youden_cutoffs(probs, y)
    assert (cut["source"] == "training_cv").all()
    m = st.metrics_table(probs, y, cut).set_index(["cohort", "model"])
    for cohort, frame in probs.items():
        for model in frame:
            assert m.loc[(cohort, model), "auc"] == pytest.approx(roc_auc_score(y.loc[frame.index], frame[model]))
    # the external cohort's cut-off is the training-CV Youden cut-off, applied unchanged
    ext = m.loc[("external", "a")]
    pred = (probs["external"]["a"] >= ext["threshold"]).astype(int)
    yy = y.loc[pred.index]
    assert ext["tp"] == int(((pred == 1) & (yy == 1)).sum())
    assert ext["sensitivity"] == pytest.approx(ext["tp"] / yy.sum())
    assert ext["threshold"] == m.loc[("training_cv", "a"), "threshold"]


def test_external_probabilities_never_move_the_cutoff(cohorts):
    y, probs = cohorts
    before = st.youden_cutoffs(probs, y)["threshold"]
    shuffled = dict(probs, external=probs["external"].sample(frac=1, random_state=1).set_axis(probs["external"].index))
    after = st.youden_cutoffs(shuffled, y)["threshold"]
    pd.testing.assert_series_equal(before, after)


def test_delong_matrix_is_the_paired_test(cohorts):
    y, probs = cohorts
    tests, matrix = st.delong_tables(probs["external"], y)
    ref = delong_test(y.loc[probs["external"].index].to_numpy(), probs["external"]["a"].to_numpy(),
                      probs["external"]["b"].to_numpy())
    assert matrix.loc["a", "b"] == matrix.loc["b", "a"] == pytest.approx(ref.p_value)
    assert np.isnan(matrix.loc["a", "a"]) and len(tests) == 1


def test_long_predictions_has_one_row_per_case_and_model(cohorts):
    y, probs = cohorts
    long = st.long_predictions(probs, y)
    assert list(long.columns) == ["case_id", "cohort", "model", "label", "probability"]
    assert len(long) == sum(f.size for f in probs.values())
    assert list(dict.fromkeys(long["cohort"])) == ["training", "training_cv", "external"]


def test_primary_cohort_prefers_external():
    f = pd.DataFrame({"m": [0.1]}, index=["x"])
    assert st.primary_cohort({"training": f, "external": f}) == "external"
    assert st.primary_cohort({"training": f, "training_cv": f}) == "training_cv"


def test_calibration_table_flags_perfect_separation():
    y = pd.Series([0, 0, 0, 1, 1, 1] * 5, index=[f"c{i}" for i in range(30)])
    p = pd.DataFrame({"perfect": np.where(y == 1, 0.9, 0.1) + np.linspace(0, 0.05, 30)}, index=y.index)
    table, results = st.calibration_table({"external": p}, y)
    assert bool(table.loc[0, "perfect_separation"])
    assert ("external", "perfect") in results


def test_center_tables_give_every_validation_center_and_pooled(cohorts):
    y, probs = cohorts
    ext = probs["external"].index
    centers = pd.Series(["C3"] * 25 + ["C4"] * 25, index=ext)
    centers = pd.concat([pd.Series("C1", index=probs["training"].index), centers])
    cut = st.youden_cutoffs(probs, y)
    table, het = st.center_tables(probs, y, centers, cut["threshold"], level=0.95)
    assert set(table["cohort"]) == {"external"}            # training cohorts are not validation samples
    a = table[table["model"] == "a"].set_index("center")
    assert list(a.index) == ["C3", "C4", "pooled"]
    for c in ("C3", "C4"):
        ids = centers.loc[ext].index[centers.loc[ext] == c]
        assert a.loc[c, "auc"] == pytest.approx(roc_auc_score(y.loc[ids], probs["external"].loc[ids, "a"]))
        assert a.loc[c, "n"] == 25
    assert a.loc["pooled", "auc"] == pytest.approx(roc_auc_score(y.loc[ext], probs["external"]["a"]))
    assert "sensitivity" in a.columns and len(het) == 2
    h = het.set_index("model").loc["a"]
    # Cochran's Q of two independent AUCs: (a1 - a2)^2 / (v1 + v2)
    v = a.loc[["C3", "C4"], "auc_se"] ** 2
    assert h["q"] == pytest.approx((a.loc["C3", "auc"] - a.loc["C4", "auc"]) ** 2 / v.sum())
    assert h["df"] == 1 and h["centers_used"] == "C3, C4"


def test_roc_bands_cover_the_curve_and_are_reproducible(cohorts):
    from sklearn.metrics import roc_curve

    y, probs = cohorts
    bands = st.roc_bands(probs, y, ["a"], seed=1, n_boot=200)
    ext = bands[(bands["cohort"] == "external") & (bands["model"] == "a")]
    assert len(ext) == 101 and (ext["tpr_low"] <= ext["tpr_high"]).all()
    fpr, tpr, _ = roc_curve(y.loc[probs["external"].index], probs["external"]["a"])
    mid = np.interp(ext["fpr"], fpr, tpr)
    inside = ((ext["tpr_low"] - 1e-9 <= mid) & (mid <= ext["tpr_high"] + 1e-9)).mean()
    assert inside > 0.9
    pd.testing.assert_frame_equal(bands, st.roc_bands(probs, y, ["a"], seed=1, n_boot=200))
    assert not ext["tpr_low"].equals(st.roc_bands(probs, y, ["a"], seed=2, n_boot=200)
                                     .query("cohort == 'external'")["tpr_low"].reset_index(drop=True))


# -- patients, not images ---------------------------------------------------------------------------
def _several_images_per_patient(cohorts):
    """The fixture's cases grouped three by three into patients (a patient's images share a label)."""
    y, probs = cohorts
    patients = pd.Series([f"pt{i // 3}" for i in range(len(y))], index=y.index)
    y = y.groupby(patients).transform("first")
    return y, probs, patients


def test_one_image_per_patient_leaves_every_table_unchanged(cohorts):
    y, probs = cohorts
    one_each = pd.Series([f"pt{i}" for i in range(len(y))], index=y.index)
    cut = st.youden_cutoffs(probs, y)
    pd.testing.assert_frame_equal(st.metrics_table(probs, y, cut, groups=one_each), st.metrics_table(probs, y, cut))
    for with_groups, without in zip(st.delong_tables(probs["external"], y, groups=one_each),
                                    st.delong_tables(probs["external"], y)):
        pd.testing.assert_frame_equal(with_groups, without)
    centers = pd.Series(np.where(np.arange(len(y)) % 2, "A", "B"), index=y.index)
    thresholds = cut["threshold"].astype(float)
    for with_groups, without in zip(st.center_tables(probs, y, centers, thresholds, groups=one_each),
                                    st.center_tables(probs, y, centers, thresholds)):
        pd.testing.assert_frame_equal(with_groups, without)
    assert st.clustering_note(probs, one_each) is None


def test_several_images_per_patient_get_clustered_intervals_and_tests(cohorts):
    from sonorad.evaluation import roc_auc_ci

    y, probs, patients = _several_images_per_patient(cohorts)
    cut = st.youden_cutoffs(probs, y)
    m = st.metrics_table(probs, y, cut, groups=patients).set_index(["cohort", "model"])
    naive = st.metrics_table(probs, y, cut).set_index(["cohort", "model"])
    ext = probs["external"]
    ref = roc_auc_ci(y.loc[ext.index], ext["a"], cluster=patients.loc[ext.index])
    assert ref.method == "obuchowski"
    assert (m.loc[("external", "a"), "auc_low"], m.loc[("external", "a"), "auc_high"]) == (ref.low, ref.high)
    assert m.loc[("external", "a"), "auc_low"] != naive.loc[("external", "a"), "auc_low"]
    pd.testing.assert_series_equal(m["auc"], naive["auc"])          # the estimate itself is unchanged
    tests, matrix = st.delong_tables(ext, y, groups=patients)
    clustered = delong_test(y.loc[ext.index], ext["a"], ext["b"], cluster=patients.loc[ext.index])
    assert matrix.loc["a", "b"] == clustered.p_value
    assert clustered.p_value != delong_test(y.loc[ext.index], ext["a"], ext["b"]).p_value
    centers = pd.Series("A", index=y.index)
    by_center, _ = st.center_tables(probs, y, centers, cut["threshold"].astype(float), groups=patients)
    row = by_center.set_index(["cohort", "model", "center"]).loc[("external", "a", "A")]
    assert row["auc_se"] == pytest.approx(ref.se)
    note = st.clustering_note(probs, patients)
    assert "Obuchowski" in note and "external 50 images of 18 patients" in note
    with pytest.raises(ValueError, match="no patient id"):
        st.metrics_table(probs, y, cut, groups=patients.iloc[:-1])


def test_the_evaluate_stage_passes_patients_to_every_auc_interval_and_test(cohorts):
    from sonorad.pipeline import stages

    y, probs, patients = _several_images_per_patient(cohorts)
    clustered = stages.evaluate(probs, y, cv_auc=None, highlight=("a",), level=0.95, seed=0, groups=patients)
    naive = stages.evaluate(probs, y, cv_auc=None, highlight=("a",), level=0.95, seed=0)
    pd.testing.assert_frame_equal(clustered.metrics, st.metrics_table(probs, y, st.youden_cutoffs(probs, y),
                                                                      groups=patients))
    assert clustered.delong_matrix.loc["a", "b"] != naive.delong_matrix.loc["a", "b"]
    assert any("Obuchowski" in n for n in clustered.notes) and not any("Obuchowski" in n for n in naive.notes)


def test_training_cv_interval_is_the_fold_corrected_t_interval_around_the_pooled_auc(cohorts):
    from scipy import stats

    y, probs = cohorts
    cut = st.youden_cutoffs(probs, y)
    folds = pd.Series(np.arange(80) % 5, index=probs["training_cv"].index)
    plain = st.metrics_table(probs, y, cut).set_index(["cohort", "model"])
    fixed = st.metrics_table(probs, y, cut, cv_folds=folds).set_index(["cohort", "model"])
    row = fixed.loc[("training_cv", "a")]
    # by hand: per-fold AUCs, their sample variance S2, (1/K + n_test/n_train) S2, a t(K-1) quantile
    p, yy = probs["training_cv"]["a"], y.loc[folds.index]
    aucs = np.array([roc_auc_score(yy[folds == k], p[folds == k]) for k in range(5)])
    ratio = np.mean([(folds == k).sum() / (folds != k).sum() for k in range(5)])
    half = stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + ratio) * aucs.var(ddof=1))
    assert row["auc"] == plain.loc[("training_cv", "a"), "auc"]          # the estimate stays the pooled AUC
    assert row["auc_low"] == pytest.approx(max(0.0, row["auc"] - half), abs=1e-12)
    assert row["auc_high"] == pytest.approx(min(1.0, row["auc"] + half), abs=1e-12)
    assert "Nadeau & Bengio" in row["auc_ci_method"]
    assert row["auc_high"] - row["auc_low"] > plain.loc[("training_cv", "a"), "auc_high"] - plain.loc[
        ("training_cv", "a"), "auc_low"]
    # every other row keeps its DeLong interval
    others = [i for i in fixed.index if i[0] != "training_cv"]
    pd.testing.assert_frame_equal(fixed.loc[others], plain.loc[others])
    assert set(plain["auc_ci_method"]) == {"DeLong"}


def test_cv_folds_are_the_folds_cross_validate_uses():
    from sonorad.pipeline import stages

    ids = [f"c{i}" for i in range(30)]
    X = pd.DataFrame({"x": np.arange(30.0)}, index=ids)
    y = pd.Series([0, 1] * 15, index=ids)
    groups = pd.Series([f"p{i // 2}" for i in range(30)], index=ids)
    fold = stages.cv_folds(X, y, groups, folds=3, seed=0)
    assert sorted(fold.unique()) == [0, 1, 2]
    assert (fold.groupby(groups).nunique() == 1).all()                   # a patient stays in one fold

    class _Design:
        def fit(self, X, y, groups, columns):
            return self

        def predict_proba(self, X):
            return pd.DataFrame({"m": fold.loc[X.index].astype(float)}, index=X.index)

    seen = []

    class _Recorder(_Design):
        def predict_proba(self, X):
            seen.append(set(X.index))
            return super().predict_proba(X)

    stages.cross_validate(_Recorder(), X, y, groups, columns=None, folds=3, seed=0)
    assert seen == [set(fold.index[fold == k]) for k in range(3)]
