"""sonorad.pipeline.preflight: what would fail after extraction is found before it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from sonorad.errors import CohortError
from sonorad.pipeline import stages
from sonorad.pipeline.preflight import DEFAULT_R2_SHARE, preflight, riley_sample_size
from sonorad.study import StudyConfig


def test_riley_sample_size_matches_the_published_binary_example():
    # Riley et al. 2020 (BMJ 368:m441) and pmsampsize(type = "b", rsquared = 0.288, parameters = 24,
    # prevalence = 0.174): criterion 1 (shrinkage 0.9) 623 cases, i.e. 109 events; criterion 2 (optimism
    # in Nagelkerke R² <= 0.05) 662; criterion 3 (intercept within 0.05) 221; minimum 662 with 116 events.
    size = riley_sample_size(0.174, 24, 0.288)
    assert size.criteria["n"].tolist() == [623, 662, 221]
    assert math.ceil(623 * 0.174) == 109
    assert (size.n, size.events) == (662, 116) and round(size.epp, 1) == 4.8
    assert size.max_r2_cs == pytest.approx(0.603, abs=5e-4) and size.r2_cs / size.max_r2_cs == pytest.approx(0.477,
                                                                                                          abs=5e-4)
    assert "662 cases with 116 events" in size.sentence()


def test_without_a_declared_r2_the_conservative_default_is_15_percent_of_its_maximum():
    size = riley_sample_size(0.3, 10)
    max_r2 = 1 - math.exp(2 * (0.3 * math.log(0.3) + 0.7 * math.log(0.7)))
    assert size.r2_cs == pytest.approx(DEFAULT_R2_SHARE * max_r2) and not size.r2_declared
    # criterion 1 by hand
    assert size.criteria["n"].iloc[0] == math.ceil(10 / ((0.9 - 1) * math.log(1 - size.r2_cs / 0.9)))
    assert "the conservative default" in size.sentence()
    with pytest.raises(ValueError, match="prevalence"):
        riley_sample_size(0, 10)


def _cohort(n=60, seed=0):
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"c{i:03d}" for i in range(n)], name="case_id")
    parts = pd.Series(np.where(np.arange(n) < 40, "train", "external"), index=ids)
    y = pd.Series(rng.integers(0, 2, n), index=ids)
    table = pd.DataFrame({"center": np.where(parts == "train", "A", "B"), "age": rng.normal(50, 10, n),
                          "birads": rng.choice(["3", "4", "5"], n), "edge": rng.choice(["0", "1"], n)}, index=ids)
    return table, parts, y


def _study(variables, **sections):
    return StudyConfig.from_dict({"name": "s", "label": {"positive": 1}, "variables": variables, **sections})


VARIABLES = {"age": {"type": "numeric", "role": "clinical"},
             "birads": {"type": "ordinal", "order": [3, 4, 5], "role": "ultrasound"},
             "edge": {"type": "binary", "role": "ultrasound"}}


def test_a_declared_variable_without_a_training_value_is_an_error_naming_it_and_the_fix():
    table, parts, y = _cohort()
    table.loc[parts == "train", "age"] = np.nan  # age only at the external site
    checked = preflight(table, parts, y, _study(VARIABLES))
    [error] = checked.errors
    assert error.column == "age" and "no value in any of the 40 training cases" in error.message
    assert "training center(s) A" in error.message and "20 validation case(s) only" in error.message
    assert "remove variables.age" in error.fix


def test_levels_the_models_cannot_encode_are_errors_before_extraction():
    table, parts, y = _cohort()
    table["edge"] = np.random.default_rng(1).choice(["a", "b", "c"], len(table))  # binary with 3 values
    table["grade"] = np.random.default_rng(2).choice(["low", "mid", "high"], len(table))  # "mid" not in its order
    table.loc[parts != "train", "site"] = "elbow"  # a level training never held
    table.loc[parts == "train", "site"] = np.random.default_rng(3).choice(["arm", "leg"], 40)
    variables = {**VARIABLES, "grade": {"type": "ordinal", "order": ["low", "high"]}, "site": {"type": "categorical"}}
    checked = preflight(table, parts, y, _study(variables))
    assert sorted(p.column for p in checked.errors) == ["edge", "grade", "site"]
    messages = {p.column: p.message for p in checked.errors}
    assert "declared binary" in messages["edge"] and "['mid'] not among its levels" in messages["grade"]
    assert "'elbow'" in messages["site"] and "validation cases" in messages["site"]


def test_events_per_variable_and_riley_sample_size_are_reported_and_warned_below_the_floor():
    table, parts, y = _cohort()
    checked = preflight(table, parts, y, _study(VARIABLES))
    events = int(y[parts == "train"].sum())
    # age 1 + birads 1 (ordinal code) + edge 1, plus the score-fusion design's Rad-score and DL-score
    assert checked.parameters == 5 and checked.encoded == {"age": 1, "birads": 1, "edge": 1}
    assert checked.epv == pytest.approx(min(events, 40 - events) / 5)
    assert any(line.startswith("events per variable:") for line in checked.lines)
    assert checked.sample_size.n == riley_sample_size(events / 40, 5).n
    warnings = " ".join(p.message for p in checked.warnings)
    assert "below 10" in warnings and "smaller than Riley's minimum sample size" in warnings
    assert not checked.errors


def test_a_nomogram_without_a_logistic_model_is_warned():
    table, parts, y = _cohort()
    study = _study(VARIABLES, models={"design": "score_fusion", "models": ["svm", "knn"]})
    assert any(p.column == "evaluation.nomogram" for p in preflight(table, parts, y, study).warnings)
    study = _study(VARIABLES, models={"design": "score_fusion", "models": ["svm"]}, evaluation={"nomogram": False})
    assert not any(p.column == "evaluation.nomogram" for p in preflight(table, parts, y, study).warnings)


def test_the_validate_stage_stops_on_a_variable_with_no_training_value(tmp_path):
    from sonorad.synthetic import make_cohort

    csv = make_cohort(tmp_path / "cohort", scenario="clnm", seed=5, n_patients=12)
    table = pd.read_csv(csv)
    table.loc[table["center"].isin(["C1", "C2"]), "age"] = np.nan
    table.to_csv(csv, index=False)
    study = {"name": "tiny", "cohort": str(csv), "label": {"positive": 1},
             "variables": {"age": {"type": "numeric", "role": "clinical"}},
             "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    from sonorad.study import load_study

    with pytest.raises(CohortError, match=r"'age' has no value in any of the \d+ training cases"):
        stages.validate(load_study(path))
    # with the values back, validate passes and says the events per variable
    table["age"] = 50.0
    table.to_csv(csv, index=False)
    lines = []
    cohort, _ = stages.validate(load_study(path), say=lines.append)
    assert any("events per variable" in line for line in lines)
    assert any("events per candidate predictor" in str(w) for w in cohort.warnings)
