"""Exceptions and problem records shared by every layer.

A user mistake (a bad file, a wrong column, a bad study key) is reported as a :class:`Problem`
naming the case, the column or key, what is wrong and what to do; never as a bare traceback from
deep inside a library.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass

#: Columns of every table of excluded cases (``failures.csv``): one row per case and stage.
FAILURE_COLUMNS = ["case_id", "stage", "error", "fix"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as possible.

    Attributes
    ----------
    message : str
        What is wrong, in plain words.
    fix : str
        What the user can do about it.
    case_id : str or None
        The case concerned, when the problem belongs to one case.
    column : str or None
        The cohort column or study key concerned, when there is one.
    severity : str
        ``"error"`` (blocks: the input cannot be used as it is) or ``"warning"`` (listed, does not block).
    """

    message: str
    fix: str = ""
    case_id: str | None = None
    column: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = []
        if self.case_id is not None:
            where.append(f"case {self.case_id}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        head = f"[{', '.join(where)}] " if where else ""
        tail = f" Fix: {self.fix}" if self.fix else ""
        return f"{head}{self.message}.{tail}" if not self.message.endswith(".") else f"{head}{self.message}{tail}"

    def to_dict(self) -> dict:
        return asdict(self)


class SonoradError(Exception):
    """Base class of every error sonorad raises on purpose."""


class ConfigError(SonoradError):
    """A study file or option is invalid; the message names the key, the value and the choices."""


class CaseError(SonoradError):
    """One case cannot be used (unreadable image, mask mismatch, empty ROI, ...).

    Carries the case id so callers can record the failure and continue with the other cases.
    """

    def __init__(self, case_id: str | None, message: str, fix: str = ""):
        self.problem = Problem(message=message, fix=fix, case_id=case_id)
        self.case_id = case_id
        super().__init__(str(self.problem))

    def __reduce__(self):
        # Rebuilt from its own fields, so it crosses process boundaries (parallel extraction).
        return (type(self), (self.case_id, self.problem.message, self.problem.fix))


class CohortError(SonoradError):
    """A cohort table failed validation; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem], source: str = "cohort"):
        self.problems = list(problems)
        self.source = source
        lines = [f"{source}: {len(self.problems)} problem(s) found:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))

    def __reduce__(self):
        return (type(self), (self.problems, self.source))


class CaseWarning(UserWarning):
    """Something about one case that does not block it (disjoint lesions, a huge image, an overflow).

    The message starts with ``case <id>:`` so that wherever warnings are shown or logged, the case
    they belong to is named; ``case_id`` carries it for callers that collect warnings per case.
    """

    def __init__(self, case_id: str | None, message: str):
        self.case_id = case_id
        self.message = message
        super().__init__(f"case {case_id}: {message}" if case_id is not None else message)

    def __reduce__(self):
        return (type(self), (self.case_id, self.message))


@contextlib.contextmanager
def case_warnings(case_id: str | None) -> Iterator[list[CaseWarning]]:
    """Re-issue every warning raised inside the block as a :class:`CaseWarning` naming ``case_id``.

    Library warnings (Pillow's ``DecompressionBombWarning``, numpy overflow ``RuntimeWarning``,
    PyRadiomics' ``UserWarning``) otherwise reach the console without the case they belong to.
    Each distinct message is re-issued once, with its original category named; the list yielded
    holds the re-issued warnings, for callers that keep them per case. Deprecation warnings (meant
    for developers, hidden by default) are passed on unchanged.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     with case_warnings("C7"):
    ...         warnings.warn("overflow encountered in multiply", RuntimeWarning)
    >>> str(seen[0].message)
    'case C7: RuntimeWarning: overflow encountered in multiply'
    """
    routed: list[CaseWarning] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield routed
    seen: set[str] = set()
    for record in caught:
        if issubclass(record.category, (DeprecationWarning, PendingDeprecationWarning)):
            # Meant for developers, hidden by default: passed on unchanged, under the usual filters.
            warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
            continue
        if isinstance(record.message, CaseWarning) and (record.message.case_id == case_id or case_id is None):
            warning = record.message
        else:
            warning = CaseWarning(case_id, f"{record.category.__name__}: {record.message}")
        if str(warning) in seen:
            continue
        seen.add(str(warning))
        routed.append(warning)
        warnings.warn(warning, stacklevel=3)
