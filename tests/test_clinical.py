"""Clinical / US variable encoding and odds-ratio tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.clinical import ClinicalEncoder, multivariable_logistic, univariable_logistic
from sonorad.errors import ConfigError

TYPES = {"age": "continuous", "edge": "binary", "echo": "categorical", "birads": "ordinal"}


def table():
    return pd.DataFrame(
        {"age": [40.0, 50.0, np.nan, 70.0], "edge": ["smooth", "irregular", "smooth", None],
         "echo": ["hypo", "iso", "hyper", "hypo"], "birads": [3, 4, 5, 4]},
        index=pd.Index(["c1", "c2", "c3", "c4"], name="case_id"))


def test_encoding_imputation_and_indicators_from_training():
    enc = ClinicalEncoder(TYPES, categories={"echo": ["hypo", "iso", "hyper"]}).fit(table())
    out = enc.transform(table())
    assert list(out.columns) == ["age", "edge", "echo_iso", "echo_hyper", "birads", "age_missing", "edge_missing"]
    assert out.loc["c3", "age"] == 50.0  # training median of 40, 50, 70
    assert out.loc["c3", "age_missing"] == 1.0 and out.loc["c1", "age_missing"] == 0.0
    assert out["edge"].tolist() == [1.0, 0.0, 1.0, 1.0]  # levels sorted: irregular=0, smooth=1; mode fills c4
    assert out[["echo_iso", "echo_hyper"]].to_numpy().tolist() == [[0, 0], [1, 0], [0, 1], [0, 0]]
    new = pd.DataFrame({"age": [np.nan], "edge": ["irregular"], "echo": ["iso"], "birads": [2]}, index=["x1"])
    assert enc.transform(new).loc["x1", "age"] == 50.0  # imputed with the training median, not the new cohort's


def test_unseen_level_and_bad_value_name_the_case():
    enc = ClinicalEncoder(TYPES).fit(table())
    bad = table().copy()
    bad.loc["c2", "echo"] = "anechoic"
    with pytest.raises(ValueError, match=r"'echo'.*anechoic.*c2"):
        enc.transform(bad)
    bad = table().copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc["c4", "age"] = "seventy"
    with pytest.raises(ValueError, match=r"'age'.*c4"):
        ClinicalEncoder(TYPES).fit(bad)
    with pytest.raises(ConfigError, match="size"):
        ClinicalEncoder({"size": "continuous"}).fit(table())


def test_univariable_or_equals_two_by_two_table():
    # a=30 exposed cases, b=10 exposed controls, c=20 unexposed cases, d=40 unexposed controls
    x = np.r_[np.ones(40), np.zeros(60)]
    y = np.r_[np.ones(30), np.zeros(10), np.ones(20), np.zeros(40)]
    X = pd.DataFrame({"calcification": x})
    res = univariable_logistic(X, y).to_frame().loc["calcification"]
    a, b, c, d = 30, 10, 20, 40
    assert res["odds_ratio"] == pytest.approx(a * d / (b * c), rel=1e-6)
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert res["ci_low"] == pytest.approx(np.exp(np.log(6) - 1.959964 * se), rel=1e-5)
    assert res["ci_high"] == pytest.approx(np.exp(np.log(6) + 1.959964 * se), rel=1e-5)
    from scipy.stats import norm

    assert res["p_value"] == pytest.approx(2 * norm.sf(np.log(6) / se), rel=1e-5)


def test_multivariable_matches_statsmodels_and_prints():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.normal(60, 10, 200), "edge": rng.integers(0, 2, 200).astype(float)})
    eta = -6 + 0.1 * X["age"] + 1.0 * X["edge"]
    y = (rng.random(200) < 1 / (1 + np.exp(-eta))).astype(int)
    table_ = multivariable_logistic(X, y)
    ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0)
    np.testing.assert_allclose(table_.odds_ratio, np.exp(ref.params[["age", "edge"]]), rtol=1e-8)
    np.testing.assert_allclose(table_.p_value, ref.pvalues[["age", "edge"]], rtol=1e-8)
    assert "multivariable" in str(table_) and table_.n == 200


def test_ordinal_levels_and_study_file_variables():
    from sonorad.study import StudyConfig

    cfg = StudyConfig.from_dict({
        "name": "t", "label": {"positive": 1},
        "variables": {"age": {"type": "numeric", "role": "clinical"},
                      "sex": {"type": "binary", "levels": ["female", "male"], "role": "clinical"},
                      "adler": {"type": "ordinal", "order": [0, 1, 2, 3], "role": "ultrasound"},
                      "calcification": {"type": "binary", "role": "ultrasound"}}})
    us = ClinicalEncoder.from_study(cfg.variables, role="ultrasound")
    assert us.variables == {"adler": "ordinal", "calcification": "binary"}
    X = pd.DataFrame({"adler": [0.0, 3.0, np.nan, 2.0, 1.0], "calcification": [1, 1, 1, 1, 1]},
                     index=[f"c{i}" for i in range(5)])
    out = us.fit_transform(X)
    assert out["adler"].tolist() == [0.0, 3.0, 1.5, 2.0, 1.0]  # codes by declared order; median fill
    assert out["calcification"].tolist() == [1.0] * 5  # 0/1 column with one value seen still maps 1 -> 1
    clinical = ClinicalEncoder.from_study(cfg.variables, role="clinical").fit(
        pd.DataFrame({"age": [50, 60], "sex": ["male", "female"]}))
    assert clinical.transform(pd.DataFrame({"age": [55], "sex": ["female"]})).to_numpy().tolist() == [[55.0, 0.0]]
    with pytest.raises(ValueError, match=r"'adler'.*\['7'\].*c9"):
        us.transform(pd.DataFrame({"adler": [7], "calcification": [0]}, index=["c9"]))


def test_docstring_example():
    import doctest

    import sonorad.clinical

    assert doctest.testmod(sonorad.clinical).failed == 0


def _birads_encoder(kind="ordinal"):
    X = pd.DataFrame({"birads": [2, 3, 4, 5, 3, None], "edge": ["smooth", "irregular", "smooth", "irregular",
                                                                "smooth", "smooth"]})
    enc = ClinicalEncoder({"birads": kind, "edge": "binary"},
                          {"birads": [2, 3, 4, 5], "edge": ["smooth", "irregular"]}).fit(X)
    return X, enc


def test_decode_value_shows_the_level_not_its_code():
    from sonorad.clinical import decode_value

    X, enc = _birads_encoder()
    coded = enc.transform(X)
    assert [decode_value(enc, "birads", v) for v in coded["birads"][:4]] == ["2", "3", "4", "5"]
    assert decode_value(enc, "edge", 0.0) == "smooth" and decode_value(enc, "edge", 1.0) == "irregular"
    assert decode_value(enc, "birads_missing", 1.0) == "missing"
    assert decode_value(enc, "birads", 1.5) == "between 3 and 4 (imputed)"
    assert decode_value(enc, "age", 54.25) == "54.25"
    _, cat = _birads_encoder("categorical")
    assert decode_value([cat], "birads_4", 1.0) == "4" and decode_value(cat, "birads_4", 0.0) == "not 4"


def test_odds_ratio_tables_name_the_levels_compared():
    from sonorad.clinical import term_label

    _, enc = _birads_encoder()
    assert term_label(enc, "birads") == "birads (per level: 2 < 3 < 4 < 5)"
    assert term_label(enc, "edge") == "edge: irregular vs smooth"
    _, cat = _birads_encoder("categorical")
    assert term_label(cat, "birads_5") == "birads: 5 vs 2"
    rng = np.random.default_rng(3)
    raw = pd.DataFrame({"birads": rng.choice([2, 3, 4, 5], 120), "edge": rng.choice(["smooth", "irregular"], 120)})
    y = (rng.random(120) < 0.2 + 0.15 * (raw.birads - 2)).astype(int)
    X = enc.transform(raw)
    X = X[["birads", "edge"]]
    uni = univariable_logistic(X, y, encoder=enc).to_frame()
    assert uni.loc["edge", "term"] == "edge: irregular vs smooth"
    multi = multivariable_logistic(X[["birads", "edge"]], y, encoder=enc).to_frame()
    assert multi.loc["birads", "term"].startswith("birads (per level")
    assert "term" not in univariable_logistic(X, y).to_frame()
