"""Paper-ready strings for estimates, confidence intervals and p-values.

One formatter per kind of number, used by every table and figure caption so a paper reads the
same throughout: ``0.940 (0.888-0.992)`` for an estimate with its CI, ``<0.001`` or three
decimals for a p-value. Pure functions; the report layer decides where the strings go.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["format_estimate", "format_ci", "format_p", "paper_table", "markdown_table"]


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or bool(pd.isna(x))


def format_estimate(x, digits: int = 3, *, na: str = "n/a") -> str:
    """A number with ``digits`` decimals (``na`` when missing or not finite).

    Examples
    --------
    >>> format_estimate(0.94012), format_estimate(float("nan"))
    ('0.940', 'n/a')
    """
    if _missing(x) or not math.isfinite(float(x)):
        return na
    return f"{float(x):.{digits}f}"


def format_ci(estimate, low, high, digits: int = 3, *, na: str = "n/a") -> str:
    """``estimate (low-high)``, e.g. ``0.940 (0.888-0.992)``.

    When a bound is negative the bounds are joined by `` to `` instead of a hyphen, so
    ``-0.560 (-0.900 to -0.220)`` cannot be misread. A missing estimate gives ``na``; a missing
    bound gives the estimate alone.

    Examples
    --------
    >>> format_ci(0.94, 0.8881, 0.9919)
    '0.940 (0.888-0.992)'
    >>> format_ci(-0.56, -0.9, 0.2, digits=2)
    '-0.56 (-0.90 to 0.20)'
    """
    if _missing(estimate) or not math.isfinite(float(estimate)):
        return na
    est = format_estimate(estimate, digits)
    if _missing(low) or _missing(high) or not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return est
    sep = " to " if float(low) < 0 or float(high) < 0 else "-"
    return f"{est} ({format_estimate(low, digits)}{sep}{format_estimate(high, digits)})"


def format_p(p, *, digits: int = 3, na: str = "") -> str:
    """A p-value: ``<0.001`` below 0.001, ``digits`` decimals otherwise (``na`` when undefined).

    Raises ``ValueError`` for a number outside [0, 1], which is not a p-value.

    Examples
    --------
    >>> format_p(0.0004), format_p(0.04321), format_p(1.0), format_p(float("nan"))
    ('<0.001', '0.043', '1.000', '')
    """
    if _missing(p):
        return na
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"format_p: {p!r} is not a p-value (must lie in [0, 1]).")
    floor = 10.0 ** -digits
    return f"<{floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"


def paper_table(frame: pd.DataFrame, columns: dict, *, p_values=(), digits: int = 3,
                na: str = "n/a") -> pd.DataFrame:
    """A table of strings for a paper (CSV or Markdown) from a table of numbers.

    Parameters
    ----------
    frame : pandas.DataFrame
        Numbers, one row per model / cohort / center.
    columns : dict
        Output header -> source. A source is a column name (numbers get ``digits`` decimals,
        integers and text are kept) or a tuple ``(estimate, low, high)`` of column names
        (formatted by :func:`format_ci`).
    p_values : iterable of str
        Output headers whose source column is a p-value (formatted by :func:`format_p`).
    digits : int
    na : str
        Text for a missing estimate.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["LR"], "n": [70], "auc": [0.94], "lo": [0.888], "hi": [0.992],
    ...                   "hl_p": [0.0004]})
    >>> paper_table(t, {"Model": "model", "n": "n", "AUC (95% CI)": ("auc", "lo", "hi"),
    ...                 "HL p": "hl_p"}, p_values=["HL p"]).iloc[0].tolist()
    ['LR', '70', '0.940 (0.888-0.992)', '<0.001']
    """
    p_values = set(p_values)
    missing = sorted({c for src in columns.values() for c in ((src,) if isinstance(src, str) else src)}
                     - set(frame.columns))
    if missing:
        raise ValueError(f"paper_table: columns {missing} are not in the table; "
                         f"it has {list(frame.columns)}.")
    out = pd.DataFrame(index=frame.index)
    for header, src in columns.items():
        if isinstance(src, tuple):
            est, low, high = src
            out[header] = [format_ci(e, lo, hi, digits, na=na)
                           for e, lo, hi in zip(frame[est], frame[low], frame[high])]
        elif header in p_values:
            out[header] = [format_p(v, digits=digits) for v in frame[src]]
        else:
            out[header] = [_cell(v, digits, na) for v in frame[src]]
    return out


def _cell(v, digits: int, na: str) -> str:
    if isinstance(v, str):
        return v
    if _missing(v):
        return na
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if float(v).is_integer() and not isinstance(v, float):
        return str(int(v))
    return format_estimate(v, digits, na=na)


def markdown_table(table: pd.DataFrame, *, index: bool = False) -> str:
    """A GitHub-flavoured Markdown pipe table of a table of strings (e.g. :func:`paper_table`).

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"Model": ["LR"], "AUC": ["0.940 (0.888-0.992)"]})))
    | Model | AUC |
    | --- | --- |
    | LR | 0.940 (0.888-0.992) |
    """
    frame = table.reset_index() if index else table

    def esc(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in frame.columns) + " |",
             "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
