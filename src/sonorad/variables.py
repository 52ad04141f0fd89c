"""A declared variable's rules: type, levels, canonical value, range and unseen-level policy.

A clinical or ultrasound variable is declared once in the study file (:class:`VariableSpec`). This
module is the one place that says what a value of such a variable may be, so that validating a
cohort (:mod:`sonorad.cohort`), scoring new cases (:mod:`sonorad.bundle.schema`) and the calculator
form (:mod:`sonorad.serve.form`) accept and refuse the same values with the same words:

- :func:`canonical_value`: the text form under which levels and labels are compared;
- :func:`check_value` / :func:`check_column`: one value (or a column) against a variable, giving its
  canonical value or a :class:`~sonorad.errors.Problem` naming the variable, the value, what is wrong
  and the fix;
- :func:`plausible_range`: the values a numeric variable accepts, declared in the study file or,
  when a model is scored, derived from the training cohort's quartiles;
- :func:`apply_unseen_policy`: what prediction does with a categorical value the model never saw.

A numeric value must be a finite number within the float32 range (``|x| <= 3.4e38``, the range the
models compute in), and within the declared ``range`` when there is one; an empty cell (or ``nan``)
is missing, which is allowed. Without a declared range, a value to be scored by a model must lie
within :data:`OUTLIER_IQR_FACTOR` interquartile ranges of the training quartiles (and must not be
negative when no training value was): a model gives 0 or 1 for an age of 400, a number it never
saw, so such a value is refused rather than scored. A binary, ordinal or categorical value must be one of the declared
levels; a categorical variable without declared levels accepts any value, except, when the levels
the model was trained with are given, a value outside them under ``unseen: error``. Under
``unseen: other`` a categorical value outside the known levels is accepted and coded at prediction
by :func:`apply_unseen_policy` (a cohort to model is held to the declared levels by
:mod:`sonorad.cohort.checks`).

Examples
--------
>>> spec = VariableSpec("age", "numeric", range=(0.0, 120.0))
>>> check_value(spec, " 54 "), check_value(spec, ""), check_value(spec, "fifty").message
(54.0, None, "age = 'fifty' is not a number")
>>> check_value(spec, float("inf")).message
'age = inf is not a finite number (infinite, or beyond the float32 limit of 3.4e+38)'
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sonorad.errors import CohortError, Problem

__all__ = [
    "VARIABLE_TYPES",
    "VARIABLE_ROLES",
    "UNSEEN_POLICIES",
    "OTHER_LEVEL",
    "FLOAT32_MAX",
    "OUTLIER_IQR_FACTOR",
    "VariableSpec",
    "PlausibleRange",
    "plausible_range",
    "canonical_value",
    "check_value",
    "check_column",
    "group_problems",
    "cases_text",
    "apply_unseen_policy",
    "unseen_problems",
]

#: Types a declared variable may have.
VARIABLE_TYPES = ("numeric", "binary", "categorical", "ordinal")
#: Roles a declared variable may have.
VARIABLE_ROLES = ("clinical", "ultrasound")
#: What to do at prediction time with a categorical value training never saw (``variables.X.unseen``).
UNSEEN_POLICIES = ("error", "other")
#: The level an unseen value becomes under ``unseen: other``.
OTHER_LEVEL = "other"
#: The largest magnitude a numeric value may have: the float32 limit (about 3.4e38).
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Without a declared range, a numeric value further than this many interquartile ranges outside the
#: training quartiles is refused at prediction (and flagged when a cohort is validated).
OUTLIER_IQR_FACTOR = 10.0

_BINARY_DEFAULT_LEVELS = ("0", "1")
_MAX_LISTED = 10
_DECIMAL_COMMA = re.compile(r"-?\d+,\d+")
_MISSING_FIX = "leave it empty if unknown (missing values are imputed)"


def canonical_value(value: Any) -> str | None:
    """Return the text form under which a table value or a declared level is compared.

    Levels and labels are compared as text so that a YAML ``2``, a CSV ``2`` and a pandas ``2.0``
    (an integer column with missing values) are the same level. Missing values give ``None``.

    Parameters
    ----------
    value : object
        A cell of the cohort table or a level from the study file.

    Returns
    -------
    str or None
        Stripped text; numbers with an integer value are written without a decimal part.

    Examples
    --------
    >>> canonical_value(2.0), canonical_value(" 4a "), canonical_value("3"), canonical_value(float("nan"))
    ('2', '4a', '3', None)
    """
    if value is None or type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing markers
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)) or type(value).__module__ == "numpy":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value).strip()
        if math.isnan(number):
            return None
        if number.is_integer():
            return str(int(number))
        return repr(number)
    text = str(value).strip()
    if text == "" or text.lower() in ("nan", "na", "n/a"):
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() else repr(number)


@dataclass(frozen=True)
class VariableSpec:
    """A clinical or ultrasound variable declared in the study file.

    Attributes
    ----------
    name : str
        The cohort-table column.
    type : str
        One of ``numeric``, ``binary``, ``categorical``, ``ordinal``.
    levels : tuple of str or None
        Allowed values of a categorical or binary variable (canonical text). For a binary variable
        the second level is the one coded 1; without declared levels a binary variable holds 0/1.
        ``None`` for a categorical variable means any value is accepted.
    order : tuple of str or None
        Ordered levels of an ordinal variable, lowest first (ordinal only).
    role : str or None
        ``clinical`` or ``ultrasound`` (radiologist-scored), when declared.
    description : str or None
        Free text shown in reports.
    range : tuple of float or None
        ``[low, high]``: the plausible values of a numeric variable (both included); a value outside
        is a validation error naming the case. Without it a robust outlier rule warns
        (:mod:`sonorad.cohort.checks`).
    unseen : str
        Categorical variables: what prediction does with a value outside the levels the model knows
        (the declared levels, else those the training cohort held): ``"error"`` (default; the case
        is refused, naming it) or ``"other"`` (the value becomes the level ``other`` when the model
        knows one, else missing, imputed like a missing value; with a warning naming the case). See
        :func:`check_value` and :func:`apply_unseen_policy`.
    unit : str or None
        Unit of a numeric variable (``"years"``, ``"mm"``), shown beside the calculator's field and
        named in the advice for a bad value.
    """

    name: str
    type: str
    levels: tuple[str, ...] | None = None
    order: tuple[str, ...] | None = None
    role: str | None = None
    description: str | None = None
    range: tuple[float, float] | None = None
    unseen: str = "error"
    unit: str | None = None

    @property
    def allowed_values(self) -> tuple[str, ...] | None:
        """The values the column may hold (canonical text), or ``None`` when any value is allowed."""
        if self.type == "ordinal":
            return self.order
        if self.type == "binary":
            return self.levels or _BINARY_DEFAULT_LEVELS
        if self.type == "categorical":
            return self.levels
        return None


# --- plausible values ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlausibleRange:
    """The values a numeric variable accepts: ``low <= x <= high``.

    Attributes
    ----------
    low, high : float
    source : str
        ``"declared"`` (``variables.<name>.range`` of the study file) or ``"training"`` (derived from
        the training cohort's quartiles by :func:`plausible_range`).
    basis : str
        How it was set, in words, for messages.
    """

    low: float
    high: float
    source: str
    basis: str

    def __contains__(self, number: float) -> bool:
        return self.low <= number <= self.high


def _pair(value) -> tuple[float, float] | None:
    """``[a, b]`` of two finite numbers as floats, else ``None`` (absent or damaged)."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (a, b) if math.isfinite(a) and math.isfinite(b) else None


def plausible_range(spec: VariableSpec, training=None) -> PlausibleRange | None:
    """The range a value of a numeric variable must lie in, or ``None`` when any finite value goes.

    The declared ``variables.<name>.range`` when there is one. Otherwise, when the training cohort's
    quartiles are known (a bundle's schema stores them), ``q1 - k * IQR`` to ``q3 + k * IQR`` with
    ``k =`` :data:`OUTLIER_IQR_FACTOR`, and not below 0 when no training value was negative: far
    wider than any real spread (ages with quartiles 43 and 61 give 0 to 233), so it only refuses
    typing, unit and missing-value-code errors, for which a model's probability means nothing.

    Parameters
    ----------
    spec : VariableSpec
    training : mapping, optional
        What the training cohort held: ``quartiles`` ([q1, q3]) and ``range`` ([min, max]). Without
        quartiles (a bundle written before they were stored) nothing is derived.

    Returns
    -------
    PlausibleRange or None

    Examples
    --------
    >>> r = plausible_range(VariableSpec("age", "numeric"), {"quartiles": [43.4, 60.6], "range": [24, 84]})
    >>> (r.low, round(r.high, 1), r.source), 400 in r, -5 in r, 90 in r
    ((0.0, 232.6, 'training'), False, False, True)
    """
    if spec.type != "numeric":
        return None
    if spec.range is not None:
        low, high = spec.range
        return PlausibleRange(float(low), float(high), "declared",
                              f"the declared range of variables.{spec.name}.range")
    training = training or {}
    quartiles = _pair(training.get("quartiles"))
    if quartiles is None or not quartiles[1] - quartiles[0] > 0:
        return None
    q1, q3 = quartiles
    spread = OUTLIER_IQR_FACTOR * (q3 - q1)
    low, high = q1 - spread, q3 + spread
    basis = (f"{OUTLIER_IQR_FACTOR:g} interquartile ranges beyond the training quartiles "
             f"{q1:g} and {q3:g}")
    seen = _pair(training.get("range"))
    if seen is not None and seen[0] >= 0 and low < 0:
        low = 0.0
        basis += ", and not negative as no training value was"
    return PlausibleRange(low, high, "training", basis)


# --- one value ------------------------------------------------------------------------------------

def _shown(value: Any) -> str:
    """A value as a message quotes it: numbers as numbers (``1e+308``), text in quotes."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return f"{float(value):.15g}"
    return repr(str(value).strip())


def _as_number(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is not a number (text is parsed, booleans are not numbers)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str) and "_" not in value:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _problem(spec: VariableSpec, value: Any, what: str, fix: str) -> Problem:
    return Problem(f"{spec.name} = {_shown(value)} {what}", fix=fix, column=spec.name)


def _check_number(spec: VariableSpec, value: Any, training=None) -> float | Problem:
    number = _as_number(value)
    if number is None:
        text = str(value).strip()
        hint = " (a decimal comma?)" if _DECIMAL_COMMA.fullmatch(text) else ""
        unit = f" in {spec.unit}" if spec.unit else ""
        return _problem(spec, value, f"is not a number{hint}",
                        f"write a number{unit} (decimal point '.'), or {_MISSING_FIX}")
    if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
        return _problem(spec, number, f"is not a finite number (infinite, or beyond the float32 limit of "
                                      f"{FLOAT32_MAX:.2g})", f"correct the value, or {_MISSING_FIX}")
    accepted = plausible_range(spec, training)
    if accepted is None or number in accepted:
        return number
    if accepted.source == "declared":
        return _problem(spec, number, f"is outside the declared range [{accepted.low:g}, {accepted.high:g}] of "
                                      f"variables.{spec.name}.range",
                        f"correct the value (a unit error, a missing-value code such as 999?), {_MISSING_FIX}, "
                        f"or widen variables.{spec.name}.range")
    unit = f" {spec.unit}" if spec.unit else ""
    return _problem(spec, number, f"is far outside the values of the training cohort, so the model cannot score "
                                  f"it (accepted: {accepted.low:g} to {accepted.high:g}{unit}, {accepted.basis})",
                    f"check the value (a unit error, a typing error, a missing-value code such as 999?) and "
                    f"correct it, or {_MISSING_FIX}; if such a value is truly plausible, declare "
                    f"variables.{spec.name}.range: [low, high] in the study file")


def _check_level(spec: VariableSpec, text: str, known_levels) -> str | Problem:
    allowed = spec.allowed_values
    lenient = spec.type == "categorical" and spec.unseen == "other"
    if allowed is not None:
        if text in allowed or lenient:
            return text
        kind = "order" if spec.type == "ordinal" else "levels"
        if spec.type == "binary" and not spec.levels:
            fix = (f"recode the column as 0/1, or declare its two values as variables.{spec.name}.levels: "
                   "[negative, positive]")
        else:
            fix = f"correct the value, or add the value to variables.{spec.name}.{kind} in the study file"
            if spec.type == "categorical":
                fix += f" (or declare variables.{spec.name}.unseen: other)"
        return _problem(spec, text, f"is not one of the declared {kind} [{', '.join(allowed)}] of this "
                                    f"{spec.type} variable", fix)
    if known_levels is None or spec.type != "categorical" or lenient:
        return text
    known = _known(known_levels)
    if text in known:
        return text
    shown = ", ".join(known[:_MAX_LISTED]) + (", ..." if len(known) > _MAX_LISTED else "")
    return _problem(spec, text, f"was never seen in training (training levels: {shown}), so the model cannot "
                                "score it",
                    f"recode it to a training level if it means one, or declare variables.{spec.name}.unseen: "
                    "other in the study file")


def check_value(spec: VariableSpec, value: Any, known_levels: Iterable | None = None,
                training=None) -> float | str | None | Problem:
    """Check one value of a declared variable; return its canonical value or what is wrong with it.

    Parameters
    ----------
    spec : VariableSpec
        The variable as declared.
    value : object
        A table cell or a posted value: a number, a text, a boolean or a missing marker.
    known_levels : iterable, optional
        The levels the model was trained with. Only used for a categorical variable without
        declared levels: under ``unseen: error`` a value outside them is refused.
    training : mapping, optional
        A numeric variable's training ``quartiles`` and ``range`` (see :func:`plausible_range`): given
        when a model is to score the value, so that a value far outside them is refused.

    Returns
    -------
    float, str, None or Problem
        ``None`` for a missing value (empty, ``nan``); a float for a numeric variable; the level
        in canonical text (:func:`canonical_value`) otherwise. A refused value gives an error
        :class:`~sonorad.errors.Problem` (``column`` = the variable, no case) whose message names the
        variable and the value and says what is wrong, and whose ``fix`` says what to do. A
        categorical value outside the known levels under ``unseen: other`` is accepted as it is:
        :func:`apply_unseen_policy` codes it at prediction.

    Examples
    --------
    >>> check_value(VariableSpec("birads", "ordinal", order=("3", "4", "5")), 4.0)
    '4'
    >>> print(check_value(VariableSpec("edge", "binary"), 2))
    [column 'edge'] edge = '2' is not one of the declared levels [0, 1] of this binary variable. Fix: recode \
the column as 0/1, or declare its two values as variables.edge.levels: [negative, positive]
    """
    if spec.type == "numeric":
        if canonical_value(value) is None and not isinstance(value, (bool, np.bool_)):
            return None
        return _check_number(spec, value, training)
    text = canonical_value(value)
    if text is None:
        return None
    return _check_level(spec, text, known_levels)


def check_column(spec: VariableSpec, values: pd.Series,
                 known_levels: Iterable | None = None) -> tuple[pd.Series, pd.Series]:
    """:func:`check_value` over a column.

    Parameters
    ----------
    spec : VariableSpec
    values : pandas.Series
        The variable's values, indexed by case.
    known_levels : iterable, optional
        As for :func:`check_value`.

    Returns
    -------
    checked : pandas.Series
        Canonical values (object dtype; ``None`` where missing or refused), same index.
    problems : pandas.Series
        The :class:`~sonorad.errors.Problem` of each refused value, ``None`` elsewhere, same index.
    """
    known = None if known_levels is None else tuple(known_levels)
    cache: dict = {}
    results = []
    for value in values:
        key = (type(value), value)
        try:
            result = cache[key]
        except (KeyError, TypeError):
            result = check_value(spec, value, known)
            try:
                cache[key] = result
            except TypeError:
                pass
        results.append(result)
    refused = [r if isinstance(r, Problem) else None for r in results]
    checked = [None if isinstance(r, Problem) else r for r in results]
    return (pd.Series(checked, index=values.index, dtype=object, name=values.name),
            pd.Series(refused, index=values.index, dtype=object, name=values.name))


# --- problems of many cases -----------------------------------------------------------------------

def cases_text(ids: Iterable) -> str:
    """``case a`` / ``cases a, b and 3 more``: the cases a problem concerns, the first few by name."""
    ids = [str(i) for i in ids]
    return f"case{'s' if len(ids) > 1 else ''} {_listing(ids)}"


def _listing(ids: list[str]) -> str:
    more = f" and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else ""
    return ", ".join(ids[:_MAX_LISTED]) + more


def group_problems(problems: pd.Series, case_ids: Iterable | None = None, *, max_groups: int | None = None,
                   where: str = "") -> list[Problem]:
    """One problem per distinct message, naming its cases.

    Parameters
    ----------
    problems : pandas.Series
        :class:`~sonorad.errors.Problem` or ``None`` per case (as :func:`check_column` gives).
    case_ids : iterable, optional
        The case id of each row; the series' index by default.
    max_groups : int, optional
        Above this many distinct messages, one summary problem gives the first few.
    where : str, optional
        Text added after the message (before the case list), e.g. ``"; only in the external cases"``.

    Returns
    -------
    list of Problem
        A problem of a single case keeps its message and gets its ``case_id``; the message of a
        problem shared by several cases ends with their list.
    """
    ids = list(problems.index if case_ids is None else case_ids)
    groups: dict[Problem, list] = {}
    for problem, case_id in zip(problems, ids):
        if isinstance(problem, Problem):
            groups.setdefault(problem, []).append(None if pd.isna(case_id) else str(case_id))
    ordered = sorted(groups.items(), key=lambda item: item[0].message)
    if max_groups is not None and len(ordered) > max_groups:
        every = [i for _, cases in ordered for i in cases]
        first = ordered[0][0]
        examples = "; ".join(p.message for p, _ in ordered[:max_groups])
        return [dataclasses.replace(first, message=f"{len(ordered)} different values of {first.column} fail the "
                                    f"check ({len(every)} cases: {_listing([i for i in every if i])}), e.g. "
                                    f"{examples}", case_id=None)]
    out = []
    for problem, cases in ordered:
        named = [c for c in cases if c is not None]
        if len(cases) == 1 and named and not where:
            out.append(dataclasses.replace(problem, case_id=named[0]))
            continue
        listing = f" ({cases_text(named)})" if named else ""
        out.append(dataclasses.replace(problem, message=f"{problem.message}{where}{listing}",
                                       case_id=named[0] if len(named) == 1 else None))
    return out


# --- prediction time --------------------------------------------------------------------------------

def apply_unseen_policy(values: pd.Series, spec: VariableSpec, known_levels) -> tuple[pd.Series, list[Problem]]:
    """Apply a categorical variable's ``unseen`` policy to values met at prediction time.

    Parameters
    ----------
    values : pandas.Series
        The variable's values for the cases to score, indexed by case_id.
    spec : VariableSpec
        The variable as declared in the study file (``spec.unseen``: ``"error"`` or ``"other"``).
    known_levels : iterable
        The levels the model was trained with.

    Returns
    -------
    values : pandas.Series
        Canonical text values; under ``"other"`` an unseen value becomes ``"other"`` when that is a
        known level, else missing (NaN, then imputed as any missing value).
    warnings : list of Problem
        One warning per unseen value, naming its cases.

    Raises
    ------
    CohortError
        Under ``"error"``, listing every unseen value with its cases (the message of
        :func:`check_value` for a value outside the known levels).

    Examples
    --------
    >>> spec = VariableSpec("echo", "categorical", unseen="other")
    >>> out, notes = apply_unseen_policy(pd.Series(["hypo", "iso"], index=["c1", "c2"]), spec, ["hypo", "other"])
    >>> out.tolist(), str(notes[0])
    (['hypo', 'other'], "[case c2, column 'echo'] echo = 'iso' was never seen in training; coded as 'other'. Fix: \
recode it to a training level (hypo, other) if it means one")
    """
    known = _known(known_levels)
    text = values.map(canonical_value).astype(object)
    new = text.notna() & ~text.isin(known)
    problems = group_problems(unseen_problems(values, spec, known))
    if spec.unseen != "other":
        if problems:
            raise CohortError(problems, source=f"variable {spec.name!r}")
        return text, []
    out = text.copy()
    out[new] = OTHER_LEVEL if OTHER_LEVEL in known else np.nan
    return out, problems


def unseen_problems(values: pd.Series, spec: VariableSpec, known_levels) -> pd.Series:
    """Per case, the problem of a categorical value outside the levels the model knows.

    Parameters
    ----------
    values : pandas.Series
        The variable's values, indexed by case.
    spec : VariableSpec
        A categorical variable; ``spec.unseen`` decides the severity.
    known_levels : iterable
        The levels the model was trained with (or the declared levels).

    Returns
    -------
    pandas.Series
        Same index; ``None`` for a missing or known value. Under ``unseen: error`` the error
        :func:`check_value` gives for a value outside ``known_levels``; under ``unseen: other`` a
        warning saying how prediction codes it (``other`` when that is a known level, else missing).
    """
    known = _known(known_levels)
    text = values.map(canonical_value).astype(object)
    new = text.notna() & ~text.isin(known)
    if spec.unseen != "other":
        strict = dataclasses.replace(spec, levels=None, unseen="error")
        out = [check_value(strict, v, known) if is_new else None for v, is_new in zip(text, new)]
        return pd.Series(out, index=values.index, dtype=object)
    coded = repr(OTHER_LEVEL) if OTHER_LEVEL in known else "missing (imputed)"
    out = [Problem(f"{spec.name} = {v!r} was never seen in training; coded as {coded}",
                   fix=f"recode it to a training level ({', '.join(known)}) if it means one",
                   column=spec.name, severity="warning") if is_new else None
           for v, is_new in zip(text, new)]
    return pd.Series(out, index=values.index, dtype=object)


def _known(levels) -> list[str]:
    return [k for k in (canonical_value(v) for v in levels) if k is not None]
