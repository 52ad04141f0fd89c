"""Cohort extraction: cache, resume, failures, parallel workers, output folder (sonorad.features.extract)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonorad.errors import CohortError, ConfigError
from sonorad.features import engine
from sonorad.features import extract as extract_module
from sonorad.features.extract import extract_radiomics, extract_to_dir
from sonorad.features.radiomics import extract_case
from sonorad.features.store import FeatureCache

SMALL = {
    "setting": {"binWidth": 5, "label": 1, "additionalInfo": False},
    "imageType": {"Original": {}},
    "featureClass": {"shape2D": None, "firstorder": ["Mean", "Entropy"], "glcm": ["Contrast"]},
}


def write_case(folder, case_id, seed, shape=(48, 56)):
    """A gray PNG with a brighter elliptic lesion and its 0/255 mask; returns the two file names."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    r0, c0 = shape[0] / 2 + rng.integers(-4, 5), shape[1] / 2 + rng.integers(-4, 5)
    mask = ((rows - r0) / rng.uniform(8, 14)) ** 2 + ((cols - c0) / rng.uniform(8, 16)) ** 2 < 1
    pixels = np.clip(rng.normal(80, 20, shape) + rng.uniform(20, 60) * mask, 0, 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(folder / f"{case_id}.png")
    Image.fromarray((mask * 255).astype(np.uint8), mode="L").save(folder / f"{case_id}_mask.png")
    return f"{case_id}.png", f"{case_id}_mask.png"


def write_cohort(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        image, mask = write_case(folder, f"c{i}", seed=i)
        rows.append({"case_id": f"c{i}", "patient_id": f"p{i}", "center": "A", "image": image, "mask": mask,
                     "label": i % 2})
    path = folder / "cases.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def read_table(csv):
    from sonorad.cohort import read_cases

    return read_cases(csv)


@pytest.fixture
def cohort(tmp_path):
    return write_cohort(tmp_path / "cohort")


@pytest.fixture
def count_extractions(monkeypatch):
    """Count calls of extract_case made by the (in-process, jobs=1) extraction."""
    calls = []

    def counting(image, mask, params=None, *, case_id=None):
        calls.append(case_id)
        return extract_case(image, mask, params, case_id=case_id)

    monkeypatch.setattr(engine, "extract_case", counting)
    return calls


def test_features_match_extract_case_in_input_order(cohort):
    from sonorad.imaging import load_roi

    table = read_table(cohort).iloc[::-1]
    features, failures = extract_radiomics(table, params=SMALL, progress=False)
    assert failures.empty and list(failures.columns) == ["case_id", "stage", "error", "fix"]
    assert list(features.index) == ["c3", "c2", "c1", "c0"] and features.index.name == "case_id"
    assert (features.dtypes == np.float64).all()
    image, mask = load_roi(table.loc["c1", "image"], table.loc["c1", "mask"], case_id="c1")
    direct = extract_case(image, mask, SMALL)
    assert list(features.columns) == list(direct)
    np.testing.assert_array_equal(features.loc["c1"].to_numpy(), np.array(list(direct.values())))


def test_bad_cases_become_failures_and_the_others_go_on(cohort):
    folder = cohort.parent
    table = read_table(cohort)
    Image.new("L", (20, 20)).save(folder / "small_mask.png")
    table.loc["c1", "mask"] = str(folder / "missing_mask.png")
    table.loc["c2", "mask"] = str(folder / "small_mask.png")
    features, failures = extract_radiomics(table, params=SMALL, progress=False)
    assert list(features.index) == ["c0", "c3"]
    assert list(failures["case_id"]) == ["c1", "c2"] and set(failures["stage"]) == {"radiomics"}
    assert "missing_mask.png" in failures.loc[0, "error"] and failures.loc[0, "fix"]
    assert "size mismatch" in failures.loc[1, "error"] and "20x20" in failures.loc[1, "error"]


def test_second_run_extracts_nothing_new(cohort, tmp_path, count_extractions):
    table = read_table(cohort)
    cache = FeatureCache(tmp_path / "cache")
    first, _ = extract_radiomics(table, params=SMALL, cache=cache, progress=False)
    assert len(count_extractions) == 4 and len(cache) == 4
    second, _ = extract_radiomics(table, params=SMALL, cache=cache, progress=False)
    assert len(count_extractions) == 4
    pd.testing.assert_frame_equal(first, second)
    # other parameters: other entries
    extract_radiomics(table, params={**SMALL, "setting": {"binWidth": 10}}, cache=cache, progress=False)
    assert len(count_extractions) == 8


def test_interrupted_run_resumes_to_the_same_table(cohort, tmp_path, monkeypatch):
    table = read_table(cohort)
    expected, _ = extract_radiomics(table, params=SMALL, progress=False)  # no cache
    calls = []

    def interrupted_at_third(image, mask, params=None, *, case_id=None):
        calls.append(case_id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return extract_case(image, mask, params, case_id=case_id)

    monkeypatch.setattr(engine, "extract_case", interrupted_at_third)
    cache = FeatureCache(tmp_path / "cache")
    with pytest.raises(KeyboardInterrupt):
        extract_radiomics(table, params=SMALL, cache=cache, progress=False)
    assert len(cache) == 2  # the two finished cases were stored as they finished
    resumed, failures = extract_radiomics(table, params=SMALL, cache=cache, progress=False)
    assert calls == ["c0", "c1", "c2", "c2", "c3"]
    assert failures.empty
    pd.testing.assert_frame_equal(resumed, expected)


def test_cache_follows_file_content_not_names(cohort, tmp_path, count_extractions):
    folder = cohort.parent
    table = read_table(cohort)
    cache = FeatureCache(tmp_path / "cache")
    extract_radiomics(table, params=SMALL, cache=cache, progress=False)
    (folder / "c0.png").rename(folder / "renamed.png")
    table.loc["c0", "image"] = str(folder / "renamed.png")
    write_case(folder, "c1", seed=99)  # c1's files now hold another lesion
    features, _ = extract_radiomics(table, params=SMALL, cache=cache, progress=False)
    assert count_extractions[4:] == ["c1"]
    fresh, _ = extract_radiomics(table, params=SMALL, progress=False)
    pd.testing.assert_frame_equal(features, fresh)


def test_two_jobs_give_the_same_table(tmp_path):
    csv = write_cohort(tmp_path / "cohort", n=6)
    table = read_table(csv)
    table.loc["c4", "mask"] = str(tmp_path / "missing.png")
    one, fail_one = extract_radiomics(table, params=SMALL, jobs=1, progress=False)
    two, fail_two = extract_radiomics(table, params=SMALL, jobs=2, cache=tmp_path / "cache", progress=False)
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(fail_one, fail_two)
    assert len(FeatureCache(tmp_path / "cache")) == 5


def test_spacing_column_sets_the_pixel_size_and_is_part_of_the_cache_key(cohort, tmp_path):
    table = read_table(cohort)
    plain, _ = extract_radiomics(table, params=SMALL, cache=tmp_path / "cache", progress=False)
    table["spacing_mm"] = ["0.5", "0.5,0.25", "", 2]
    scaled, _ = extract_radiomics(table, params=SMALL, cache=tmp_path / "cache", progress=False)
    area = "original_shape2D_PixelSurface"
    expected = plain[area] * np.array([0.25, 0.125, 1.0, 4.0])
    np.testing.assert_allclose(scaled[area].to_numpy(), expected.to_numpy(), rtol=1e-12)
    # intensity features do not depend on the pixel size
    np.testing.assert_allclose(scaled["original_firstorder_Mean"], plain["original_firstorder_Mean"])

    table["spacing_mm"] = ["0.5", "-1", "a,b", ""]
    with pytest.raises(CohortError) as info:
        extract_radiomics(table, params=SMALL, progress=False)
    assert [p.case_id for p in info.value.problems] == ["c1", "c2"]
    assert all(p.column == "spacing_mm" for p in info.value.problems)


def test_table_problems(cohort):
    table = read_table(cohort)
    with pytest.raises(CohortError, match="case c0.*more than once"):
        extract_radiomics(pd.concat([table, table.iloc[:1]]), params=SMALL, progress=False)
    with pytest.raises(CohortError, match="'mask' is missing"):
        extract_radiomics(table.drop(columns="mask"), params=SMALL, progress=False)
    with pytest.raises(ConfigError, match="jobs=0"):
        extract_radiomics(table, params=SMALL, jobs=0, progress=False)
    table["frame"] = ["x", None, None, None]
    with pytest.raises(CohortError, match="case c0.*frame"):
        extract_radiomics(table, params=SMALL, progress=False)


def test_extract_to_dir_writes_parquet_failures_and_summary(cohort, tmp_path):
    out = tmp_path / "out"
    summary = extract_to_dir(cohort, out, params=SMALL, progress=False)
    features = pd.read_parquet(out / "radiomics.parquet")
    assert list(features.index) == ["c0", "c1", "c2", "c3"] and features.index.name == "case_id"
    failures = pd.read_csv(out / "failures.csv")
    assert failures.empty and list(failures.columns) == ["case_id", "stage", "error", "fix"]
    assert "4 of 4 cases extracted" in summary and "0 from cache, 4 computed" in summary
    assert (out / ".cache").is_dir()
    again = extract_to_dir(cohort, out, params=SMALL, progress=False)
    assert "4 from cache, 0 computed" in again
    pd.testing.assert_frame_equal(pd.read_parquet(out / "radiomics.parquet"), features)


def test_every_case_failing_still_writes_the_outputs(cohort, tmp_path):
    for png in cohort.parent.glob("*_mask.png"):
        png.unlink()
    out = tmp_path / "out"
    summary = extract_to_dir(cohort, out, params=SMALL, progress=False)
    assert "0 of 4 cases extracted" in summary and "4 failed" in summary
    features = pd.read_parquet(out / "radiomics.parquet")
    assert features.empty and features.index.name == "case_id"
    assert list(pd.read_csv(out / "failures.csv")["case_id"]) == ["c0", "c1", "c2", "c3"]


def test_cli_extract_with_a_deep_backbone(cohort, tmp_path, monkeypatch, capsys):
    """`sonorad extract --deep` calls extract_deep(table, backbone, cache=..., progress=...) per backbone."""
    from sonorad.cli import main

    seen = {}

    def fake_extract_deep(table, backbone, *, cache=None, progress=True):
        seen[backbone] = isinstance(cache, FeatureCache)
        ok = table.index[:-1]
        features = pd.DataFrame(np.arange(len(ok) * 3, dtype=float).reshape(len(ok), 3),
                                index=pd.Index(ok, name="case_id"), columns=[f"{backbone}_{i}" for i in range(3)])
        failures = pd.DataFrame([{"case_id": table.index[-1], "stage": f"deep_{backbone}",
                                  "error": "crop too small", "fix": "check the mask"}])
        return features, failures

    fake = types.ModuleType("sonorad.deep.extractor")
    fake.extract_deep = fake_extract_deep
    monkeypatch.setitem(sys.modules, "sonorad.deep.extractor", fake)
    out = tmp_path / "out"
    (cohort.parent / "c0_mask.png").unlink()
    rc = main(["extract", str(cohort), "--out", str(out), "--deep", "toynet", "--quiet",
               "--cache", str(tmp_path / "shared_cache")])
    assert rc == 0 and seen == {"toynet": True}
    printed = capsys.readouterr().out
    assert "radiomics: 3 of 4 cases extracted" in printed and "deep toynet: 3 of 4" in printed
    assert pd.read_parquet(out / "deep_toynet.parquet").shape == (3, 3)
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures["case_id"]) == ["c0", "c3"]
    assert list(failures["stage"]) == ["radiomics", "deep_toynet"]
    assert (tmp_path / "shared_cache").is_dir() and not (out / ".cache").exists()


def test_cli_reports_a_bad_parameter_file(cohort, tmp_path, capsys):
    from sonorad.cli import main

    params = tmp_path / "p.yaml"
    params.write_text("setting:\n  binWidht: 5\n")
    rc = main(["extract", str(cohort), "--out", str(tmp_path / "out"), "--params", str(params), "--quiet"])
    assert rc == 2 and "binWidht" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.slow
def test_acceptance_breast_lesions_usg(shared_data, tmp_path):
    """`sonorad extract` on 20 real BrEaST cases + a missing mask + a mask of the wrong size."""
    from sonorad.cli import main

    root = shared_data / "breast_lesions_usg"
    cases = pd.read_csv(root / "cases.csv", dtype={"case_id": str}).iloc[:22].copy()
    for column in ("image", "mask"):
        cases[column] = [str(root / p) for p in cases[column]]
    missing, wrong = cases.index[20], cases.index[21]
    cases.loc[missing, "mask"] = str(tmp_path / "no_such_mask.png")
    with Image.open(cases.loc[wrong, "mask"]) as im:
        im.resize((im.width // 2, im.height // 2)).save(tmp_path / "half_size_mask.png")
    cases.loc[wrong, "mask"] = str(tmp_path / "half_size_mask.png")
    csv = tmp_path / "cases.csv"
    cases.to_csv(csv, index=False)

    out = tmp_path / "out"
    assert main(["extract", str(csv), "--out", str(out), "--jobs", "2", "--quiet"]) == 0
    features = pd.read_parquet(out / "radiomics.parquet")
    assert list(features.index) == list(cases["case_id"].iloc[:20])
    assert features.shape[1] >= 400
    assert features.notna().sum(axis=1).min() >= 400  # >= 400 features for every good case
    failures = pd.read_csv(out / "failures.csv")
    bad = [cases.loc[missing, "case_id"], cases.loc[wrong, "case_id"]]
    assert list(failures["case_id"]) == bad
    assert "no_such_mask.png" in failures["error"].iloc[0] and "size mismatch" in failures["error"].iloc[1]


# ---------------------------------------------------------------------------------------------
# faults: a killed driver, a full disk, what a rerun reports
# ---------------------------------------------------------------------------------------------
def _sonorad_env():
    import os
    from pathlib import Path

    env = dict(os.environ, OMP_NUM_THREADS="1")
    src = str(Path(extract_module.__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("SONORAD_SCHEDULER", None)
    return env


@pytest.mark.timeout(120)
def test_workers_exit_when_the_driver_is_killed(tmp_path):
    """`kill -9` of `sonorad extract --jobs 2`: its loky workers and resource tracker go too."""
    import signal
    import subprocess
    import time

    import psutil

    csv = write_cohort(tmp_path / "cohort", n=40)
    out = tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "sonorad", "extract", str(csv), "--out", str(out), "--jobs", "2",
                               "--quiet"], env=_sonorad_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    children: list = []
    try:
        deadline = time.monotonic() + 90
        while not list((out / ".cache").glob("??/*.npz")):  # workers are up and extracting
            assert driver.poll() is None, driver.stderr.read()
            assert time.monotonic() < deadline, "no case was extracted in 90 s"
            time.sleep(0.05)
        children = psutil.Process(driver.pid).children(recursive=True)
        assert len(children) >= 2, children  # the two workers (and loky's resource tracker)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=20)
        assert alive == [], f"still running 20 s after the driver died: {[p.cmdline() for p in alive]}"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=10)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        driver.stderr.close()


def test_a_full_disk_ends_with_the_folder_and_exit_code_2(cohort, tmp_path, monkeypatch, capsys):
    import errno

    from sonorad.cli import main

    def full(self, key, value):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FeatureCache, "put", full)
    cache = tmp_path / "cache"
    rc = main(["extract", str(cohort), "--out", str(tmp_path / "out"), "--cache", str(cache), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"the disk holding {cache} is full" in err and "rerun the same command" in err and "Traceback" not in err


def test_a_full_disk_while_writing_the_table_names_the_output_folder(cohort, tmp_path, monkeypatch, capsys):
    import errno

    from sonorad.cli import main

    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    out = tmp_path / "out"
    rc = main(["extract", str(cohort), "--out", str(out), "--quiet"])
    assert rc == 2 and f"the disk holding {out} is full" in capsys.readouterr().err
    assert len(FeatureCache(out / ".cache")) == 4  # every finished case is kept for the rerun


def test_other_os_errors_are_not_called_a_full_disk(cohort, tmp_path, monkeypatch):
    import errno

    def denied(self, key, value):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(FeatureCache, "put", denied)
    with pytest.raises(PermissionError):
        extract_to_dir(cohort, tmp_path / "out", params=SMALL, progress=False)


def test_a_rerun_says_how_many_cases_came_from_the_cache(cohort, tmp_path, capsys):
    from sonorad.cli import main

    out = tmp_path / "out"
    assert main(["extract", str(cohort), "--out", str(out), "--quiet"]) == 0
    assert "0 from cache, 4 computed" in capsys.readouterr().out
    (cohort.parent / "c2.png").write_bytes((cohort.parent / "c3.png").read_bytes())  # one edited image
    assert main(["extract", str(cohort), "--out", str(out), "--quiet"]) == 0
    assert "3 from cache, 1 computed" in capsys.readouterr().out
