"""Site recalibration of a bundle: the maps, the new bundle, AUC unchanged, the local validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sonorad.bundle import BundleError, load_bundle
from sonorad.bundle.recalibrate import RecalibratedModel, fit_recalibration, recalibrate_bundle


def _miscalibrated(seed=0, n=400):
    rng = np.random.default_rng(seed)
    lp = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    p = 1 / (1 + np.exp(-(2.0 + 0.5 * lp)))        # too high and too flat: true intercept -4, slope 2
    return y, p


def test_logistic_map_recovers_the_generating_intercept_and_slope():
    y, p = _miscalibrated()
    params = fit_recalibration(y, p, "logistic")
    assert params["slope"] == pytest.approx(2.0, abs=0.4)
    assert params["intercept"] == pytest.approx(-4.0, abs=0.8)
    q = RecalibratedModel(None, **params).transform_proba(p)
    assert abs(q.mean() - y.mean()) < 0.01          # ML logistic fit: mean prediction = event rate


def test_intercept_map_matches_calibration_in_the_large():
    y, p = _miscalibrated(1)
    params = fit_recalibration(y, p, "intercept")
    assert params["slope"] == 1.0
    q = RecalibratedModel(None, **params).transform_proba(p)
    # the offset-only logistic fit's score equation: sum(y - q) = 0
    assert np.sum(y - q) == pytest.approx(0.0, abs=1e-6)


def test_isotonic_map_is_monotone_and_a_negative_slope_is_refused():
    y, p = _miscalibrated(2)
    q = RecalibratedModel(None, **fit_recalibration(y, p, "isotonic")).transform_proba(np.sort(p))
    assert np.all(np.diff(q) >= 0) and q.min() >= 0 and q.max() <= 1
    with pytest.raises(ValueError, match="slope"):
        fit_recalibration(y, 1 - p, "logistic")
    with pytest.raises(ValueError, match="one outcome class"):
        fit_recalibration(np.zeros(10, int), p[:10], "intercept")


@pytest.fixture(scope="module")
def local(small_bundle):
    """The bundle's cohort as a labelled local sample (40 cases, 11 events; the external centers alone have
    3 events, too few to cross-validate a calibration slope)."""
    return small_bundle.table


@pytest.mark.slow
@pytest.mark.parametrize("method", ["intercept", "logistic"])
def test_new_bundle_records_the_recalibration_and_keeps_the_auc(small_bundle, local, tmp_path, method):
    out = tmp_path / "recal"
    # the random forest gives probabilities of exactly 0 / 1 and separates small folds: intercept only
    models = ["rad_clin/logistic_regression"] + (["rad_clin/random_forest"] if method == "intercept" else [])
    result = recalibrate_bundle(small_bundle.path, local, method=method, out=out, folds=3, models=models,
                                cache=small_bundle.cache)
    old, new = load_bundle(small_bundle.path), load_bundle(out)       # loads: the new class is trusted
    record = json.loads((out / "recalibration.json").read_text())
    assert record["method"] == method and record["original_bundle_sha256"] == old.sha256
    assert record["n_cases"] == len(local) and record["n_events"] == int(local["label"].astype(int).sum())
    assert new.manifest["recalibration"]["n_cases"] == len(local) and new.card["recalibration"]["method"] == method
    assert isinstance(new.model("rad_clin/logistic_regression"), RecalibratedModel)
    assert not isinstance(new.model("radiomics/knn"), RecalibratedModel)      # not asked: copied unchanged
    before = old.predict(local, explain=False, cache=small_bundle.cache).probabilities()
    after = new.predict(local, explain=False, cache=small_bundle.cache).probabilities()
    y = local["label"].astype(int).loc[before.index]
    for model in models:
        assert not np.allclose(before[model], after[model])
        assert roc_auc_score(y, after[model]) == pytest.approx(roc_auc_score(y, before[model]), abs=1e-12)
        # the same cases stay above the mapped cut-off
        assert ((before[model] >= old.cutoffs[model]) == (after[model] >= new.cutoffs[model])).all()
    np.testing.assert_allclose(after["radiomics/knn"], before["radiomics/knn"])
    if method == "logistic":
        np.testing.assert_allclose(after["rad_clin/random_forest"], before["rad_clin/random_forest"])
    # after recalibration on this sample, the mean prediction matches the event rate (apparent)
    assert after["rad_clin/logistic_regression"].mean() == pytest.approx(y.mean(), abs=0.02)
    v = result.validation.set_index(["model", "predictions"])
    assert set(v.index.get_level_values("predictions")) == {"before", "after (cross-validated)", "after (apparent)"}
    report = (out / "recalibration" / "report.md").read_text()
    assert "cross-validated" in report and old.sha256 in report
    assert (out / "recalibration" / "calibration_rad_clin_logistic_regression.png").exists()
    assert not any(cid in report for cid in local.index)          # aggregate numbers only


@pytest.mark.slow
def test_refuses_an_unlabelled_sample_and_a_foreign_out_folder(small_bundle, local, tmp_path):
    with pytest.raises(BundleError, match="label"):
        recalibrate_bundle(small_bundle.path, local.drop(columns="label"), method="intercept", out=tmp_path / "a",
                           cache=small_bundle.cache)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not a sonorad bundle"):
        recalibrate_bundle(small_bundle.path, local, method="intercept", out=other, cache=small_bundle.cache)
    assert (other / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_cli_isotonic_writes_a_loadable_bundle(small_bundle, local, tmp_path, capsys):
    from sonorad.cli import main

    csv = tmp_path / "local.csv"
    local.to_csv(csv, index=False)
    out = tmp_path / "iso"
    assert main(["recalibrate", str(small_bundle.path), str(csv), "--method", "isotonic", "--out", str(out),
                 "--folds", "3", "--models", "rad_clin/logistic_regression", "--cache", str(small_bundle.cache),
                 "--quiet"]) == 2                               # isotonic steps on 3 folds of 40 cases rank
    assert "cross-validated calibration slope is" in capsys.readouterr().err     # held-out cases backwards
    assert not out.exists()
    assert main(["recalibrate", str(small_bundle.path), str(csv), "--method", "isotonic", "--out", str(out),
                 "--folds", "3", "--models", "rad_clin/logistic_regression", "--cache", str(small_bundle.cache),
                 "--quiet", "--force"]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "WARNING (written with --force)" in captured.err
    assert "Warning: written with --force" in (out / "recalibration" / "report.md").read_text()
    assert "isotonic on 40 local cases" in text and "after (cross-validated)" in text
    new = load_bundle(out)
    assert new.manifest["recalibration"]["method"] == "isotonic"
    q = new.predict(local, models=["rad_clin/logistic_regression"], explain=False,
                    cache=small_bundle.cache).probabilities()["rad_clin/logistic_regression"]
    assert q.between(0, 1).all()


# -- small and hostile local samples ---------------------------------------------------------------
def _twenty_with_five_events(table):
    """20 cases, 5 events, drawn so that one cross-validation fold's slope cannot be estimated."""
    rng = np.random.default_rng(3)
    events = rng.choice(table.index[table["label"].astype(int) == 1], 5, replace=False)
    others = rng.choice(table.index[table["label"].astype(int) == 0], 15, replace=False)
    return table.loc[list(events) + list(others)].copy()


