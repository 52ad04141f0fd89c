"""Row builders shared by the bundle's scoring modules.

Every module that reports a per-case problem while scoring writes it with :func:`failure_row`, so
the ``failures`` table has one shape (``sonorad.errors.FAILURE_COLUMNS``: case_id, stage, error,
fix), and every message that shows a number formats it with :func:`format_value`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["failure_row", "format_value"]


def failure_row(case_id, stage: str, error: str, fix: str) -> dict:
    """One row of the ``failures`` table.

    Parameters
    ----------
    case_id : object
        The case that could not be used; stored as text.
    stage : str
        Where it failed (``"image"``, ``"variables"``, ``"model <name>"``, ...).
    error, fix : str
        What went wrong and what the user should do.

    Examples
    --------
    >>> failure_row(7, "image", "unreadable", "re-export it")["case_id"]
    '7'
    """
    return {"case_id": str(case_id), "stage": stage, "error": error, "fix": fix}


def format_value(x) -> str:
    """A value for a message: floats with 6 significant digits, anything else as ``str``.

    >>> format_value(0.1234567), format_value("a")
    ('0.123457', 'a')
    """
    return f"{x:.6g}" if isinstance(x, (float, np.floating)) else str(x)
