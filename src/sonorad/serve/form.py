"""The clinical-variable form: the bundle's variable schema as form fields, and the posted values checked.

The page builds its form from :func:`form_fields` (served as ``/api/schema``); the server checks what
comes back with :func:`check_values` before the model sees it, so each mistake is answered with the
variable's name and what it accepts (HTTP 422, ``field`` = the variable), not a failure deep inside a
pipeline. A value is judged by :func:`sonorad.variables.check_value`, the rule ``sonorad validate``
and ``sonorad predict`` apply, so a value refused there is refused here with the same message; a
number outside the variable's accepted range (declared in the study file, else derived from the
training quartiles, :func:`sonorad.variables.plausible_range`) is refused, not scored.
Values travel as JSON: numbers as numbers, yes/no as ``true``/``false`` (or 1/0, or the level's own
text), categories as one of the listed levels. Every variable is required unless the server was
started with ``--allow-missing``; then a variable the model can impute may be left out (or ``null``)
and the model's own imputation fills it in, with a warning, as in ``sonorad predict``.
"""

from __future__ import annotations

import json
import numbers

from sonorad.errors import Problem
from sonorad.serve.jsonin import load_json
from sonorad.serve.uploads import UploadError
from sonorad.variables import VARIABLE_TYPES, VariableSpec, check_value, plausible_range

__all__ = ["check_values", "form_fields", "parse_values"]


def _first(entry: dict, *keys, default=None):
    for key in keys:
        if entry.get(key) is not None:
            return entry[key]
    return default


def form_fields(schema: list[dict], *, allow_missing: bool = False) -> list[dict]:
    """One form field per schema variable, in schema order.

    Parameters
    ----------
    schema : list of dict
        ``bundle.schema()``: each entry has ``name`` and ``type`` (numeric, binary, categorical,
        ordinal), and may have ``levels`` / ``order``, ``description``, ``unit``, the training range
        and quartiles, and ``required``.

    Returns
    -------
    list of dict
        ``name``, ``type``, ``input`` (``"number"``, ``"yesno"`` or ``"select"``), ``label`` (the
        description, else the name), ``unit``, ``range`` ([low, high] seen in training, or None),
        ``choices`` (levels in order, for selects), ``required``, ``plausible_range`` (declared by
        the study), ``training_quartiles`` ([q1, q3] or None), ``accepted_range`` ([low, high]: a
        number outside is refused; the declared range, else derived from the training quartiles,
        else None), ``accepted_range_source`` (``"declared"``, ``"training"`` or None), ``unseen``
        (the variable's unseen-level policy) and ``declared_levels`` (whether ``choices`` are
        declared levels rather than the levels seen in training).

    Raises
    ------
    ValueError
        A variable without a name or with an unknown type (a bundle problem, not a user one).
    """
    fields = []
    for entry in schema:
        name, kind = entry.get("name"), entry.get("type")
        if not name or kind not in VARIABLE_TYPES:
            raise ValueError(f"schema entry {entry!r}: needs a name and a type among {VARIABLE_TYPES}")
        rng = _first(entry, "training_range", "range")
        if isinstance(rng, dict):
            rng = [_first(rng, "min", "low"), _first(rng, "max", "high")]
        declared = None
        if kind == "ordinal":
            choices = _first(entry, "order", "allowed_values", default=[])
        elif kind == "categorical":
            declared = _first(entry, "levels", "allowed_values")
            choices = declared if declared is not None else _first(entry, "training_levels", default=[])
        elif kind == "binary":
            choices = _first(entry, "levels", "allowed_values", default=["0", "1"])
        else:
            choices = []
        required = entry.get("required", not (allow_missing and entry.get("imputation") is not None))
        field = {
            "name": str(name),
            "type": kind,
            "input": {"numeric": "number", "binary": "yesno"}.get(kind, "select"),
            "label": str(entry.get("description") or name),
            "unit": entry.get("unit") or "",
            "range": list(rng) if rng is not None and kind == "numeric" else None,
            "choices": list(choices),
            "required": bool(required),
            # Declared by the study (see docs/study-file.md): a value outside it is an error, and
            # ``unseen: other`` lets the model take an unknown category as its "other" level.
            "plausible_range": list(entry["plausible_range"]) if entry.get("plausible_range") else None,
            "training_quartiles": list(entry["training_quartiles"]) if entry.get("training_quartiles") else None,
            "unseen": entry.get("unseen") or "error",
            "declared_levels": kind != "categorical" or declared is not None,
        }
        accepted = plausible_range(_spec(field)[0], _training(field))
        field["accepted_range"] = None if accepted is None else [accepted.low, accepted.high]
        field["accepted_range_source"] = None if accepted is None else accepted.source
        fields.append(field)
    return fields


