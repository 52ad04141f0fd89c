"""Site recalibration of a bundle: the maps, the new bundle, AUC unchanged, the local validation."""

from __future__ import annotations

import json

import numpy as np
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
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "isotonic on 40 local cases" in text and "after (cross-validated)" in text
    new = load_bundle(out)
    assert new.manifest["recalibration"]["method"] == "isotonic"
    q = new.predict(local, models=["rad_clin/logistic_regression"], explain=False,
                    cache=small_bundle.cache).probabilities()["rad_clin/logistic_regression"]
    assert q.between(0, 1).all()
