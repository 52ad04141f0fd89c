"""Extraction, tuning and cross-validation on a real Dask cluster (sonorad.parallel).

Every test that needs a cluster starts a real ``dask scheduler`` and ``dask worker`` processes on
127.0.0.1 (ports chosen by the OS), bounds what it waits for, and stops every process it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sonorad.errors import ConfigError
from sonorad.parallel import SCHEDULER_ENV, active_cluster, resolve_scheduler, use_cluster
from sonorad.synthetic import make_cohort

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
pytestmark = pytest.mark.timeout(240)  # generous: the CI machine may be busy

#: Original image only, a handful of features: each case takes tens of milliseconds.
PARAMS = {
    "setting": {"binWidth": 5, "label": 1, "additionalInfo": False},
    "imageType": {"Original": {}},
    "featureClass": {"shape2D": None, "firstorder": ["Mean", "Entropy", "Skewness"], "glcm": ["Contrast"]},
}


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    env.pop(SCHEDULER_ENV, None)
    env.update(extra)
    return env


def _stop(procs, grace: float = 3) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class LocalDask:
    """A ``dask scheduler`` and ``n`` single-threaded ``dask worker`` processes on loopback."""

    def __init__(self, folder: Path, n_workers: int = 2, scheduler_env: dict | None = None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        info = folder / "scheduler.json"
        self.scheduler = self._spawn("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0",
                                                   "--no-dashboard", "--scheduler-file", str(info)],
                                     env=scheduler_env)
        deadline = time.monotonic() + 30
        while not (info.is_file() and info.stat().st_size):
            if time.monotonic() > deadline or self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler did not start: {(folder / 'scheduler.log').read_text()}")
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but give the writer a moment to close it
        self.address = json.loads(info.read_text())["address"]
        for i in range(n_workers):
            self.add_worker(f"w{i}")
        self.wait_for_workers(n_workers)

    def _spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "dask", *args], env=_env(**(env or {})), stdout=log,
                                stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def add_worker(self, name: str) -> subprocess.Popen:
        # no nanny: a killed worker stays dead, so its tasks must really move to another worker
        proc = self._spawn(name, ["worker", self.address, "--name", name, "--nthreads", "1", "--nworkers", "1",
                                  "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--memory-limit", "0",
                                  "--death-timeout", "30"])
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=60)

    def task_prefixes(self) -> set[str]:
        """Names of every kind of task the scheduler has run."""
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            return set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))

    def close(self) -> None:
        _stop(self.workers)
        _stop([self.scheduler])


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    cluster = LocalDask(tmp_path_factory.mktemp("dask"))
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def own_cluster(tmp_path):
    """A cluster this test may break (kill a worker or the scheduler)."""
    cluster = LocalDask(tmp_path / "dask")
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    cases = make_cohort(folder / "cohort", scenario="clnm", seed=2, n_patients=16, image_size=(96, 120),
                        images_per_patient=2)
    params = folder / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    return cases, params


def sonorad(*args, timeout: float = 90, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sonorad", *map(str, args)], env=env or _env(), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


def start_sonorad(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sonorad", *map(str, args)], env=env or _env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cache_entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("??/*.npz")) if folder.is_dir() else []


def wait_for_entries(folder: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(cache_entries(folder)) < n:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"extraction ended or stalled before {n} cases were cached: "
                                 f"{proc.communicate(timeout=10)}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def local_extraction(cohort, tmp_path_factory):
    cases, params = cohort
    out = tmp_path_factory.mktemp("local")
    done = sonorad("extract", cases, "--out", out, "--params", params, "--jobs", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    return pd.read_parquet(out / "radiomics.parquet")


# ---------------------------------------------------------------------------------------------
# choosing the executor
# ---------------------------------------------------------------------------------------------
def test_scheduler_comes_from_the_option_then_the_environment_then_the_study(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    assert resolve_scheduler(None, None) is None
    assert resolve_scheduler(None, "local") is None
    assert resolve_scheduler(None, "tcp://h:1") == "tcp://h:1"
    assert resolve_scheduler(None, {"slurm": {"cores": 1}}) == {"slurm": {"cores": 1}}
    monkeypatch.setenv(SCHEDULER_ENV, "tcp://env:2")
    assert resolve_scheduler(None, "tcp://h:1") == "tcp://env:2"
    assert resolve_scheduler("local", "tcp://h:1") is None  # the option wins, even to say "local"
    assert resolve_scheduler("tcp://cli:3", "tcp://h:1") == "tcp://cli:3"
    monkeypatch.delenv(SCHEDULER_ENV)
    with pytest.raises(ConfigError, match="features.executor"):
        resolve_scheduler(None, {"kubernetes": {}})
    with pytest.raises(ConfigError, match="features.executor"):
        resolve_scheduler(None, 8786)


def test_no_scheduler_changes_nothing():
    with use_cluster(None) as cluster:
        assert cluster is None and active_cluster() is None


def test_a_malformed_address_is_a_config_error():
    with pytest.raises(ConfigError, match="tcp://host:port"), use_cluster("tcp://127.0.0.1:notaport"):
        pass
    with pytest.raises(ConfigError, match="slurm:N"), use_cluster("slurm:many"):
        pass


def test_unreachable_scheduler_names_the_address_and_exits_2(cohort, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cases, params = cohort
    done = sonorad("extract", cases, "--out", tmp_path / "out", "--params", params, "--quiet",
                   "--scheduler", f"127.0.0.1:{port}", env=_env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s"))
    assert done.returncode == 2, done.stderr
    assert f"tcp://127.0.0.1:{port}" in done.stderr and "rerun resumes" in done.stderr
    assert "Traceback" not in done.stderr


def test_slurm_spec_builds_a_jobqueue_cluster_and_uses_the_same_client_path(monkeypatch, dask_cluster):
    """``slurm`` only changes how the cluster is made; stand a fake SLURMCluster on the real scheduler."""
    import dask_jobqueue

    made = {}

    class FakeSLURMCluster:
        def __init__(self, **options):
            made["options"] = options
            self.scheduler_address = dask_cluster.address

        def scale(self, jobs):
            made["jobs"] = jobs

        def close(self):
            made["closed"] = True

    monkeypatch.setattr(dask_jobqueue, "SLURMCluster", FakeSLURMCluster)
    with use_cluster({"slurm": {"cores": 1, "memory": "4GB", "workers": 8}}) as cluster:
        assert cluster.address == dask_cluster.address and cluster.n_threads() == 2
    assert made == {"options": {"cores": 1, "memory": "4GB"}, "jobs": 8, "closed": True}
    with use_cluster("slurm:3"):
        pass
    assert made["jobs"] == 3 and made["options"] == {}


def test_the_study_file_can_name_the_executor(tmp_path, monkeypatch):
    from sonorad.runner.config import run_config
    from sonorad.study import load_study

    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    make_cohort(tmp_path / "cohort", scenario="clnm", seed=5, n_patients=12)
    study = {"name": "tiny", "cohort": "cohort/cases.csv", "label": {"positive": 1},
             "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]},
             "features": {"executor": {"scheduler": "tcp://10.0.0.5:8786"}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    loaded = load_study(path)
    run_config(loaded)  # the key is known to the runner
    assert resolve_scheduler(None, loaded.features.get("executor")) == {"scheduler": "tcp://10.0.0.5:8786"}


# ---------------------------------------------------------------------------------------------
# the task window
# ---------------------------------------------------------------------------------------------
def test_driver_holds_at_most_a_window_of_inputs(dask_cluster):
    from operator import mul

    drawn, seen = [0], []

    def arguments():
        for i in range(40):
            drawn[0] += 1
            yield i, 2

    with use_cluster(dask_cluster.address) as cluster:
        cluster.map_unordered(mul, arguments(), lambda r: seen.append((r, drawn[0] - len(seen))), window=5)
    assert sorted(r for r, _ in seen) == [2 * i for i in range(40)]
    assert max(in_flight for _, in_flight in seen) <= 5


def test_the_driver_keeps_no_copy_of_the_inputs_it_has_sent(dask_cluster):
    import gc
    import tracemalloc

    def inputs():  # 300 distinct inputs of 100 kB: 30 MB sent in all
        for i in range(300):
            yield (bytes([i % 256]) * 100_000,)

    with use_cluster(dask_cluster.address) as cluster:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            cluster.map_unordered(len, inputs(), lambda n: None, window=4)
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert kept < 3_000_000, f"{kept / 1e6:.1f} MB of sent inputs still held by the driver"


# ---------------------------------------------------------------------------------------------
# extraction on the cluster
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shared_fs", [False, True], ids=["bytes-with-task", "shared-fs"])
def test_extract_on_the_cluster_gives_the_local_table(cohort, local_extraction, dask_cluster, tmp_path, shared_fs):
    cases, params = cohort
    out = tmp_path / "out"
    extra = ["--shared-fs"] if shared_fs else []
    done = sonorad("extract", cases, "--out", out, "--params", params, "--quiet", "--scheduler", dask_cluster.address,
                   *extra)
    assert done.returncode == 0, done.stderr
    assert f"32 computed on the Dask cluster at {dask_cluster.address}" in done.stdout
    pd.testing.assert_frame_equal(pd.read_parquet(out / "radiomics.parquet"), local_extraction, check_exact=True)
    assert len(cache_entries(out / ".cache")) == 32
    assert "in_cluster_batch" in dask_cluster.task_prefixes()
    again = sonorad("extract", cases, "--out", out, "--params", params, "--quiet", "--scheduler", dask_cluster.address)
    assert "32 from cache, 0 computed" in again.stdout


def test_a_file_the_driver_cannot_read_is_a_failure_named_by_its_own_path(cohort, dask_cluster, tmp_path,
                                                                          local_extraction):
    """Workers get copies of the files; a failure message names the original path, never the copy."""
    from sonorad.cohort import read_cases
    from sonorad.features.extract import extract_radiomics

    cases, _ = cohort
    table = read_cases(cases).iloc[:6].copy()
    table.iloc[0, table.columns.get_loc("image")] = str(tmp_path / "gone.png")
    with use_cluster(dask_cluster.address):
        features, failures = extract_radiomics(table, params=PARAMS, progress=False)
    assert list(failures["case_id"]) == [table.index[0]]
    assert str(tmp_path / "gone.png") in failures["error"].iloc[0] and "sonorad-case-" not in failures["error"].iloc[0]
    pd.testing.assert_frame_equal(features, local_extraction.loc[table.index[1:]], check_exact=True)


@pytest.mark.slow
def test_a_worker_killed_mid_extraction_loses_nothing(own_cluster, tmp_path, local_extraction, cohort):
    cases, params = cohort
    out = tmp_path / "out"
    proc = start_sonorad("extract", cases, "--out", out, "--params", params, "--quiet",
                         "--scheduler", own_cluster.address)
    try:
        wait_for_entries(out / ".cache", 4, proc)
        at_kill = len(cache_entries(out / ".cache"))
        victim = own_cluster.workers[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert at_kill < 32  # the worker died mid-extraction
    assert "32 of 32 cases extracted" in stdout and "0 failed" in stdout
    entries = cache_entries(out / ".cache")
    assert len(entries) == 32 and len({p.name for p in entries}) == 32  # every case exactly once
    assert not list((out / ".cache").glob("??/*.tmp"))
    pd.testing.assert_frame_equal(pd.read_parquet(out / "radiomics.parquet"), local_extraction, check_exact=True)


@pytest.mark.slow
def test_an_externally_killed_worker_costs_no_case_even_without_retries(tmp_path, cohort, local_extraction):
    cases, params = cohort
    # no retries allowed: the batch running on the killed worker is cut into single cases, which
    # then run on the other worker; a kill from outside is not the cases' fault
    cluster = LocalDask(tmp_path / "dask", scheduler_env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    out = tmp_path / "out"
    proc = start_sonorad("extract", cases, "--out", out, "--params", params, "--quiet", "--scheduler", cluster.address)
    try:
        wait_for_entries(out / ".cache", 4, proc)
        at_kill = len(cache_entries(out / ".cache"))
        cluster.workers[0].send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        cluster.close()
    assert proc.returncode == 0, stderr
    assert at_kill < 32 and "32 of 32 cases extracted" in stdout and "0 failed" in stdout
    assert len(cache_entries(out / ".cache")) == 32
    pd.testing.assert_frame_equal(pd.read_parquet(out / "radiomics.parquet"), local_extraction, check_exact=True)


@pytest.mark.slow
def test_a_case_that_kills_every_worker_fails_alone_and_its_batch_goes_on(tmp_path, monkeypatch):
    from sonorad.features import engine

    def crash_on_seven(task):  # a local function: pickled by value, so the workers can run it
        if task == 7:
            os._exit(1)
        return {"value": float(task)}, None

    class Bar:
        def update(self, n):
            pass

    monkeypatch.setattr(engine, "cluster_batch_size", lambda n, threads: 4)
    cluster = LocalDask(tmp_path / "dask", n_workers=4,
                        scheduler_env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    results = {}
    try:
        with use_cluster(cluster.address, shared_fs=True) as active:
            engine._run_on_cluster(active, crash_on_seven, list(range(16)), progress_bar=Bar(),
                                   on_result=lambda i, r: results.setdefault(i, []).append(r))
    finally:
        cluster.close()
    assert sorted(results) == list(range(16)) and all(len(r) == 1 for r in results.values())  # each once
    features, failure = results[7][0]
    assert features is None and "every worker that extracted this case died" in failure["error"]
    # the other members of 7's batch (4, 5, 6) were rerun one by one and succeeded
    assert all(results[i][0] == ({"value": float(i)}, None) for i in range(16) if i != 7)


@pytest.mark.slow
def test_scheduler_gone_stops_with_a_message_and_a_rerun_resumes(own_cluster, tmp_path, cohort, local_extraction):
    cases, params = cohort
    out = tmp_path / "out"
    env = _env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="3s")
    proc = start_sonorad("extract", cases, "--out", out, "--params", params, "--quiet",
                         "--scheduler", own_cluster.address, env=env)
    try:
        wait_for_entries(out / ".cache", 2, proc)
        own_cluster.scheduler.send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 2, (stdout, stderr)
    assert own_cluster.address in stderr and "resumes from the cache" in stderr
    assert "Traceback" not in stderr
    cached = len(cache_entries(out / ".cache"))
    assert 2 <= cached
    again = sonorad("extract", cases, "--out", out, "--params", params, "--quiet", "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert f"{cached} from cache, {32 - cached} computed" in again.stdout
    pd.testing.assert_frame_equal(pd.read_parquet(out / "radiomics.parquet"), local_extraction, check_exact=True)


# ---------------------------------------------------------------------------------------------
# a whole study on the cluster
# ---------------------------------------------------------------------------------------------
def _small_study(folder: Path, cases: Path, params: Path) -> Path:
    study = {
        "name": "cluster", "cohort": str(cases), "seed": 4, "label": {"positive": 1},
        "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]},
        "features": {"radiomics": True, "params": str(params), "jobs": 1},
        "models": {"design": "study1", "models": ["logistic_regression"], "cv": 2, "n_iter": 2},
        "evaluation": {"cv_folds": 2, "shap": False, "nomogram": False, "gradcam": 0},
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_small_run_on_the_cluster_gives_the_local_predictions(tmp_path, dask_cluster):
    folder = tmp_path / "study"
    cases = make_cohort(folder / "cohort", scenario="clnm", seed=6, n_patients=40, image_size=(96, 120))
    params = folder / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    study = _small_study(folder, cases, params)
    local = sonorad("run", study, "--out", tmp_path / "local", "--quiet", "--no-report", timeout=240)
    assert local.returncode == 0, local.stderr
    before = dask_cluster.task_prefixes()
    remote = sonorad("run", study, "--out", tmp_path / "remote", "--quiet", "--no-report",
                     "--scheduler", dask_cluster.address, timeout=240)
    assert remote.returncode == 0, remote.stderr
    ran = dask_cluster.task_prefixes() - before
    assert any("batch" in name.lower() for name in ran), ran  # joblib's Dask backend: tuning and CV ran there
    for table in ("predictions.csv", "metrics.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "remote" / "tables" / table),
                                      pd.read_csv(tmp_path / "local" / "tables" / table), check_exact=True)


@pytest.mark.slow
def test_icc_on_the_cluster_gives_the_local_table(cohort, dask_cluster, tmp_path):
    cases, params = cohort
    local = sonorad("icc", cases, "--out", tmp_path / "local", "--params", params, "--n-cases", 5, "--quiet")
    assert local.returncode == 0, local.stderr
    remote = sonorad("icc", cases, "--out", tmp_path / "remote", "--params", params, "--n-cases", 5, "--quiet",
                     "--scheduler", dask_cluster.address)
    assert remote.returncode == 0, remote.stderr
    assert "35 extractions (0 from cache, 35 computed)" in remote.stdout  # 5 cases x (mask + 6 perturbed)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "remote" / "icc.csv"),
                                  pd.read_csv(tmp_path / "local" / "icc.csv"), check_exact=True)


@pytest.mark.parametrize("n_tasks, threads, expected", [(1, 2, 1), (16, 2, 1), (32, 2, 2), (1000, 2, 16),
                                                          (1000, 32, 4), (100000, 32, 16), (10, 64, 1)])
def test_batches_hold_about_8_per_thread_and_1_to_16_cases(n_tasks, threads, expected):
    from sonorad.features.engine import cluster_batch_size

    assert cluster_batch_size(n_tasks, threads) == expected


# -- local fitting workers (no cluster) ---------------------------------------------------------------
_LOKY_MESSAGE = ("A worker stopped while some jobs were given to the executor. This can be caused by a too short "
                 "worker timeout or by a memory leak.")


def test_fitting_jobs_silences_only_lokys_worker_replaced_warning():
    import threading
    import warnings

    from sonorad.parallel import fitting_jobs

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with fitting_jobs(2):
            # loky warns from its executor's manager thread, not from the caller's
            thread = threading.Thread(target=warnings.warn, args=(_LOKY_MESSAGE, UserWarning))
            thread.start()
            thread.join()
            warnings.warn("another warning", UserWarning)
        warnings.warn(_LOKY_MESSAGE, UserWarning)  # outside the fitting block it is not hidden
    assert [str(w.message) for w in seen] == ["another warning", _LOKY_MESSAGE]


_FIT_SCRIPT = """
import time
from sklearn.utils.parallel import Parallel, delayed
from sonorad.parallel import fitting_jobs
with fitting_jobs(2):
    print("fitting", flush=True)
    Parallel()(delayed(time.sleep)(120) for _ in range(4))
"""


@pytest.mark.timeout(90)
def test_fitting_workers_exit_when_the_driver_is_killed(tmp_path):
    psutil = pytest.importorskip("psutil")
    driver = subprocess.Popen([sys.executable, "-c", _FIT_SCRIPT], env=_env(), stdout=subprocess.PIPE, text=True)
    children = []
    try:
        assert driver.stdout.readline().strip() == "fitting"
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # two loky workers (and loky's resource tracker) started
            children = psutil.Process(driver.pid).children(recursive=True)
            if sum("loky" in " ".join(c.cmdline()) and "resource_tracker" not in " ".join(c.cmdline())
                   for c in children if c.is_running()) >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the fitting workers did not start: {children}")
        time.sleep(1)  # the workers are inside their jobs
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"still alive 30 s after the driver was killed: {[p.cmdline() for p in alive]}"
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.stdout.close()
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                pass