def test_a_fold_whose_map_cannot_be_fitted_is_not_computable_and_the_others_go_on():
    from sonorad.bundle.recalibrate import cross_validated

    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])               # both events in fold 1
    p = np.array([0.9, 0.5, 0.7, 0.2, 0.1, 0.3, 0.75, 0.2, 0.4, 0.15, 0.8, 0.1])
    splits = [(np.arange(4, 12), np.arange(0, 4)), (np.r_[0:4, 8:12], np.arange(4, 8)),
              (np.arange(0, 8), np.arange(8, 12))]
    oof, notes = cross_validated(y, p, splits, "logistic")
    assert notes == ["fold 1 of 3 (4 cases): not computable (the local sample has one outcome class only (all 0); "
                     "recalibration needs both)"]
    assert np.isnan(oof[:4]).all() and np.isfinite(oof[4:]).all()     # the other folds go on


def test_the_sample_check_names_what_is_needed_before_any_fold_is_made():
    from sonorad.bundle.recalibrate import check_sample

    y = np.r_[np.ones(19, int), 0]
    with pytest.raises(BundleError, match=r"19 event\(s\) from 19 patient\(s\) and 1 non-event\(s\) from 1 "
                                          r"patient.*at least 2 events and 2 non-events, each from at least 2 patients"):
        check_sample(y, np.arange(20).astype(str), 5)
    one_patient = np.array(["p1"] * 20, dtype=object)
    with pytest.raises(BundleError, match=r"from 1 patient\(s\).*from 1 patient\(s\)"):
        check_sample(np.r_[np.ones(10, int), np.zeros(10, int)], one_patient, 5)
    assert check_sample(np.r_[np.ones(3, int), np.zeros(17, int)], np.arange(20).astype(str), 5) == 3


