"""The feature-extraction engine: tasks, cache keys, parallel workers, failures recorded.

A :class:`Task` is one PyRadiomics extraction: a :class:`Case` (image, masks, frame, spacing,
label) and which mask of it (the case's own, or a perturbed copy for ICC). :func:`extract_tasks`
runs a list of tasks with the per-case :class:`~sonorad.features.store.FeatureCache` (key:
:func:`task_cache_key`, from the files' bytes and the parameter hash), in ``jobs`` local worker
processes or on a Dask cluster (:func:`run_tasks`), and records each case that cannot be used as
a failure (``error``, ``fix``) instead of stopping. Cohort-level extraction
(:mod:`sonorad.features.extract`), ICC (:mod:`sonorad.features.icc`) and the model bundle's
prediction on a cohort table all run through here.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.errors import FAILURE_COLUMNS, CaseError, ConfigError, SonoradError
from sonorad.features.radiomics import extract_case, params_hash
from sonorad.features.store import FeatureCache
from sonorad.provenance import sha256_file

__all__ = ["Case", "Task", "Extraction", "FeatureRows", "task_cache_key", "radiomics_task", "run_tasks",
           "cluster_batch_size", "extract_tasks", "feature_frame", "failure_frame", "as_cache", "check_jobs",
           "disk_full_message"]

log = logging.getLogger("sonorad.features")

_GENERIC_FIX = (
    "check that the image opens and that the mask outlines the lesion on it; "
    "run `sonorad validate` on the cohort table for file problems"
)


# --------------------------------------------------------------------------------------------
# cases and tasks
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """What a worker needs to read one case (plain data, so it pickles cheaply)."""

    case_id: str
    image: str
    masks: tuple[str, ...]
    frame: int | None = None
    spacing: tuple[float, float] | None = None
    label: int | None = None  # the lesion's label in a label-map mask (``mask_label`` column)


@dataclass(frozen=True)
class Task:
    """One extraction: a case, and which mask of it (``None``: the case's own ``mask``).

    ``variant`` is ``("perturbed", seed, index, n)`` for the ``index``-th of ``n`` perturbed masks
    (see :func:`sonorad.imaging.perturbed_masks`); used by :mod:`sonorad.features.icc`.
    """

    case: Case
    variant: tuple | None = None


def task_cache_key(cache: FeatureCache, task: Task, phash: str) -> str | None:
    """Content key of a task, or ``None`` when a file cannot be read (the worker will say why)."""
    case = task.case
    if not case.masks:
        return None
    try:
        digests = [sha256_file(case.image)] + [sha256_file(m) for m in case.masks]
    except OSError:
        return None
    variant = "mask" if task.variant is None else ":".join(str(v) for v in task.variant)
    parts = [f"frame={case.frame}"] + ([] if case.spacing is None else [f"spacing={case.spacing}"])
    parts += [] if case.label is None else [f"label={case.label}"]
    return cache.key("sonorad.radiomics", *digests, *parts, variant, phash)


# --------------------------------------------------------------------------------------------
# worker side
# --------------------------------------------------------------------------------------------
_WORKER_READY = False


def _init_worker() -> None:
    """One thread per worker for BLAS, SimpleITK and torch, so ``jobs`` workers use ``jobs`` cores."""
    global _WORKER_READY
    if _WORKER_READY:
        return
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    _WORKER_READY = True


def _init_local_worker() -> None:
    """Initializer of each local (loky) worker: thread limits, and exit when the driver dies."""
    from sonorad.parallel import exit_with_parent

    _init_worker()
    exit_with_parent()


def _in_worker(function: Callable, index: int, task) -> tuple[int, object]:
    _init_worker()
    return index, function(task)


def _task_files(task: Task) -> list[str]:
    return [task.case.image, *task.case.masks]


def _read_files(task: Task) -> dict[str, bytes]:
    """The bytes of a task's image and masks, for a worker without the driver's filesystem.

    A file that cannot be read here is left out: the worker then reports it by its own path.
    """
    blobs = {}
    for path in dict.fromkeys(_task_files(task)):
        try:
            blobs[path] = Path(path).read_bytes()
        except OSError:
            pass
    return blobs


def _in_cluster_worker(function: Callable, index: int, task: Task, blobs: dict[str, bytes] | None):
    """Run ``function(task)`` on a Dask worker, from copies of the shipped files when there are any.

    The copies keep the file names (readers choose by extension) and live in a temporary folder
    that is removed afterwards; a failure message names the original paths, not the copies.
    """
    import tempfile

    _init_worker()
    if not blobs:
        return index, function(task)
    with tempfile.TemporaryDirectory(prefix="sonorad-case-") as folder:
        local = {}
        for k, (path, data) in enumerate(blobs.items()):
            copy = Path(folder) / f"{k}-{Path(path).name}"
            copy.write_bytes(data)
            local[path] = str(copy)
        case = task.case
        moved = replace(task, case=replace(case, image=local.get(case.image, case.image),
                                           masks=tuple(local.get(m, m) for m in case.masks)))
        result = function(moved)
    return index, _original_paths(result, local)


def _original_paths(result, local: dict[str, str]):
    feats, failure = result
    if failure is None:
        return result
    fixed = {}
    for name, text in failure.items():
        for original, copy in local.items():
            text = str(text).replace(copy, original)
        fixed[name] = text
    return feats, fixed


def _killed_worker_result(index: int, task: Task) -> tuple[int, tuple[None, dict]]:
    return index, (None, {
        "error": "every worker that extracted this case died (out of memory, or a crash inside a library)",
        "fix": "check the image size and the parameter file (bin count, filters) for this case; "
               "give the workers more memory; " + _GENERIC_FIX,
    })


def _task_mask(task: Task, mask: np.ndarray) -> np.ndarray:
    if task.variant is None:
        return mask
    kind, seed, index, n = task.variant
    if kind != "perturbed":
        raise ValueError(f"unknown mask variant {kind!r}")
    from sonorad.imaging import perturbed_masks

    return perturbed_masks(mask, int(seed), n=int(n))[int(index)]


def radiomics_task(task: Task, params: dict) -> tuple[dict | None, dict | None]:
    """Run one task; never raises for a bad case: returns ``(features, None)`` or ``(None, failure)``."""
    case = task.case
    try:
        if not case.masks:
            raise CaseError(case.case_id, "no mask file given", "fill the mask column with the lesion mask's path")
        from sonorad.imaging import load_roi

        image, mask = load_roi(case.image, list(case.masks), case_id=case.case_id, frame=case.frame,
                               spacing=case.spacing, label=case.label)
        return extract_case(image, _task_mask(task, mask), params, case_id=case.case_id), None
    except CaseError as exc:
        return None, {"error": exc.problem.message, "fix": exc.problem.fix}
    except Exception as exc:  # a library error on one case must not stop the cohort
        return None, {"error": f"{type(exc).__name__}: {exc}", "fix": _GENERIC_FIX}


def run_tasks(function: Callable, tasks: Sequence, *, jobs: int, on_result: Callable, progress_bar) -> None:
    """Call ``function(task)`` for every task, in ``jobs`` processes; ``on_result(i, result)`` in this one.

    Results are handed over as they complete (so each can be cached at once); callers restore the
    input order themselves. Inside :func:`sonorad.parallel.use_cluster` the tasks go to the Dask
    cluster instead (``jobs`` is then the cluster's business). Local workers are joblib's loky
    processes: no fork of a process that may already run torch / BLAS threads, no
    ``if __name__ == "__main__"`` guard needed in scripts, and each exits if this process dies.
    """
    from sonorad.parallel import active_cluster

    cluster = active_cluster()
    if cluster is not None and tasks:
        _run_on_cluster(cluster, function, tasks, on_result=on_result, progress_bar=progress_bar)
        return
    if jobs == 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            on_result(i, function(task))
            progress_bar.update(1)
        return
    from joblib import Parallel, delayed, parallel_config
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    try:
        with parallel_config(backend="loky", inner_max_num_threads=1, initializer=_init_local_worker):
            results = Parallel(n_jobs=min(jobs, len(tasks)), return_as="generator_unordered")(
                delayed(_in_worker)(function, i, task) for i, task in enumerate(tasks)
            )
            for i, result in results:
                on_result(i, result)
                progress_bar.update(1)
    except TerminatedWorkerError as exc:
        raise SonoradError(
            "a worker process died (out of memory, or a crash inside a library); finished cases are cached. "
            "Fix: rerun with fewer --jobs (or --jobs 1) to resume"
        ) from exc


def cluster_batch_size(n_tasks: int, n_threads: int) -> int:
    """Cases per Dask task: about 8 tasks per worker thread, 1 to 16 cases each.

    Every task costs the driver and the scheduler a few milliseconds whatever it computes
    (``benchmarks/bench_scale.py``'s null-task run), as much as a small image's radiomics. Batches
    divide that cost by their size; 8 tasks per thread keep the workers evenly loaded at the end.
    """
    return int(min(16, max(1, -(-n_tasks // (8 * max(1, n_threads))))))


def _in_cluster_batch(function: Callable, items: Sequence[tuple]) -> list[tuple[int, object]]:
    """:func:`_in_cluster_worker` for each ``(index, task, blobs)`` of a batch, in one Dask task."""
    return [_in_cluster_worker(function, i, task, blobs) for i, task, blobs in items]


def _run_on_cluster(cluster, function: Callable, tasks: Sequence, *, on_result: Callable, progress_bar) -> None:
    """:func:`run_tasks` on a Dask cluster: file bytes travel with each task unless the filesystem is shared.

    Cases go in batches (:func:`cluster_batch_size`); the driver caches a batch's cases as it
    returns. A batch that kills every worker that runs it is split into single cases, so only
    the case that does it is reported as failed.
    """
    threads = cluster.n_threads()
    size = cluster_batch_size(len(tasks), threads)

    def item(i: int) -> tuple:
        return i, tasks[i], None if cluster.shared_fs else _read_files(tasks[i])

    def arguments() -> Iterator[tuple]:  # lazy: only the batches in flight hold their files' bytes
        for start in range(0, len(tasks), size):
            yield function, [item(i) for i in range(start, min(start + size, len(tasks)))]

    def handle(results) -> None:
        for i, result in results:
            on_result(i, result)
            progress_bar.update(1)

    def split(args: tuple) -> list[tuple]:
        _, items = args
        return [(function, [one]) for one in items]

    def killed(args: tuple) -> list[tuple[int, object]]:
        return [_killed_worker_result(i, task) for i, task, _ in args[1]]

    cluster.map_unordered(_in_cluster_batch, arguments(), handle, window=max(4, 2 * threads) if size > 1 else None,
                          split=split, on_worker_death=killed)


# --------------------------------------------------------------------------------------------
# running a list of tasks
# --------------------------------------------------------------------------------------------
class FeatureRows:
    """Per-task features, held compactly until they become one table.

    A task's features are kept as one float64 vector plus a reference to its list of names,
    and every task with the same feature list shares that list, so 10,000 cases cost little
    more than their numbers (a dict per case would repeat every feature name 10,000 times).
    """

    def __init__(self, n: int):
        self._names: dict[tuple[str, ...], int] = {}
        self._rows: list[tuple[int, np.ndarray] | None] = [None] * n

    def __len__(self) -> int:
        return len(self._rows)

    def set(self, i: int, features: Mapping) -> None:
        names = tuple(features)
        ref = self._names.setdefault(names, len(self._names))
        self._rows[i] = (ref, np.fromiter(features.values(), dtype=np.float64, count=len(names)))

    def has(self, i: int) -> bool:
        return self._rows[i] is not None

    def get(self, i: int) -> dict | None:
        row = self._rows[i]
        if row is None:
            return None
        names = self.names()[row[0]]
        return dict(zip(names, row[1].tolist()))

    def names(self) -> list[tuple[str, ...]]:
        return list(self._names)

    def frame(self, ids: Sequence[str], indices: Sequence[int]) -> pd.DataFrame:
        """Table of the tasks ``indices`` that succeeded, indexed by their ``ids``; columns in order of first use."""
        rows = [(cid, self._rows[i]) for cid, i in zip(ids, indices) if self._rows[i] is not None]
        names = self.names()
        columns: dict[str, None] = {}
        for ref in dict.fromkeys(row[0] for _, row in rows):
            columns.update(dict.fromkeys(names[ref]))
        index = (pd.Index([cid for cid, _ in rows], name="case_id") if rows
                 else pd.Index([], name="case_id", dtype=str))
        values = np.full((len(rows), len(columns)), np.nan, dtype=np.float64)
        position = {name: j for j, name in enumerate(columns)}
        where = {ref: np.fromiter((position[n] for n in names[ref]), dtype=np.intp, count=len(names[ref]))
                 for ref in dict.fromkeys(row[0] for _, row in rows)}
        for r, (_, (ref, vector)) in enumerate(rows):
            values[r, where[ref]] = vector
        return pd.DataFrame(values, index=index, columns=list(columns))


@dataclass
class Extraction:
    """Per-task features (compact rows), failures (``None`` where it succeeded) and cache statistics."""

    features: FeatureRows
    failures: list[dict | None]
    n_cached: int
    n_computed: int


def as_cache(cache) -> FeatureCache | None:
    """``cache`` as a :class:`FeatureCache`: a cache is kept, a folder path opened, ``None`` kept.

    Raises
    ------
    TypeError
        ``cache`` is none of these.
    """
    if cache is None or isinstance(cache, FeatureCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return FeatureCache(cache)
    raise TypeError(f"cache must be a FeatureCache, a folder path or None, got {type(cache).__name__}")


def check_jobs(jobs) -> int:
    """``jobs`` as an int after checking it is a whole number >= 1 (``True`` is refused).

    Raises
    ------
    ConfigError
        Naming the value and what to give instead.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ConfigError(f"jobs={jobs!r}: give the number of worker processes, a whole number >= 1")
    return int(jobs)


_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@contextmanager
def disk_full_message(folder: str | Path, what: str = "the feature cache"):
    """Turn "no space left on device" (or a full quota) while writing under ``folder`` into a clear error.

    Raises
    ------
    SonoradError
        Naming the folder and what to do; finished cases are already in the cache.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        raise SonoradError(
            f"the disk holding {folder} is full ({os.strerror(exc.errno)}) while writing {what}. "
            "Every case finished before this is in the cache. Fix: free space on that disk or point "
            "--out / --cache at a disk with room, then rerun the same command: it resumes from the cache"
        ) from exc


def extract_tasks(tasks: Sequence[Task], params: dict, *, cache: FeatureCache | None, jobs: int,
                  progress: bool, desc: str) -> Extraction:
    """Cached, parallel extraction of a list of tasks (shared by cohort extraction and ICC)."""
    from functools import partial

    from tqdm.auto import tqdm

    phash = params_hash(params)
    features = FeatureRows(len(tasks))
    failures: list[dict | None] = [None] * len(tasks)
    keys: list[str | None] = [None] * len(tasks)
    pending = []
    for i, task in enumerate(tasks):
        if cache is not None:
            keys[i] = task_cache_key(cache, task, phash)
            hit = cache.get(keys[i]) if keys[i] is not None else None
            if isinstance(hit, dict):
                features.set(i, hit)
                continue
        pending.append(i)
    n_cached = len(tasks) - len(pending)

    def on_result(j: int, result) -> None:
        i = pending[j]
        feats, failure = result
        if feats is not None:
            features.set(i, feats)
            if cache is not None and keys[i] is not None:
                with disk_full_message(cache.root):
                    cache.put(keys[i], feats)  # at once, so an interrupted run keeps this case
        else:
            failures[i] = failure

    with tqdm(total=len(tasks), initial=n_cached, desc=desc, unit="case", disable=not progress,
              dynamic_ncols=True) as bar:
        run_tasks(partial(radiomics_task, params=params), [tasks[i] for i in pending],
                  jobs=jobs, on_result=on_result, progress_bar=bar)
    log.info("%s: %d of %d from the cache, %d computed", desc, n_cached, len(tasks), len(pending))
    return Extraction(features, failures, n_cached, len(pending))


def feature_frame(ids: Sequence[str], features: FeatureRows, indices: Sequence[int] | None = None) -> pd.DataFrame:
    """Features of the successful cases, indexed by case_id in input order; columns in PyRadiomics order.

    ``indices`` are the tasks of ``features`` that belong to ``ids`` (default: the first ``len(ids)``).
    """
    indices = range(len(ids)) if indices is None else indices
    return features.frame(ids, indices)


def failure_frame(ids: Sequence[str], failures: Sequence[dict | None], stage: str) -> pd.DataFrame:
    """Failures table (``case_id, stage, error, fix``) of the tasks whose failure is not ``None``, in order."""
    rows = [{"case_id": cid, "stage": stage, **failure} for cid, failure in zip(ids, failures) if failure is not None]
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)
