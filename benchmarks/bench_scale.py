"""Benchmark: radiomics extraction on local processes and on a Dask cluster, 1k and 10k images.

For each cohort size it writes a synthetic cohort (small PNGs, several images per patient),
then runs ``sonorad extract`` from an empty cache, each run in a fresh driver process:

- ``local``: joblib/loky worker processes (``--jobs 1`` and ``--jobs 2``);
- ``dask``: a real ``dask scheduler`` with 1 or 2 single-threaded ``dask worker`` processes on
  127.0.0.1, the file bytes travelling with each task (``--scheduler ADDRESS``);

and records images/s, seconds per image and the driver's peak RSS. A last run sends the same
tasks (file bytes included) to the 2-worker cluster with a function that does nothing, which
measures the per-task overhead of the driver, scheduler and worker (reading and shipping the
files, the cache key, one round trip). ``--report`` prints the tables and the 32-worker
extrapolation in markdown.

Usage::

    python benchmarks/bench_scale.py --sizes 200 --out /tmp/scale.json      # quick check
    python benchmarks/bench_scale.py --sizes 1000 --out benchmarks/results/scale_1k.json
    python benchmarks/bench_scale.py --sizes 10000 --runs dask2 local2 null --out benchmarks/results/scale_10k.json
    python benchmarks/bench_scale.py --report benchmarks/results/scale_1k.json benchmarks/results/scale_10k.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
RUNS = ("local1", "local2", "dask1", "dask2", "null")
IMAGES_PER_PATIENT = 5
IMAGE_SIZE = (96, 120)


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    path = [str(REPO / "src"), str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.pop("SONORAD_SCHEDULER", None)
    return env


def original_only_params(folder: Path) -> Path:
    """sonorad's shipped parameter file with the original image only (~100 features), as a file."""
    import yaml

    from sonorad.features.radiomics import original_only

    path = folder / "params_original.yaml"
    path.write_text(yaml.safe_dump(original_only()))
    return path


