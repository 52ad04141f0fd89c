"""A key declaration (:class:`~sonorad.keys.Key`) for editors and readers: JSON Schema and docs rows.

:func:`json_schema` gives the JSON Schema (draft-07, which editors support widely) that editors use
to complete and check a study file; :func:`key_rows` the rows of the key tables in the docs. Both read the same
declarations that validate the file, so neither can drift from the rules.
"""

from __future__ import annotations

from sonorad.keys import MISSING, Key, word

__all__ = ["json_schema", "key_rows"]

_JSON_TYPES = {"text": {"type": ["string", "number"]}, "integer": {"type": "integer"}, "number": {"type": "number"},
               "fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
               "boolean": {"type": "boolean"}, "scalar": {"type": ["string", "number", "boolean"]},
               "range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
               "section": {"type": "object"}, "any": {}}


def json_schema(key: Key, blank: bool = False, null: bool = False) -> dict:
    """The JSON Schema (draft-07) of a declared key; its descriptions are the keys' ``doc``.

    ``blank``: the keys under it follow the study's own sections, where ``null`` means a key left out
    (:class:`~sonorad.keys.Checker` ``null_is_missing``); ``null``: this key may be ``null``.
    """
    out = _json_value(key, blank)
    if key.doc:
        out = {"description": key.doc, **out}
    if key.default is not MISSING and isinstance(key.default, (str, int, float, bool, list, tuple)):
        out["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
    if key.nullable or null:
        out = {"anyOf": [out, {"type": "null"}]} if "anyOf" not in out else {**out, "anyOf": [*out["anyOf"],
                                                                                                 {"type": "null"}]}
    return out


def _json_value(key: Key, blank: bool) -> dict:
    if key.kind in _JSON_TYPES and not key.keys:
        out = dict(_JSON_TYPES[key.kind])
        if key.kind == "integer":
            out["minimum"] = key.minimum
            if key.maximum is not None:
                out["maximum"] = key.maximum
        if key.kind == "number":
            out.update(minimum=key.low, maximum=key.high)
        return out
    if key.kind == "choice":
        return {"enum": list(key.allowed_choices())}
    if key.kind == "names":
        item = {"type": "string", **({"enum": list(key.allowed_choices())} if key.choices else {})}
        many = {"type": "array", "items": item}
        return {"anyOf": [item, many]} if key.single else many
    if key.kind in ("levels", "centers"):
        item = {"type": ["string", "number"]}
        return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1, "uniqueItems": True}]}
    if key.kind == "path":
        return {"type": ["string", "number"]}
    if key.kind == "toggle":
        return {"anyOf": [{"type": "boolean"}, _json_object(key, blank)]}
    return _json_object(key, blank)


def _json_object(key: Key, blank: bool) -> dict:
    blank = blank and not key.opaque
    if key.entries is not None:
        return {"type": "object", "additionalProperties": json_schema(key.entries, blank)}
    keys = list(key.keys)
    if key.variants is not None:
        disc = key.child(key.discriminator)
        seen = {k.name for k in keys}
        for variant in disc.allowed_choices():
            keys += [k for k in key.variants(variant) if k.name not in seen and not seen.add(k.name)]
    out = {"type": "object", "properties": {k.name: json_schema(k, blank, blank and k.blank_ok and not k.required)
                                            for k in keys}, "additionalProperties": False}
    required = [k.name for k in keys if k.required]
    if required:
        out["required"] = required
    conditions = [_json_when(key, k) for k in keys if k.when is not None]
    if key.variants is not None:
        conditions += [_json_variant(key, variant) for variant in key.child(key.discriminator).allowed_choices()]
    if conditions:
        out["allOf"] = conditions
    if key.shorthand:
        return {"anyOf": [json_schema(key.child(key.shorthand)), out]}
    return out


def _json_when(key: Key, k: Key) -> dict:
    """``k`` may only be given when the discriminator is one of ``k.when``."""
    return {"if": {"required": [key.discriminator],
                   "properties": {key.discriminator: {"not": {"enum": list(k.when)}}}},
            "then": {"not": {"required": [k.name]}}}


def _json_variant(key: Key, variant: str) -> dict:
    """Under one variant (a design, by any name it accepts) only its own keys and the common keys are allowed."""
    disc = key.child(key.discriminator)
    names = [k.name for k in key.keys] + [k.name for k in key.variants(variant) if k.name not in
                                           {c.name for c in key.keys}]
    chosen = {"required": [disc.name], "properties": {disc.name: {"const": variant}}}
    if disc.default == variant:
        chosen = {"anyOf": [chosen, {"not": {"required": [disc.name]}}]}
    return {"if": chosen, "then": {"propertyNames": {"enum": names}}}


def key_rows(key: Key) -> list[tuple[str, str, str, str]]:
    """``(key, applies to, default, meaning)`` of each key under a mapping, for a docs table."""
    rows = []
    for k in key.keys:
        if k.required:
            default = "required"
        elif k.required_when:
            default = f"required for {', '.join(k.required_when)}"
        elif k.default_doc is not None:
            default = k.default_doc
        elif k.default is MISSING or k.default is None:
            default = "none"
        else:
            default = f"`{_jsonword(k.default)}`"
        applies = ", ".join(f"`{w}`" for w in k.when) if k.when else "all"
        meaning = k.doc
        if k.kind == "choice" and k.shown_choices() and "`" not in meaning:
            meaning += f" ({', '.join(f'`{word(c)}`' for c in k.shown_choices())})"
        rows.append((f"`{k.name}`", applies, default, meaning))
    return rows


def _jsonword(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_jsonword(v) for v in value) + "]"
    return word(value)
