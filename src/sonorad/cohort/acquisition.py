"""Acquisition by center: pixel spacing, image size, bit depth, format and scanner, from file headers.

:func:`case_acquisition` reads each case's image header once (no pixels: DICOM with
``stop_before_pixels``, NIfTI / NRRD image information, the Pillow formats' header) and its
``spacing_mm`` cell; :func:`acquisition_table` summarises it per center (the report's Table 1 /
methods and the model card); :func:`spacing_problems` is ``validate``'s spacing check: it reports the
spacing of each center and refuses a cohort whose centers mix spacings unless the study file has
chosen ``features.spacing`` (:mod:`sonorad.imaging.spacing`); :func:`training_spacing_mm` is the
default target of ``features.spacing: resample``.
"""

from __future__ import annotations

import pandas as pd

from sonorad.cohort.reading import parse_spacing
from sonorad.errors import Problem

__all__ = ["MAX_SPACING_RATIO", "case_acquisition", "acquisition_table", "spacing_problems", "training_spacing_mm",
           "resample_target"]

#: Largest ratio between two centers' median pixel spacings accepted without a study-wide rule.
MAX_SPACING_RATIO = 1.5

_FIX = ("choose the rule in the study file: `features.spacing: resample` (every image resampled to one "
        "spacing, by default the training median; each image needs a spacing, from its file or spacing_mm) "
        "or `features.spacing: pixels` (every spacing ignored, features in pixels)")


def _center_of(table: pd.DataFrame) -> pd.Series:
    if "center" in table.columns:
        return table["center"].map(lambda v: "(no center)" if pd.isna(v) else str(v))
    return pd.Series("(all)", index=table.index)


def case_acquisition(table: pd.DataFrame) -> pd.DataFrame:
    """Per case, what the image header and the ``spacing_mm`` cell say (header reads only).

    Parameters
    ----------
    table : DataFrame
        A cases table (``case_id``, ``image``; optional ``center``, ``spacing_mm``), paths resolved.

    Returns
    -------
    DataFrame
        Indexed like ``table``: ``case_id``, ``center``, ``format``, ``rows``, ``cols``, ``bit_depth``,
        ``manufacturer``, ``model``, ``spacing_row_mm``, ``spacing_col_mm`` (NaN when unknown) and
        ``spacing_from`` (``"spacing_mm"``, ``"file"`` or ``"none"``). A file that cannot be read has
        ``format`` ``None`` (the file checks say why).
    """
    from sonorad.imaging.spacing import header_info

    headers: dict[str, dict] = {}
    rows = []
    centers = _center_of(table)
    cells = table["spacing_mm"] if "spacing_mm" in table.columns else pd.Series(None, index=table.index)
    for index, path in table["image"].items():
        path = str(path) if isinstance(path, str) else None
        if path is not None and path not in headers:
            try:
                headers[path] = header_info(path)
            except Exception:  # noqa: BLE001 - a missing or unknown file is reported by the file checks
                headers[path] = {}
        info = headers.get(path, {}) if path is not None else {}
        try:
            given = parse_spacing(cells.at[index])
        except ValueError:
            given = None  # reported by the spacing_mm check
        spacing, source = (given, "spacing_mm") if given is not None else (info.get("spacing"), "file")
        if spacing is None:
            source = "none"
        rows.append({"case_id": str(table.at[index, "case_id"]) if "case_id" in table.columns else str(index),
                     "center": centers.at[index], "format": info.get("format"), "rows": info.get("rows"),
                     "cols": info.get("cols"), "bit_depth": info.get("bit_depth"),
                     "manufacturer": info.get("manufacturer"), "model": info.get("model"),
                     "spacing_row_mm": spacing[0] if spacing else float("nan"),
                     "spacing_col_mm": spacing[1] if spacing else float("nan"), "spacing_from": source})
    return pd.DataFrame(rows, index=table.index)


def _values(series: pd.Series) -> str:
    values = [str(v) for v in dict.fromkeys(series.dropna())]
    return ", ".join(values) if values else ""


