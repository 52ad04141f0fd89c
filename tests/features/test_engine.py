"""The extraction engine: tasks, cache keys, running tasks, failures (sonorad.features.engine)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonorad.errors import FAILURE_COLUMNS, ConfigError
from sonorad.features.engine import (
    Case,
    FeatureRows,
    Task,
    as_cache,
    check_jobs,
    cluster_batch_size,
    extract_tasks,
    failure_frame,
    feature_frame,
    radiomics_task,
    run_tasks,
    task_cache_key,
)
from sonorad.features.store import FeatureCache

SMALL = {
    "setting": {"binWidth": 5, "label": 1, "additionalInfo": False},
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": ["Mean"]},
}


class _Bar:
    def __init__(self):
        self.n = 0

    def update(self, n):
        self.n += n


@pytest.fixture
def case(tmp_path):
    rows, cols = np.mgrid[:40, :40]
    mask = (rows - 20) ** 2 + (cols - 20) ** 2 < 100
    pixels = (60 + 80 * mask + (rows % 7)).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(tmp_path / "c1.png")
    Image.fromarray((mask * 255).astype(np.uint8), mode="L").save(tmp_path / "c1_mask.png")
    return Case("c1", str(tmp_path / "c1.png"), (str(tmp_path / "c1_mask.png"),))


def test_cache_key_follows_content_variant_and_parameters(case, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    key = task_cache_key(cache, Task(case), "p1")
    assert key == task_cache_key(cache, Task(case), "p1")
    assert key != task_cache_key(cache, Task(case), "p2")
    assert key != task_cache_key(cache, Task(case, ("perturbed", 1, 0, 2)), "p1")
    assert task_cache_key(cache, Task(Case("c2", case.image, ())), "p1") is None  # no mask
    assert task_cache_key(cache, Task(Case("c3", str(tmp_path / "missing.png"), case.masks)), "p1") is None


def test_radiomics_task_returns_features_or_a_failure(case):
    features, failure = radiomics_task(Task(case), SMALL)
    assert failure is None and features["original_firstorder_Mean"] > 0
    features, failure = radiomics_task(Task(Case("c2", case.image, ())), SMALL)
    assert features is None and "no mask" in failure["error"] and failure["fix"]


def test_run_tasks_in_process_hands_over_every_result():
    results, bar = {}, _Bar()
    run_tasks(lambda x: x * 2, [1, 2, 3], jobs=1, on_result=results.__setitem__, progress_bar=bar)
    assert results == {0: 2, 1: 4, 2: 6} and bar.n == 3


def test_extract_tasks_uses_the_cache_and_records_failures(case, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    tasks = [Task(case), Task(Case("c2", case.image, ()))]
    run = extract_tasks(tasks, SMALL, cache=cache, jobs=1, progress=False, desc="test")
    assert (run.n_cached, run.n_computed) == (0, 2)
    again = extract_tasks(tasks, SMALL, cache=cache, jobs=1, progress=False, desc="test")
    assert (again.n_cached, again.n_computed) == (1, 1)  # failures are never cached
    table = feature_frame(["c1", "c2"], again.features)
    assert list(table.index) == ["c1"] and table.index.name == "case_id"
    failures = failure_frame(["c1", "c2"], again.failures, "radiomics")
    assert list(failures.columns) == FAILURE_COLUMNS and failures["case_id"].tolist() == ["c2"]


def test_feature_rows_share_names_and_fill_missing_columns():
    rows = FeatureRows(3)
    rows.set(0, {"a": 1.0, "b": 2.0})
    rows.set(2, {"a": 3.0, "c": 4.0})
    assert rows.has(0) and not rows.has(1) and rows.get(2) == {"a": 3.0, "c": 4.0}
    frame = rows.frame(["x", "y", "z"], range(3))
    expected = pd.DataFrame({"a": [1.0, 3.0], "b": [2.0, np.nan], "c": [np.nan, 4.0]},
                            index=pd.Index(["x", "z"], name="case_id"))
    pd.testing.assert_frame_equal(frame, expected)


def test_as_cache_check_jobs_and_batch_size(tmp_path):
    assert as_cache(None) is None
    assert isinstance(as_cache(tmp_path), FeatureCache)
    with pytest.raises(TypeError, match="FeatureCache"):
        as_cache(3)
    assert check_jobs(np.int64(2)) == 2
    for bad in (0, True, 1.5):
        with pytest.raises(ConfigError, match="jobs="):
            check_jobs(bad)
    assert cluster_batch_size(1000, 2) == 16