def write_cohort(folder: Path, n_images: int) -> Path:
    from sonorad.synthetic import make_cohort

    n_patients = -(-n_images // IMAGES_PER_PATIENT)
    csv = make_cohort(folder, scenario="clnm", seed=11, n_patients=n_patients, image_size=IMAGE_SIZE,
                      images_per_patient=IMAGES_PER_PATIENT)
    import pandas as pd

    table = pd.read_csv(csv, dtype=str).iloc[:n_images]
    table.to_csv(csv, index=False)
    return csv


# -- the driver process: one run, its wall time and its own peak RSS ---------------------------
_DRIVER = """
import json, resource, sys, time
from sonorad.cli import main
start = time.perf_counter()
rc = main(sys.argv[1:])
wall = time.perf_counter() - start
print("BENCH " + json.dumps({"rc": rc, "wall_s": wall,
      "driver_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_NULL = """
import json, resource, sys, time
from sonorad.cohort import read_cases
from sonorad.features.engine import Task, run_tasks, task_cache_key
from sonorad.features.extract import cases_from_table
from sonorad.features.radiomics import load_params, params_hash
from sonorad.features.store import FeatureCache
from sonorad.parallel import use_cluster
import bench_scale

csv, address, cache_dir, params = sys.argv[1:5]
start = time.perf_counter()
tasks = [Task(case) for case in cases_from_table(read_cases(csv))]
cache, phash = FeatureCache(cache_dir), params_hash(load_params(params))
hashed = time.perf_counter()
keys = [task_cache_key(cache, task, phash) for task in tasks]   # the driver hashes every file, as a real run does
hashing = time.perf_counter() - hashed
class Bar:
    def update(self, n): pass
done = []
with use_cluster(address):
    looped = time.perf_counter()
    run_tasks(bench_scale.null_task, tasks, jobs=1, on_result=lambda i, r: done.append(i), progress_bar=Bar())
    loop = time.perf_counter() - looped
wall = time.perf_counter() - start
assert len(done) == len(tasks)
print("BENCH " + json.dumps({"rc": 0, "wall_s": wall, "hash_s": hashing, "loop_s": loop,
      "driver_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def null_task(task):
    """A task that does no work: what is left of a run is the cost of moving tasks around."""
    return None, {"error": "", "fix": ""}


def _bench(code: str, args: list[str], timeout: float) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], env=_env(), cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark run failed ({done.returncode}): {done.stderr[-3000:]}")
    result = json.loads(lines[-1][6:])
    summary = [line for line in done.stdout.splitlines() if line.startswith("radiomics:")]
    result["summary"] = summary[0] if summary else ""
    return result


class Cluster:
    """A loopback ``dask scheduler`` plus ``n`` single-threaded workers, stopped by :meth:`close`."""

    def __init__(self, folder: Path, n_workers: int):
        folder.mkdir(parents=True, exist_ok=True)
        info = folder / "scheduler.json"
        self.procs = [self._spawn(folder / "scheduler.log", ["scheduler", "--host", "127.0.0.1", "--port", "0",
                                                              "--no-dashboard", "--scheduler-file", str(info)])]
        deadline = time.monotonic() + 60
        while not (info.is_file() and info.stat().st_size):
            if time.monotonic() > deadline:
                raise RuntimeError("dask scheduler did not start")
            time.sleep(0.1)
        time.sleep(0.2)
        self.address = json.loads(info.read_text())["address"]
        for i in range(n_workers):
            self.procs.append(self._spawn(folder / f"w{i}.log", [
                "worker", self.address, "--nthreads", "1", "--nworkers", "1", "--no-nanny", "--no-dashboard",
                "--host", "127.0.0.1", "--memory-limit", "0", "--death-timeout", "60"]))
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=120)
            # import sonorad and PyRadiomics on every worker before the clock starts
            client.run(lambda: __import__("sonorad.features.engine") and __import__("radiomics") and None)

    @staticmethod
    def _spawn(log: Path, args: list[str]) -> subprocess.Popen:
        with open(log, "wb") as handle:
            return subprocess.Popen([sys.executable, "-m", "dask", *args], env=_env(), stdout=handle,
                                    stderr=subprocess.STDOUT)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def measure(n_images: int, runs: list[str], work: Path, timeout: float) -> list[dict]:
    folder = work / f"cohort_{n_images}"
    start = time.perf_counter()
    csv = write_cohort(folder, n_images)
    print(f"[{n_images}] cohort written in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    params = original_only_params(work)
    rows = []
    for run in runs:
        out = work / f"out_{n_images}_{run}"
        load = os.getloadavg()[0]
        base = ["extract", str(csv), "--out", str(out), "--params", str(params), "--quiet"]
        if run.startswith("local"):
            result = _bench(_DRIVER, base + ["--jobs", run[-1]], timeout)
            workers = int(run[-1])
        else:
            workers = 2 if run == "null" else int(run[-1])
            cluster = Cluster(work / f"dask_{n_images}_{run}", workers)
            try:
                if run == "null":
                    result = _bench(_NULL, [str(csv), cluster.address, str(out / ".cache"), str(params)], timeout)
                else:
                    result = _bench(_DRIVER, base + ["--scheduler", cluster.address], timeout)
            finally:
                cluster.close()
        result.update(run=run, images=n_images, workers=workers, load_before=round(load, 2),
                      load_after=round(os.getloadavg()[0], 2), images_per_s=n_images / result["wall_s"],
                      s_per_image=result["wall_s"] / n_images)
        print(f"[{n_images}] {run}: {result['wall_s']:.1f} s, {result['images_per_s']:.1f} images/s, "
              f"driver {result['driver_rss_mib']:.0f} MiB, load {load:.1f} -> {result['load_after']:.1f}; "
              f"{result['summary']}", file=sys.stderr)
        rows.append(result)
    return rows


# -- report -------------------------------------------------------------------------------------
def report(paths: list[Path]) -> str:
    rows = [row for path in paths for row in json.loads(Path(path).read_text())["rows"]]
    lines = ["| images | run | workers | wall (s) | images / s | s / image | driver peak RSS (MiB) | load avg before -> after |",
             "|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['images']} | {r['run']} | {r['workers']} | {r['wall_s']:.1f} | {r['images_per_s']:.1f} | "
                     f"{r['s_per_image']:.4f} | {r['driver_rss_mib']:.0f} | {r['load_before']} -> {r['load_after']} |")
    by = {(r["images"], r["run"]): r for r in rows}
    for n in sorted({r["images"] for r in rows}):
        for a, b in (("local1", "local2"), ("dask1", "dask2")):
            if (n, a) in by and (n, b) in by:
                lines.append(f"\n{n} images, {b} over {a}: **{by[(n, b)]['images_per_s'] / by[(n, a)]['images_per_s']:.2f}x**")
    sizes = sorted({r["images"] for r in rows})
    for run in ("local2", "dask2"):
        small, large = (by.get((sizes[0], run)), by.get((sizes[-1], run))) if len(sizes) > 1 else (None, None)
        if small and large:
            lines.append(f"\nDriver peak RSS, {run}: {small['driver_rss_mib']:.0f} MiB at {small['images']} images, "
                         f"{large['driver_rss_mib']:.0f} MiB at {large['images']} "
                         f"(**{large['driver_rss_mib'] / small['driver_rss_mib']:.2f}x** for "
                         f"{large['images'] / small['images']:.0f}x the images)")
    n = sizes[-1]
    if (n, "dask1") in by or (n, "local1") in by:
        one = by.get((n, "dask1")) or by[(n, "local1")]
        null = by.get((n, "null"))
        if null:
            from sonorad.features.engine import cluster_batch_size

            c = one["s_per_image"]
            h = null["hash_s"] / n
            b2, b32 = cluster_batch_size(n, 2), cluster_batch_size(n, 32)
            o = null["loop_s"] / -(-n // b2)  # per task: the null run sent n / b2 batches
            fixed = null["wall_s"] - null["hash_s"] - null["loop_s"]
            tasks32 = -(-n // b32)
            t32 = fixed + n * h + max(n * c / 32, tasks32 * o)
            lines.append(
                f"\nExtrapolation to 32 workers at {n} images, from the {one['run']} run and the null-task run: "
                f"compute c = {c:.4f} s/image; driver start-up (imports, connecting) {fixed:.1f} s; cache keys "
                f"h = {h:.5f} s/image (the driver hashes every file, serially); per-task overhead "
                f"o = {o:.4f} s/task, measured with 2 workers and {b2} cases per task (read and ship the files, "
                f"schedule, write the copies on the worker, return; all of it counted per task, although the "
                f"file reading and writing is per case: an upper bound for smaller tasks). With W worker "
                f"threads a task holds b(W) cases (`cluster_batch_size`: {b32} at W = 32), and a run takes about "
                f"start-up + n * h + max(n * c / W, n / b(W) * o); for W = 32: {fixed:.1f} + {n} * {h:.5f} + "
                f"max({n * c / 32:.1f}, {tasks32} * {o:.4f}) = **{t32:.0f} s** ({n / t32:.1f} images/s). "
                f"Workers stop helping once the compute n * c / W falls below the driver's n / b(W) * o.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS)
    parser.add_argument("--out", type=Path, help="write the measurements here (JSON)")
    parser.add_argument("--work", type=Path, help="folder for cohorts and outputs (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--report", type=Path, nargs="+", help="print the markdown tables of these JSON files")
    args = parser.parse_args(argv)
    if args.report:
        print(report(args.report))
        return 0
    with tempfile.TemporaryDirectory(prefix="sonorad-bench-scale-") as tmp:
        work = args.work or Path(tmp)
        rows = [row for n in args.sizes for row in measure(n, args.runs, work, args.timeout)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=False).stdout.strip()
    record = {"commit": commit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cpus": os.cpu_count(), "rows": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1))
    print(report_rows(record))
    return 0


def report_rows(record: dict) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(record, handle)
    try:
        return report([Path(handle.name)])
    finally:
        os.unlink(handle.name)


if __name__ == "__main__":
    sys.exit(main())