def parse_values(text: str | None) -> dict:
    """The ``variables`` form field: a JSON object of variable name -> value."""
    if text is None or not text.strip():
        return {}
    try:
        data = load_json(text, field="variables", what="the variables", fix='send a JSON object such as {"age": 54}')
    except ValueError as exc:
        raise UploadError(f"the variables are not valid JSON ({exc})", field="variables",
                          fix='send a JSON object such as {"age": 54, "calcification": true}') from exc
    if not isinstance(data, dict):
        raise UploadError(f"the variables must be a JSON object of name -> value, got {type(data).__name__}",
                          field="variables", fix='send a JSON object such as {"age": 54}')
    return data


def _spec(field: dict) -> tuple[VariableSpec, list | None]:
    """The field as a declared variable, and the levels the model knows when they are not declared."""
    kind, choices = field["type"], [str(c) for c in field["choices"]]
    # a binary variable without declared levels holds 0/1, as the study file says
    declared = field.get("declared_levels", True) and not (kind == "binary" and choices == ["0", "1"])
    low_high = field.get("plausible_range")
    spec = VariableSpec(
        name=field["name"], type=kind,
        levels=tuple(choices) if kind in ("binary", "categorical") and declared and choices else None,
        order=tuple(choices) if kind == "ordinal" and choices else None,
        range=(float(low_high[0]), float(low_high[1])) if kind == "numeric" and low_high else None,
        unseen=field.get("unseen") or "error", unit=field.get("unit") or None)
    known = choices if kind == "categorical" and not declared and choices else None
    return spec, known


def _training(field: dict) -> dict:
    """What the training cohort held, as :func:`sonorad.variables.plausible_range` reads it."""
    return {"quartiles": field.get("training_quartiles"), "range": field.get("range")}


def _check_one(field: dict, value):
    """One posted value: the binary JSON forms decoded, then :func:`sonorad.variables.check_value`."""
    if field["type"] == "binary" and field["choices"]:
        no, yes = field["choices"][:2]
        if isinstance(value, bool) or (isinstance(value, numbers.Integral) and value in (0, 1)):
            value = yes if value else no
    spec, known = _spec(field)
    checked = check_value(spec, value, known, training=_training(field))
    if isinstance(checked, Problem):
        raise UploadError(checked.message, field=field["name"], fix=checked.fix)
    return checked


def check_values(fields: list[dict], values: dict) -> dict:
    """Check posted values against the form fields; return them typed, in schema order.

    Parameters
    ----------
    fields : list of dict
        From :func:`form_fields`.
    values : dict
        Variable name -> JSON value.

    Returns
    -------
    dict
        Name -> float (numeric) or the level in canonical text (binary: the second level for
        yes/true/1; categorical, ordinal; under ``unseen: other`` a category the model never saw
        is passed on, for the model to code); an optional variable left out or null is None.

    Raises
    ------
    UploadError
        An unknown name, a missing required variable, or a value :func:`sonorad.variables.check_value`
        refuses (with its message and fix); ``field`` is the variable's name.
    """
    known = {f["name"] for f in fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UploadError(f"unknown variable(s) {', '.join(map(repr, unknown))}; the model uses "
                          f"{', '.join(sorted(known)) or 'no clinical variables'}", field=unknown[0],
                          fix="check the spelling of the variable names")
    checked = {}
    for field in fields:
        value = _check_one(field, values.get(field["name"]))
        if value is None and field["required"]:
            raise UploadError(f"variable {field['name']!r} ({field['label']}) is required and missing",
                              field=field["name"], fix="fill it in")
        checked[field["name"]] = value
    return checked
