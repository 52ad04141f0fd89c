"""The clinical-variable form: the bundle's variable schema as form fields, and the posted values checked.

The page builds its form from :func:`form_fields` (served as ``/api/schema``); the server checks what
comes back with :func:`check_values` before the model sees it, so each mistake is answered with the
variable's name and what it accepts (HTTP 422, ``field`` = the variable), not a failure deep inside a
pipeline. Values travel as JSON: numbers as numbers, yes/no as ``true``/``false`` (or 1/0, or the
level's own text), categories as one of the listed levels. Every variable is required unless the server was started with
``--allow-missing``; then a variable the model can impute may be left out (or ``null``) and the
model's own imputation fills it in, with a warning, as in ``sonorad predict``.
"""

from __future__ import annotations

import json
import math
import numbers

from sonorad.serve.uploads import UploadError

__all__ = ["VARIABLE_TYPES", "check_values", "form_fields", "parse_values"]

VARIABLE_TYPES = ("numeric", "binary", "categorical", "ordinal")


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
        and ``required``.

    Returns
    -------
    list of dict
        ``name``, ``type``, ``input`` (``"number"``, ``"yesno"`` or ``"select"``), ``label`` (the
        description, else the name), ``unit``, ``range`` ([low, high] seen in training, or None),
        ``choices`` (levels in order, for selects), ``required``.

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
        if kind == "ordinal":
            choices = _first(entry, "order", "allowed_values", default=[])
        elif kind == "categorical":
            choices = _first(entry, "levels", "allowed_values", "training_levels", default=[])
        elif kind == "binary":
            choices = _first(entry, "levels", "allowed_values", default=["0", "1"])
        else:
            choices = []
        required = entry.get("required", not (allow_missing and entry.get("imputation") is not None))
        fields.append({
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
            "unseen": entry.get("unseen") or "error",
        })
    return fields


def parse_values(text: str | None) -> dict:
    """The ``variables`` form field: a JSON object of variable name -> value."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UploadError(f"the variables are not valid JSON ({exc})", field="variables",
                          fix='send a JSON object such as {"age": 54, "calcification": true}') from exc
    if not isinstance(data, dict):
        raise UploadError(f"the variables must be a JSON object of name -> value, got {type(data).__name__}",
                          field="variables", fix='send a JSON object such as {"age": 54}')
    return data


def _bad(field: dict, value, expected: str) -> UploadError:
    return UploadError(f"variable {field['name']!r} ({field['label']}): {value!r} is not {expected}",
                       field=field["name"], fix=f"give {expected}")


def _check_one(field: dict, value):
    kind = field["type"]
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise _bad(field, value, "a finite number" + (f" in {field['unit']}" if field["unit"] else ""))
        low_high = field.get("plausible_range")
        if low_high and not low_high[0] <= value <= low_high[1]:
            raise UploadError(f"variable {field['name']!r} ({field['label']}): {value:g} is outside the plausible "
                              f"range [{low_high[0]:g}, {low_high[1]:g}] the study declares", field=field["name"],
                              fix="correct the value (check its unit)")
        return float(value)
    if kind == "binary":
        no, yes = field["choices"][:2]
        if isinstance(value, bool):
            return yes if value else no
        if isinstance(value, numbers.Integral) and value in (0, 1):
            return yes if value else no
        if isinstance(value, str) and value in (no, yes):
            return value
        raise _bad(field, value, f"yes or no (true/false, 1/0, or {no!r}/{yes!r})")
    for choice in field["choices"]:
        # A JSON number 2 and a level 2.0, or the string "2" and a level 2, are the same choice.
        if value == choice or (not isinstance(value, bool) and str(value) == str(choice)):
            return choice
    if kind == "categorical" and field.get("unseen") == "other" and isinstance(value, str) and value.strip():
        return value.strip()  # the model maps it to its "other" level, with a warning
    listed = ", ".join(repr(c) for c in field["choices"])
    raise UploadError(f"variable {field['name']!r} ({field['label']}): {value!r} is a category the model "
                      f"never saw in training; it knows {listed}", field=field["name"],
                      fix=f"choose one of {listed}")


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
        Name -> float (numeric) or the matching level as the schema spells it (binary: the second
        level for yes/true/1; categorical, ordinal); an optional variable left out or null is None.

    Raises
    ------
    UploadError
        An unknown name, a missing required variable, a value of the wrong type, or an unseen category;
        ``field`` is the variable's name.
    """
    known = {f["name"] for f in fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UploadError(f"unknown variable(s) {', '.join(map(repr, unknown))}; the model uses "
                          f"{', '.join(sorted(known)) or 'no clinical variables'}", field=unknown[0],
                          fix="check the spelling of the variable names")
    checked = {}
    for field in fields:
        value = values.get(field["name"])
        if value is None or (isinstance(value, str) and not value.strip()):
            if field["required"]:
                raise UploadError(f"variable {field['name']!r} ({field['label']}) is required and missing",
                                  field=field["name"], fix="fill it in")
            checked[field["name"]] = None
            continue
        checked[field["name"]] = _check_one(field, value)
    return checked
