"""Cohort table (``cases.csv``): read it, check it (every problem at once, by case id), split it.

- :mod:`sonorad.cohort.reading`: :func:`read_cases` parses the table and resolves its paths;
  :func:`parse_spacing` and :func:`case_mask_settings` read per-case settings.
- :mod:`sonorad.cohort.checks`: :func:`validate_cases` returns every
  :class:`~sonorad.errors.Problem` found (``"error"`` blocks, ``"warning"`` is listed); a declared
  variable's values are checked by :mod:`sonorad.variables`, the rules prediction applies too.
- :mod:`sonorad.cohort.splitting`: the deterministic, patient-grouped split into ``train`` /
  ``internal`` / ``external``.
- :mod:`sonorad.cohort.cohort`: :func:`load_cohort` raises :class:`~sonorad.errors.CohortError` when
  any error exists and otherwise returns a :class:`Cohort` with the 0/1 outcome and the split.

Examples
--------
>>> cohort = load_cohort("cases.csv", study=load_study("study.yaml"))   # doctest: +SKIP
>>> cohort.subset("train").y.mean()                                      # doctest: +SKIP
"""

from sonorad.cohort.checks import OUTLIER_IQR_FACTOR, validate_cases
from sonorad.cohort.cohort import Cohort, load_cohort
from sonorad.cohort.reading import (
    PATH_COLUMNS,
    REQUIRED_COLUMNS,
    SPACING_FIX,
    case_mask_settings,
    parse_spacing,
    read_cases,
)
from sonorad.cohort.splitting import SPLIT_PARTS

__all__ = [
    "REQUIRED_COLUMNS",
    "PATH_COLUMNS",
    "SPLIT_PARTS",
    "SPACING_FIX",
    "OUTLIER_IQR_FACTOR",
    "Cohort",
    "read_cases",
    "validate_cases",
    "load_cohort",
    "parse_spacing",
    "case_mask_settings",
]
