"""Cohort-level feature extraction: cache, parallel workers, failures, parquet output.

:func:`extract_radiomics` runs :func:`sonorad.features.radiomics.extract_case` over every case of
a cohort table. Each result is written to the per-case :class:`~sonorad.features.store.FeatureCache`
as soon as the case finishes, so an interrupted run resumes where it stopped and a repeated run
extracts nothing new. A case that cannot be used becomes a row of the failures table
(``case_id, stage, error, fix``) and the others go on. :func:`extract_to_dir` is what
``sonorad extract`` calls: it also runs the deep-feature backbones and writes the output folder.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.errors import CaseError, CohortError, ConfigError, Problem, SonoradError
from sonorad.features.radiomics import extract_case, load_params, params_hash
from sonorad.features.store import FeatureCache, file_digest

__all__ = ["FAILURE_COLUMNS", "extract_radiomics", "extract_to_dir"]

log = logging.getLogger("sonorad.features")

#: Columns of every failures table.
FAILURE_COLUMNS = ["case_id", "stage", "error", "fix"]

_GENERIC_FIX = (
    "check that the image opens and that the mask outlines the lesion on it; "
    "run `sonorad validate` on the cohort table for file problems"
)


# --------------------------------------------------------------------------------------------
# cases and tasks
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Case:
    """What a worker needs to read one case (plain data, so it pickles cheaply)."""

    case_id: str
    image: str
    masks: tuple[str, ...]
    frame: int | None = None
    spacing: tuple[float, float] | None = None
    label: int | None = None  # the lesion's label in a label-map mask (``mask_label`` column)


@dataclass(frozen=True)
class _Task:
    """One extraction: a case, and which mask of it (``None``: the case's own ``mask``).

    ``variant`` is ``("perturbed", seed, index, n)`` for the ``index``-th of ``n`` perturbed masks
    (see :func:`sonorad.imaging.perturbed_masks`); used by :mod:`sonorad.features.icc`.
    """

    case: _Case
    variant: tuple | None = None


def _split_masks(value) -> tuple[str, ...]:
    from sonorad.imaging.roi import split_mask_paths

    return tuple(split_mask_paths(str(value)))


def _frame(value, case_id: str) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number == int(number) and number >= 0):
        raise CohortError([Problem(f"frame {value!r} is not a frame index", "give a whole number >= 0 or leave it empty",
                                   case_id=case_id, column="frame")], source="cohort table")
    return int(number)


def _mask_label(value, case_id: str) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number) or number <= 0 or not float(number).is_integer():
        raise CohortError([Problem(f"mask_label {value!r} is not a label", "give a whole number > 0 or leave it empty",
                                   case_id=case_id, column="mask_label")], source="cohort table")
    return int(number)


def _spacing(value, case_id: str) -> tuple[float, float] | None:
    from sonorad.cohort import SPACING_FIX, parse_spacing

    try:
        return parse_spacing(value)
    except ValueError as exc:
        raise CohortError([Problem(str(exc), SPACING_FIX, case_id=case_id, column="spacing_mm")],
                          source="cohort table") from None


def cases_from_table(table: pd.DataFrame, mask_column: str = "mask") -> list[_Case]:
    """The cases of a cohort table (from :func:`sonorad.cohort.read_cases`), in table order.

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by ``case_id`` (or with a ``case_id`` column); columns ``image``, ``mask_column``
        (absolute paths; several masks separated by ``;``) and optionally ``frame`` and
        ``spacing_mm`` (pixel size in mm, ``"row,col"`` or one number; overrides the file's spacing,
        for exports such as PNG that carry none).
    mask_column : str, default "mask"
        Which column holds the masks (``"mask2"`` for a second reader).

    Returns
    -------
    list of _Case

    Raises
    ------
    CohortError
        A required column is missing, a case id is repeated or a frame is not a whole number.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame (sonorad.cohort.read_cases), got {type(table).__name__}")
    problems = [
        Problem(f"column {column!r} is missing", "use sonorad.cohort.read_cases to load the cohort table",
                column=column)
        for column in ("image", mask_column) if column not in table.columns
    ]
    if problems:
        raise CohortError(problems, source="cohort table")
    ids = table["case_id"] if "case_id" in table.columns else pd.Series(table.index, index=table.index)
    ids = ids.astype(str).tolist()
    seen, repeated = set(), []
    for cid in ids:
        if cid in seen and cid not in repeated:
            repeated.append(cid)
        seen.add(cid)
    if repeated:
        raise CohortError([Problem("case id appears more than once", "give every lesion image its own case_id",
                                   case_id=cid, column="case_id") for cid in repeated], source="cohort table")
    frames = table["frame"].tolist() if "frame" in table.columns else [None] * len(ids)
    labels = dict(zip(ids, table["mask_label"].tolist())) if "mask_label" in table.columns else {}
    spacings = table["spacing_mm"].tolist() if "spacing_mm" in table.columns else [None] * len(ids)
    cases, problems = [], []
    for cid, image, masks, frame, spacing in zip(ids, table["image"].tolist(), table[mask_column].tolist(),
                                                  frames, spacings):
        if not isinstance(masks, str) or not masks.strip():
            masks_t: tuple[str, ...] = ()
        else:
            masks_t = _split_masks(masks)
        try:  # collect every bad cell, so the user fixes the table once
            cases.append(_Case(cid, str(image), masks_t, _frame(frame, cid), _spacing(spacing, cid),
                               _mask_label(labels.get(cid), cid)))
        except CohortError as exc:
            problems += exc.problems
    if problems:
        raise CohortError(problems, source="cohort table")
    return cases


def _cache_key(cache: FeatureCache, task: _Task, phash: str) -> str | None:
    """Content key of a task, or ``None`` when a file cannot be read (the worker will say why)."""
    case = task.case
    if not case.masks:
        return None
    try:
        digests = [file_digest(case.image)] + [file_digest(m) for m in case.masks]
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


def _task_files(task: _Task) -> list[str]:
    return [task.case.image, *task.case.masks]


def _read_files(task: _Task) -> dict[str, bytes]:
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


def _in_cluster_worker(function: Callable, index: int, task: _Task, blobs: dict[str, bytes] | None):
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


def _killed_worker_result(index: int, task: _Task) -> tuple[int, tuple[None, dict]]:
    return index, (None, {
        "error": "every worker that extracted this case died (out of memory, or a crash inside a library)",
        "fix": "check the image size and the parameter file (bin count, filters) for this case; "
               "give the workers more memory; " + _GENERIC_FIX,
    })


def _task_mask(task: _Task, mask: np.ndarray) -> np.ndarray:
    if task.variant is None:
        return mask
    kind, seed, index, n = task.variant
    if kind != "perturbed":
        raise ValueError(f"unknown mask variant {kind!r}")
    from sonorad.imaging import perturbed_masks

    return perturbed_masks(mask, int(seed), n=int(n))[int(index)]


def _radiomics_task(task: _Task, params: dict) -> tuple[dict | None, dict | None]:
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


def _run_tasks(function: Callable, tasks: Sequence, *, jobs: int, on_result: Callable, progress_bar) -> None:
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
    """:func:`_run_tasks` on a Dask cluster: file bytes travel with each task unless the filesystem is shared.

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
# orchestration
# --------------------------------------------------------------------------------------------
class _FeatureRows:
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
class _Extraction:
    """Per-task features (compact rows), failures (``None`` where it succeeded) and cache statistics."""

    features: _FeatureRows
    failures: list[dict | None]
    n_cached: int
    n_computed: int


def _as_cache(cache) -> FeatureCache | None:
    if cache is None or isinstance(cache, FeatureCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return FeatureCache(cache)
    raise TypeError(f"cache must be a FeatureCache, a folder path or None, got {type(cache).__name__}")


def _check_jobs(jobs) -> int:
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


def _extract_tasks(tasks: Sequence[_Task], params: dict, *, cache: FeatureCache | None, jobs: int,
                   progress: bool, desc: str) -> _Extraction:
    """Cached, parallel extraction of a list of tasks (shared by cohort extraction and ICC)."""
    from functools import partial

    from tqdm.auto import tqdm

    phash = params_hash(params)
    features = _FeatureRows(len(tasks))
    failures: list[dict | None] = [None] * len(tasks)
    keys: list[str | None] = [None] * len(tasks)
    pending = []
    for i, task in enumerate(tasks):
        if cache is not None:
            keys[i] = _cache_key(cache, task, phash)
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
        _run_tasks(partial(_radiomics_task, params=params), [tasks[i] for i in pending],
                   jobs=jobs, on_result=on_result, progress_bar=bar)
    log.info("%s: %d of %d from the cache, %d computed", desc, n_cached, len(tasks), len(pending))
    return _Extraction(features, failures, n_cached, len(pending))


def _feature_frame(ids: Sequence[str], features: _FeatureRows, indices: Sequence[int] | None = None) -> pd.DataFrame:
    """Features of the successful cases, indexed by case_id in input order; columns in PyRadiomics order.

    ``indices`` are the tasks of ``features`` that belong to ``ids`` (default: the first ``len(ids)``).
    """
    indices = range(len(ids)) if indices is None else indices
    return features.frame(ids, indices)


def _failure_frame(ids: Sequence[str], failures: Sequence[dict | None], stage: str) -> pd.DataFrame:
    rows = [{"case_id": cid, "stage": stage, **failure} for cid, failure in zip(ids, failures) if failure is not None]
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def _radiomics_run(table: pd.DataFrame, *, params=None, cache=None, jobs: int = 1, progress: bool = True,
                   mask_column: str = "mask", desc: str = "radiomics") -> tuple[pd.DataFrame, pd.DataFrame, _Extraction]:
    params = load_params(params)
    jobs = _check_jobs(jobs)
    cases = cases_from_table(table, mask_column=mask_column)
    run = _extract_tasks([_Task(case) for case in cases], params, cache=_as_cache(cache), jobs=jobs,
                         progress=progress, desc=desc)
    ids = [case.case_id for case in cases]
    return _feature_frame(ids, run.features), _failure_frame(ids, run.failures, "radiomics"), run


def extract_radiomics(table: pd.DataFrame, *, params: Mapping | str | Path | None = None,
                      cache: FeatureCache | str | Path | None = None, jobs: int = 1,
                      progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PyRadiomics features of every case of a cohort table.

    Parameters
    ----------
    table : pandas.DataFrame
        Cohort table from :func:`sonorad.cohort.read_cases`: indexed by (or with a column)
        ``case_id``, absolute ``image`` and ``mask`` paths (``;``-separated masks are unioned),
        optional ``frame``.
    params : mapping, str, Path or None
        PyRadiomics parameters (see :func:`sonorad.features.radiomics.load_params`); ``None`` for
        sonorad's shipped 2D file.
    cache : FeatureCache, str, Path or None
        Per-case cache. Cached cases are not recomputed; each new result is stored as soon as its
        case finishes. ``None``: no caching.
    jobs : int, default 1
        Worker processes (each limited to one BLAS / SimpleITK thread). Inside
        :func:`sonorad.parallel.use_cluster` the cases run on the Dask cluster instead.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    features : pandas.DataFrame
        One row per successful case (input order), indexed by ``case_id``; one float64 column per
        feature, PyRadiomics names and order.
    failures : pandas.DataFrame
        Columns ``case_id, stage, error, fix`` (``stage`` = ``"radiomics"``), one row per case that
        could not be used, in input order.

    Raises
    ------
    ConfigError
        Invalid parameters or ``jobs``.
    CohortError
        The table lacks ``image`` / ``mask`` or repeats a case id.
    """
    features, failures, _ = _radiomics_run(table, params=params, cache=cache, jobs=jobs, progress=progress)
    return features, failures


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def extract_to_dir(cases_csv: str | Path, out_dir: str | Path, *, params: Mapping | str | Path | None = None,
                   radiomics: bool = True, backbones: Sequence[str] = (), jobs: int = 1,
                   cache_dir: str | Path | None = None, progress: bool = True, scheduler=None,
                   shared_fs: bool = False) -> str:
    """Extract features for a cohort table and write them to a folder (``sonorad extract``).

    Writes ``out_dir/radiomics.parquet`` (when ``radiomics``), ``out_dir/deep_<backbone>.parquet``
    for each backbone (via :func:`sonorad.features.deep.extract_deep`), both indexed by case_id,
    and ``out_dir/failures.csv`` with the failures of every stage (header only when none).

    Parameters
    ----------
    cases_csv : str or Path
        Cohort table (see :func:`sonorad.cohort.read_cases`).
    out_dir : str or Path
        Output folder (created).
    params : mapping, str, Path or None
        PyRadiomics parameters; ``None`` for sonorad's default.
    radiomics : bool, default True
        Extract PyRadiomics features.
    backbones : sequence of str
        CNN backbones for deep features, e.g. ``["efficientnet_lite0"]``.
    jobs : int, default 1
        Worker processes for the radiomics extraction.
    cache_dir : str, Path or None
        Feature cache folder; default ``out_dir/.cache``.
    progress : bool, default True
        Show progress bars.
    scheduler : str, mapping or None
        Dask scheduler for the radiomics extraction (see :func:`sonorad.parallel.use_cluster`);
        ``None``: local worker processes. Deep features run in this process either way.
    shared_fs : bool, default False
        With a scheduler: workers read the files' paths themselves instead of receiving their bytes.

    Returns
    -------
    str
        A summary: cases extracted, failed and taken from the cache per stage, and the files written.

    Raises
    ------
    SonoradError
        The disk is full (the message names the folder), or the scheduler cannot be reached or went
        away; a rerun resumes from the cache.
    """
    from sonorad.cohort import read_cases
    from sonorad.parallel import use_cluster

    backbones = list(backbones)
    if not radiomics and not backbones:
        raise ConfigError("nothing to extract: radiomics is off and no backbone is given. Fix: add a backbone or radiomics=True")
    params = load_params(params)  # a bad parameter file fails before any work
    jobs = _check_jobs(jobs)
    table = read_cases(Path(cases_csv), require_label=False)  # features need no outcome
    out_dir = Path(out_dir)
    with disk_full_message(out_dir, "the output folder"):
        out_dir.mkdir(parents=True, exist_ok=True)
    cache = FeatureCache(Path(cache_dir) if cache_dir is not None else out_dir / ".cache")

    lines = [f"cohort: {len(table)} cases from {cases_csv}"]
    written: list[Path] = []
    all_failures: list[pd.DataFrame] = []

    def write(path: Path, writer: Callable[[Path], None]) -> None:
        with disk_full_message(path.parent, path.name):
            _write_atomic(path, writer)
        written.append(path)

    if radiomics:
        with use_cluster(scheduler, shared_fs=shared_fs) as cluster:
            features, failures, run = _radiomics_run(table, params=params, cache=cache, jobs=jobs, progress=progress)
        write(out_dir / "radiomics.parquet", features.to_parquet)
        all_failures.append(failures)
        where = "" if cluster is None else f" on the Dask cluster at {cluster.address}"
        lines.append(
            f"radiomics: {len(features)} of {len(table)} cases extracted ({features.shape[1]} features; "
            f"{run.n_cached} from cache, {run.n_computed} computed{where}), {len(failures)} failed"
        )
    for backbone in backbones:
        from sonorad.features.deep import extract_deep

        with disk_full_message(cache.root):
            features, failures = extract_deep(table, backbone, cache=cache, progress=progress)
        write(out_dir / f"deep_{backbone}.parquet", features.to_parquet)
        all_failures.append(failures)
        lines.append(f"deep {backbone}: {len(features)} of {len(table)} cases extracted "
                     f"({features.shape[1]} features), {len(failures)} failed")

    failures = pd.concat([f.reindex(columns=FAILURE_COLUMNS) for f in all_failures], ignore_index=True)
    failures_path = out_dir / "failures.csv"
    write(failures_path, lambda p: failures.to_csv(p, index=False))
    if len(failures):
        failed_ids = list(dict.fromkeys(failures["case_id"].astype(str)))
        shown = ", ".join(failed_ids[:5])
        more = f" and {len(failed_ids) - 5} more" if len(failed_ids) > 5 else ""
        lines.append(f"failed cases: {shown}{more} (reasons and fixes in {failures_path})")
    lines.append("written: " + ", ".join(str(p) for p in written))
    lines.append(f"cache: {cache.root}")
    return "\n".join(lines)
