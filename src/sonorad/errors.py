"""Exceptions and problem records shared by every layer.

A user mistake (a bad file, a wrong column, a bad study key) is reported as a :class:`Problem`
naming the case, the column or key, what is wrong and what to do; never as a bare traceback from
deep inside a library.
"""

from __future__ import annotations

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
