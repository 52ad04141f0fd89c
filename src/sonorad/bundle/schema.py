"""The bundle's variable schema applied to new cases' declared variables.

:func:`apply_schema` checks every declared variable of the cases being scored against what the
bundle's study declares and what its training cohort held, and converts the values to the model's
dtypes. Each value is judged by :func:`sonorad.variables.check_value`, the rule ``sonorad validate``
and the calculator apply: a value it refuses (not a number, not finite, outside the study's
plausible range or, without one, far outside the training values (:func:`sonorad.variables.plausible_range`;
bundles that do not store the training quartiles skip this), outside the declared levels, a level the
model never saw under ``unseen: error``)
becomes a row in ``failures`` carrying its message and fix. A value the model can use with care
(missing and imputed, outside the training range, a declared level no training case had, an unseen
level coded under the variable's ``unseen: other`` policy) becomes a row in ``warnings`` whose message
says in plain words what is unusual, why it matters and what to do.
"""

from __future__ import annotations

import pandas as pd

from sonorad.bundle.rows import failure_row as _failure, format_value as _fmt
from sonorad.errors import Problem
from sonorad.variables import apply_unseen_policy, canonical_value, check_value

__all__ = ["apply_schema"]


def _warning(case_id, column: str, message: str) -> dict:
    return {"case_id": case_id, "column": column, "message": message}


_CAUTION = "interpret the risk with caution"


def _called(spec) -> str:
    """How a message names a variable: its description (the form's label), else its name."""
    return str(spec.description or spec.name)


def _missing_note(spec, imputation) -> str:
    how = (f"used the typical training value {_fmt(imputation)} in its place (imputation)" if imputation is not None
           else "filled it in by its own handling of missing values")
    return (f"No value was given for {_called(spec)}; the model {how}, so the risk is computed as if the patient "
            "had that value. What to do: enter the value if it is known.")


def _numeric_notes(spec, number: float, info: dict) -> str | None:
    """A value the model extrapolates to: outside the training range."""
    lo_hi = info.get("range")
    if lo_hi and lo_hi[0] is not None and not (lo_hi[0] <= number <= lo_hi[1]):
        unit = f" {spec.unit}" if spec.unit else ""
        return (f"The value given for {_called(spec)}, {_fmt(number)}{unit}, is outside the training range "
                f"({_fmt(lo_hi[0])} to {_fmt(lo_hi[1])}{unit}): the model has seen no such patients, so its risk "
                f"may be unreliable. What to do: check the value; {_CAUTION}.")
    return None


def apply_schema(bundle, values: pd.DataFrame) -> tuple[pd.DataFrame, list, list]:
    """Check and convert the declared variables of the cases being scored.

    Parameters
    ----------
    bundle : Bundle
        The bundle whose study declares the variables.
    values : DataFrame
        Raw declared variables (and ``center``), one row per case, index = case ids.

    Returns
    -------
    values : DataFrame
        Same shape; numeric variables as float, unseen levels coded under their policy.
    warnings : list of dict
        Rows ``case_id, column, message``.
    failures : list of dict
        Rows ``case_id, stage, error, fix`` for cases that cannot be scored; ``error`` and ``fix``
        are those of :func:`sonorad.variables.check_value`.
    """
    warnings, failures = [], []
    columns = bundle.summary["columns"]
    entries = {v["name"]: v for v in bundle.schema_data["variables"]}
    out = values.copy()
    for name in values.columns:
        if name == "center":
            out[name] = values[name].map(lambda v: None if canonical_value(v) is None else str(v).strip())
            continue
        spec = bundle.variables[name]
        info = columns.get(name, {})
        dtype = bundle.features["dtypes"].get(name, "object")
        seen = info.get("levels_seen") or []
        known = list(spec.allowed_values) if spec.allowed_values else list(seen)
        entry = entries.get(name, {})
        training = {"quartiles": entry.get("training_quartiles"), "range": entry.get("training_range")}
        for case_id, raw in values[name].items():
            checked = check_value(spec, raw, known_levels=seen, training=training)
            if isinstance(checked, Problem):
                failures.append(_failure(case_id, "variables", checked.message, checked.fix))
            elif checked is None:
                warnings.append(_warning(case_id, name, _missing_note(spec, entry.get("imputation"))))
            elif spec.type == "numeric":
                note = _numeric_notes(spec, checked, info)
                if note is not None:
                    warnings.append(_warning(case_id, name, note))
            elif spec.type == "categorical" and checked not in known:
                coded, notes = apply_unseen_policy(pd.Series([raw], index=[case_id], dtype=object), spec, known)
                out.at[case_id, name] = coded.iloc[0]
                warnings += [_warning(case_id, name, f"{p.message}, so the risk may be unreliable. What to do: "
                                                     f"{p.fix}; {_CAUTION}.") for p in notes]
            elif seen and checked not in seen:
                warnings.append(_warning(case_id, name, f"The value given for {_called(spec)}, {checked!r}, is a "
                                                        "declared level that no training case had: the model has not "
                                                        "learnt what it means, so its risk may be unreliable. What to "
                                                        f"do: check the value; {_CAUTION}."))
        if dtype.startswith(("int", "float", "uint", "bool", "Int", "Float")):
            out[name] = pd.to_numeric(values[name], errors="coerce").astype(float)
    return out, warnings, failures
