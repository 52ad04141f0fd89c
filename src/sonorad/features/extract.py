"""Cohort-level feature extraction: cache, parallel workers, failures, parquet output.

:func:`extract_radiomics` runs :func:`sonorad.features.radiomics.extract_case` over every case of
a cohort table. Each result is written to the per-case :class:`~sonorad.features.store.FeatureCache`
as soon as the case finishes, so an interrupted run resumes where it stopped and a repeated run
extracts nothing new. A case that cannot be used becomes a row of the failures table
(``case_id, stage, error, fix``) and the others go on. :func:`extract_to_dir` is what
``sonorad extract`` calls: it also runs the deep-feature backbones and writes the output folder.
The engine underneath (tasks, cache keys, workers) is :mod:`sonorad.features.engine`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from sonorad.errors import FAILURE_COLUMNS, CohortError, ConfigError, Problem
from sonorad.features.engine import (
    Case,
    Extraction,
    Task,
    as_cache,
    check_jobs,
    disk_full_message,
    extract_tasks,
    failure_frame,
    feature_frame,
)
from sonorad.features.radiomics import load_params
from sonorad.features.store import FeatureCache
from sonorad.provenance import atomic_write

__all__ = ["cases_from_table", "extract_radiomics", "extract_to_dir"]


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


def cases_from_table(table: pd.DataFrame, mask_column: str = "mask") -> list[Case]:
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
    list of Case

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
            cases.append(Case(cid, str(image), masks_t, _frame(frame, cid), _spacing(spacing, cid),
                              _mask_label(labels.get(cid), cid)))
        except CohortError as exc:
            problems += exc.problems
    if problems:
        raise CohortError(problems, source="cohort table")
    return cases


def _radiomics_run(table: pd.DataFrame, *, params=None, cache=None, jobs: int = 1, progress: bool = True,
                   mask_column: str = "mask", desc: str = "radiomics") -> tuple[pd.DataFrame, pd.DataFrame, Extraction]:
    params = load_params(params)
    jobs = check_jobs(jobs)
    cases = cases_from_table(table, mask_column=mask_column)
    run = extract_tasks([Task(case) for case in cases], params, cache=as_cache(cache), jobs=jobs,
                        progress=progress, desc=desc)
    ids = [case.case_id for case in cases]
    return feature_frame(ids, run.features), failure_frame(ids, run.failures, "radiomics"), run


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


def extract_to_dir(cases_csv: str | Path, out_dir: str | Path, *, params: Mapping | str | Path | None = None,
                   radiomics: bool = True, backbones: Sequence[str] = (), jobs: int = 1,
                   cache_dir: str | Path | None = None, progress: bool = True, scheduler=None,
                   shared_fs: bool = False) -> str:
    """Extract features for a cohort table and write them to a folder (``sonorad extract``).

    Writes ``out_dir/radiomics.parquet`` (when ``radiomics``), ``out_dir/deep_<backbone>.parquet``
    for each backbone (via :func:`sonorad.deep.extractor.extract_deep`), both indexed by case_id,
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
    jobs = check_jobs(jobs)
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
            atomic_write(path, writer)
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
        from sonorad.deep.extractor import extract_deep

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