def test_logistic_on_twenty_cases_with_five_events_and_an_empty_label_cell(small_bundle, tmp_path):
    local = _twenty_with_five_events(small_bundle.table)
    unused = small_bundle.table.index.difference(local.index)[0]
    local = pd.concat([local, small_bundle.table.loc[[unused]].assign(label=None)])
    result = recalibrate_bundle(small_bundle.path, local, method="logistic", out=tmp_path / "recal", folds=5,
                                models=["rad_clin/logistic_regression"], cache=small_bundle.cache)
    excluded = result.excluded.set_index("case_id")
    assert list(excluded.index) == [unused] and "no label" in excluded.at[unused, "error"]
    assert result.record["n_cases"] == 20 and result.record["n_events"] == 5
    cv = result.validation.set_index("predictions").loc["after (cross-validated)"]
    assert "fold" in cv["note"] and "not computable" in cv["note"]        # that fold, not the run
    assert 0 < cv["n"] < 20 and np.isfinite(cv["auc"])                        # the other folds' cases
    report = (tmp_path / "recal" / "recalibration" / "report.md").read_text()
    assert "not computable" in report
    assert load_bundle(tmp_path / "recal").manifest["recalibration"]["n_cases"] == 20


def test_one_patient_or_one_non_event_is_refused_before_scoring(small_bundle, tmp_path, monkeypatch):
    from sonorad.bundle import Bundle

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored before the sample was checked")

    monkeypatch.setattr(Bundle, "predict", no_scoring)
    local = small_bundle.table.copy()
    local["patient_id"] = "P1"
    with pytest.raises(BundleError, match="from 1 patient"):
        recalibrate_bundle(small_bundle.path, local, method="intercept", out=tmp_path / "a")
    local = small_bundle.table.copy()
    local["label"] = 1
    local.loc[local.index[0], "label"] = 0
    with pytest.raises(BundleError, match=r"1 non-event\(s\) from 1 patient"):
        recalibrate_bundle(small_bundle.path, local, method="intercept", out=tmp_path / "b")


@pytest.mark.slow
def test_a_model_that_ranks_the_site_backwards_is_refused_and_exact_zeros_and_ones_are_counted(small_bundle,
                                                                                             tmp_path):
    local = small_bundle.table.copy()
    local["label"] = 1 - local["label"].astype(int)                  # the site's outcome runs the other way
    models = ["rad_clin/random_forest"]                              # probabilities of exactly 0 and 1
    with pytest.raises(BundleError, match=r"local AUC is 0\.\d+ \(below 0\.5\).*--force"):
        recalibrate_bundle(small_bundle.path, local, method="intercept", out=tmp_path / "a", models=models,
                           folds=3, cache=small_bundle.cache)
    assert not (tmp_path / "a").exists()
    result = recalibrate_bundle(small_bundle.path, local, method="intercept", out=tmp_path / "b", models=models,
                                folds=3, cache=small_bundle.cache, force=True)
    p = load_bundle(small_bundle.path).predict(local, models=models, explain=False,
                                               cache=small_bundle.cache).probabilities()[models[0]]
    n_exact = int(((p == 0) | (p == 1)).sum())
    assert n_exact > 0
    before = result.validation.set_index("predictions").at["before", "note"]
    assert f"{n_exact} of {len(p)} probabilities are exactly 0" in before and "clipped to [1e-06" in before
    report = (tmp_path / "b" / "recalibration" / "report.md").read_text()
    assert "written with --force" in report and "below 0.5" in report and f"{n_exact} of {len(p)}" in report


def test_a_predictor_missing_for_the_whole_local_sample_is_in_the_report_once(small_bundle, tmp_path):
    local = small_bundle.table.assign(age=np.nan)
    result = recalibrate_bundle(small_bundle.path, local, method="intercept", out=tmp_path / "r", folds=3,
                                models=["rad_clin/logistic_regression"], cache=small_bundle.cache, force=True)
    notes = result.record["notes"]["local sample"]
    assert len([n for n in notes if n.startswith("age is missing for every case of the batch")]) == 1
    report = (tmp_path / "r" / "recalibration" / "report.md").read_text()
    assert report.count("age is missing for every case") == 1 and "(the chosen model)" in report