def _range(low, high, digits: str = ".3g") -> str:
    if pd.isna(low):
        return ""
    return f"{low:{digits}}" if low == high else f"{low:{digits}}-{high:{digits}}"


def acquisition_table(table: pd.DataFrame, cases: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per center: how its images were acquired and stored.

    Parameters
    ----------
    table : DataFrame
        A cases table (``case_id``, ``image``; optional ``center``, ``spacing_mm``).
    cases : DataFrame, optional
        :func:`case_acquisition` of ``table`` when already computed.

    Returns
    -------
    DataFrame
        Index ``center``; columns ``cases``, ``with_spacing`` (cases whose spacing is known),
        ``spacing_from`` (``spacing_mm`` / ``file`` / ``none``, as found), ``spacing_mm`` (min-max of the
        cases' in-plane spacing), ``median_spacing_mm`` (NaN without spacing), ``image_size``
        (rows x cols, min-max), ``bit_depth``, ``format`` and ``scanner`` (DICOM manufacturer and
        model, empty when unknown).
    """
    cases = case_acquisition(table) if cases is None else cases
    out = []
    for center, group in cases.groupby("center", sort=False):
        mean = (group["spacing_row_mm"] + group["spacing_col_mm"]) / 2
        scanners = (group["manufacturer"].fillna("") + " " + group["model"].fillna("")).str.strip()
        out.append({"center": center, "cases": len(group), "with_spacing": int(mean.notna().sum()),
                    "spacing_from": _values(group["spacing_from"]),
                    "spacing_mm": _range(mean.min(), mean.max()),
                    "median_spacing_mm": float(mean.median()) if mean.notna().any() else float("nan"),
                    "image_size": (f"{_range(group['rows'].min(), group['rows'].max(), 'g')} x "
                                   f"{_range(group['cols'].min(), group['cols'].max(), 'g')}")
                    if group["rows"].notna().any() else "",
                    "bit_depth": _values(group["bit_depth"].map(lambda v: None if pd.isna(v) else int(v))),
                    "format": _values(group["format"]),
                    "scanner": _values(scanners.replace("", None))})
    return pd.DataFrame(out).set_index("center") if out else pd.DataFrame(
        columns=["cases", "with_spacing", "spacing_from", "spacing_mm", "median_spacing_mm", "image_size",
                 "bit_depth", "format", "scanner"], index=pd.Index([], name="center"))


def _center_line(center, row) -> str:
    if not row["with_spacing"]:
        return f"{center}: no spacing ({row['cases']} cases; features in pixels)"
    part = "" if row["with_spacing"] == row["cases"] else f"{row['with_spacing']} of "
    return (f"{center}: {part}{row['cases']} cases from {row['spacing_from'].replace('none', '').strip(', ')}, "
            f"{row['spacing_mm']} mm (median {row['median_spacing_mm']:.3g})")


def spacing_problems(table: pd.DataFrame, study=None, cases: pd.DataFrame | None = None) -> list[Problem]:
    """``validate``'s spacing check: the spacing of every center, and a refusal of a mix.

    Nothing is said when no image has a spacing (every feature is in pixels). Otherwise one
    ``info`` line gives each center's spacing (which centers have one, from the file or
    ``spacing_mm``, and its range), and, when the study file has no ``features.spacing``, an error
    names the centers when some centers have a spacing and others none, when a center mixes cases
    with and without one, or when two centers' median spacings differ by more than
    :data:`MAX_SPACING_RATIO`. Under ``features.spacing: resample`` the cases without a spacing
    are errors (each would be refused at extraction).
    """
    cases = case_acquisition(table) if cases is None else cases
    known = cases["spacing_row_mm"].notna()
    features = dict(getattr(study, "features", None) or {})
    rule = features.get("spacing")
    if rule == "resample":
        from sonorad.variables import cases_text

        missing = [Problem(f"center {center}: {len(group)} image(s) have no pixel spacing (neither the file nor "
                           f"spacing_mm gives one: {cases_text(group['case_id'])}), but features.spacing is "
                           "resample and every image is resampled to one spacing", column="spacing_mm",
                           fix="fill spacing_mm with each image's pixel size in mm (or use exports that record it), "
                               "or set features.spacing: pixels")
                   for center, group in cases.loc[~known].groupby("center", sort=False)]
        return missing + ([_report(cases, rule)] if known.any() else [])
    if not known.any():
        return []
    report = _report(cases, rule)
    if rule is not None:
        return [report]
    by_center = acquisition_table(table, cases)
    without = [str(c) for c, r in by_center.iterrows() if r["with_spacing"] == 0]
    partial = [str(c) for c, r in by_center.iterrows() if 0 < r["with_spacing"] < r["cases"]]
    medians = by_center["median_spacing_mm"].dropna()
    reasons = []
    if without:
        having = [str(c) for c in medians.index]
        reasons.append(f"{_centers(without)} {'has' if len(without) == 1 else 'have'} no pixel spacing while "
                       f"{_centers(having)} {'has' if len(having) == 1 else 'have'} one")
    if partial:
        reasons.append(f"{_centers(partial)} {'mixes' if len(partial) == 1 else 'mix'} cases with and without a "
                       "pixel spacing")
    if len(medians) > 1 and medians.max() > MAX_SPACING_RATIO * medians.min():
        reasons.append(f"median spacings differ by {medians.max() / medians.min():.2f}x (more than "
                       f"{MAX_SPACING_RATIO:g}x) between {medians.idxmin()} ({medians.min():.3g} mm) and "
                       f"{medians.idxmax()} ({medians.max():.3g} mm)")
    if not reasons:
        return [report]
    return [Problem("pixel spacing differs between centers: " + "; ".join(reasons) + ". Shape and texture "
                    "features would be in millimetres for some images and in pixels (or another scale) for "
                    "others. " + report.message, fix=_FIX, column="features.spacing")]


def _centers(names) -> str:
    return ("center " if len(names) == 1 else "centers ") + ", ".join(names)


def _report(cases: pd.DataFrame, rule) -> Problem:
    by_center = acquisition_table(pd.DataFrame(), cases)
    lines = "; ".join(_center_line(c, r) for c, r in by_center.iterrows())
    chosen = f" (features.spacing: {rule})" if rule else ""
    return Problem(f"pixel spacing by center{chosen}: {lines}", column="features.spacing", severity="info")


def training_spacing_mm(table: pd.DataFrame, train_ids=None) -> float | None:
    """The median in-plane spacing (mm) of the training cases that have one (header reads only);
    ``None`` when none has. The default target of ``features.spacing: resample``."""
    from sonorad.imaging.spacing import median_spacing

    part = table if train_ids is None else table.loc[list(train_ids)]
    cases = case_acquisition(part)
    known = cases.dropna(subset=["spacing_row_mm"])
    return median_spacing(zip(known["spacing_row_mm"], known["spacing_col_mm"]))


def resample_target(spacing: str | None, spacing_mm: float | None, table: pd.DataFrame,
                    parts: pd.Series) -> float | None:
    """The target spacing (mm) of ``features.spacing: resample``: ``spacing_mm`` when the study gives
    it, else the median of the training cases (``parts == "train"``); ``None`` for other rules.

    Raises
    ------
    ConfigError
        ``resample`` without ``spacing_mm`` and no training image has a spacing.
    """
    if spacing != "resample" or spacing_mm is not None:
        return spacing_mm
    from sonorad.errors import ConfigError

    train = [c for c in table.index if parts.get(c) == "train"]
    target = training_spacing_mm(table, train)
    if target is None:
        raise ConfigError("features.spacing: resample needs a target spacing, and no training image has a pixel "
                          "spacing (from its file or spacing_mm) to take the median of. Fix: set "
                          "features.spacing_mm (mm per pixel), fill spacing_mm, or set features.spacing: pixels")
    return round(target, 6)
