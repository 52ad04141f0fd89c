"""Generic figure helpers: save a matplotlib Figure for publication, draw the cohort flow diagram.

:func:`save_figure` writes a Figure as PNG and SVG at 300 dpi (what journals ask for).
:func:`cohort_flow_counts` counts cases from the split, the outcome and the extraction failures, and
:func:`cohort_flow_figure` draws them as a CONSORT-like flow: cases in the table, cases excluded (by
reason), and the training / internal / external sets with their number of positives. Given the
patient of each case, it counts images and patients ("n = 240 images (138 patients)") wherever they
differ.
Figures are built with the object-oriented API (``matplotlib.figure.Figure``), so no global pyplot
state is touched and no display is needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

__all__ = ["save_figure", "file_stem", "cohort_flow_counts", "cohort_flow_figure"]

_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PART_NAMES = {"train": "Training", "internal": "Internal validation", "external": "External validation"}
_PART_ORDER = ("train", "internal", "external")


def file_stem(text: str) -> str:
    """A name usable as a file stem: lower case, every run of other characters as ``_``.

    >>> file_stem("Rad-score"), file_stem("stage 2"), file_stem("DL-score (efficientnet_lite1)")
    ('rad_score', 'stage_2', 'dl_score_efficientnet_lite1')
    """
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def save_figure(fig, stem: str, out_dir: str | Path, *, dpi: int = 300) -> tuple[Path, Path]:
    """Save a Figure as ``<stem>.png`` and ``<stem>.svg``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    stem : str
        File name without extension: letters, digits, ``.``, ``_``, ``-`` (e.g. ``"roc_external"``).
    out_dir : str or Path
        Folder, created when missing.
    dpi : int, optional
        Resolution of the PNG (default 300).

    Returns
    -------
    (Path, Path)
        The PNG and SVG paths.
    """
    if not hasattr(fig, "savefig"):
        raise TypeError(f"fig must be a matplotlib Figure; got {type(fig).__name__}")
    if not isinstance(stem, str) or not _STEM.match(stem):
        raise ValueError(f"stem {stem!r} is not a plain file name. Fix: use letters, digits, '.', '_' or '-' "
                         "without a folder or extension (e.g. 'roc_external')")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    # No software / date metadata, so the same figure gives the same bytes on every run.
    fig.savefig(png, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(svg, dpi=dpi, bbox_inches="tight", metadata={"Date": None})
    return png, svg


def cohort_flow_counts(parts: pd.Series, y: pd.Series, failures: pd.DataFrame | None = None, *,
                       reason: str = "stage", patients: pd.Series | None = None) -> dict:
    """Count the cases of a cohort flow diagram.

    Parameters
    ----------
    parts : pandas.Series
        Part of every case in the cohort table (``cohort.split_labels()``), indexed by case id.
    y : pandas.Series
        0/1 outcome per case (``cohort.y``), same index.
    failures : pandas.DataFrame, optional
        Cases that could not be analysed (``failures.csv``: ``case_id, stage, error, fix``). A case
        with several failures is excluded once, under its first reason.
    reason : str, optional
        Column of ``failures`` used as the exclusion reason (default ``stage``; ``error`` is often
        too specific to group).
    patients : pandas.Series, optional
        Patient id per case (``cohort.groups``), same index. Each part then also counts its distinct
        patients (``"patients"``), and the counts gain ``"patients"`` (in the table) and
        ``"patients_analysed"``; ``n`` and ``positive`` always count images (cases).

    Returns
    -------
    dict
        ``{"total": int, "excluded": {reason: n}, "parts": {part: {"n": int, "positive": int}}}``
        (with the patient counts above when ``patients`` is given), the input of
        :func:`cohort_flow_figure`.
    """
    if not parts.index.equals(y.index):
        raise ValueError("parts and y must be indexed by the same case ids (cohort.split_labels() and cohort.y)")
    if patients is not None and not parts.index.equals(patients.index):
        raise ValueError("patients must be indexed by the same case ids as parts (cohort.groups and "
                         "cohort.split_labels())")
    excluded: dict[str, int] = {}
    failed: set = set()
    if failures is not None and len(failures):
        for column in ("case_id", reason):
            if column not in failures.columns:
                raise ValueError(f"failures has no {column!r} column; it has: {', '.join(failures.columns)}")
        first = failures.drop_duplicates("case_id")
        unknown = sorted(set(first["case_id"].astype(str)) - set(parts.index.astype(str)))
        if unknown:
            raise ValueError(f"failures lists cases that are not in the cohort: {', '.join(unknown[:10])}. "
                             "Fix: use the failures of this cohort's extraction")
        excluded = {str(k): int(v) for k, v in first[reason].fillna("unknown").value_counts(sort=False).items()}
        failed = set(first["case_id"].astype(str))
    kept = ~parts.index.astype(str).isin(failed)
    out_parts = {}
    ordered = [p for p in _PART_ORDER if p in set(parts)] + sorted(set(parts) - set(_PART_ORDER), key=str)
    for part in ordered:
        in_part = kept & (parts == part).to_numpy()
        out_parts[part] = {"n": int(in_part.sum()), "positive": int(y[in_part].sum())}
        if patients is not None:
            out_parts[part]["patients"] = int(patients[in_part].nunique())
    counts = {"total": int(len(parts)), "excluded": excluded, "parts": out_parts}
    if patients is not None:
        counts["patients"] = int(patients.nunique())
        counts["patients_analysed"] = int(patients[kept].nunique())
    return counts


def _n_text(images: int, patients) -> str:
    """``n = 240`` or, when patients were counted and differ, ``n = 240 images (138 patients)``."""
    if patients is None or int(patients) == int(images):
        return f"n = {images}"
    return f"n = {images} images ({int(patients)} patients)"


def _check_counts(counts: Mapping) -> tuple[int, dict, dict]:
    for key in ("total", "parts"):
        if key not in counts:
            raise ValueError(f"counts has no {key!r} entry. Fix: build it with cohort_flow_counts() or give "
                             "{'total': n, 'excluded': {reason: n}, 'parts': {part: {'n': n, 'positive': n}}}")
    total = int(counts["total"])
    excluded = {str(k): int(v) for k, v in dict(counts.get("excluded") or {}).items()}
    parts = {str(k): dict(v) for k, v in dict(counts["parts"]).items()}
    if not parts:
        raise ValueError("counts['parts'] is empty. Fix: give at least the training set")
    for part, entry in parts.items():
        if "n" not in entry:
            raise ValueError(f"counts['parts'][{part!r}] has no 'n'")
        if int(entry.get("positive", 0)) > int(entry["n"]) or int(entry["n"]) < 0:
            raise ValueError(f"counts['parts'][{part!r}]: positive ({entry.get('positive')}) must be between 0 "
                             f"and n ({entry['n']})")
    n_excluded = sum(excluded.values())
    n_parts = sum(int(e["n"]) for e in parts.values())
    if total - n_excluded != n_parts:
        raise ValueError(f"counts do not add up: total {total} - excluded {n_excluded} = {total - n_excluded}, "
                         f"but the parts hold {n_parts} cases. Fix: count every case of the table exactly once")
    return total, excluded, parts


def cohort_flow_figure(counts: Mapping, *, title: str | None = None, part_names: Mapping | None = None):
    """Draw a CONSORT-like flow diagram of the cohort.

    Parameters
    ----------
    counts : mapping
        ``{"total": n, "excluded": {reason: n}, "parts": {part: {"n": n, "positive": n}}}`` as
        returned by :func:`cohort_flow_counts`; ``total - sum(excluded) == sum(parts n)`` is checked.
    title : str, optional
        Figure title.
    part_names : mapping, optional
        Display names of the parts (default: Training, Internal validation, External validation).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    total, excluded, parts = _check_counts(counts)
    names = {**_PART_NAMES, **dict(part_names or {})}
    n_excluded = sum(excluded.values())
    k = len(parts)
    fig = Figure(figsize=(max(6.5, 2.6 * k), 5.0))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    box = {"boxstyle": "round,pad=0.5", "facecolor": "white", "edgecolor": "#333333", "linewidth": 1.0}
    text_kw = {"ha": "center", "va": "center", "fontsize": 9, "bbox": box}
    arrow = {"arrowstyle": "-|>", "color": "#333333", "linewidth": 1.0, "shrinkA": 0, "shrinkB": 0}
    top, middle, bottom = 0.86, 0.55, 0.16
    if title:
        ax.text(0.5, 0.97, title, ha="center", va="top", fontsize=11, fontweight="bold")
    ax.text(0.5, top, f"Cases in the cohort table\n{_n_text(total, counts.get('patients'))}", **text_kw)
    lines = [f"Excluded (n = {n_excluded})"] + [f"{reason}: {n}" for reason, n in excluded.items()]
    ax.text(0.80, (top + middle) / 2, "\n".join(lines), **{**text_kw, "ha": "left", "fontsize": 8})
    ax.annotate("", xy=(0.79, (top + middle) / 2), xytext=(0.5, (top + middle) / 2), arrowprops=arrow)
    ax.text(0.5, middle, f"Cases analysed\n{_n_text(total - n_excluded, counts.get('patients_analysed'))}",
            **text_kw)
    ax.annotate("", xy=(0.5, middle + 0.055), xytext=(0.5, top - 0.055), arrowprops=arrow)
    xs = [(i + 0.5) / k for i in range(k)]
    for x, (part, entry) in zip(xs, parts.items()):
        n, pos = int(entry["n"]), entry.get("positive")
        label = f"{names.get(part, part)}\n{_n_text(n, entry.get('patients'))}"
        if pos is not None:
            share = f" ({100 * int(pos) / n:.1f}%)" if n else ""
            label += f"\npositive {int(pos)}{share}"
        ax.text(x, bottom, label, **text_kw)
        ax.annotate("", xy=(x, bottom + 0.08), xytext=(0.5, middle - 0.055), arrowprops=arrow)
    return fig
