"""Bounded JSON for the calculator's form fields and request bodies.

``json.loads`` on hostile text can cost far more than its size suggests: ``[[[[...]]]]`` nested
100,000 deep raises ``RecursionError`` (an unexpected 500), and a huge text holds the worker. So every
JSON the calculator reads goes through :func:`load_json`, which first checks, cheaply:

* the size (characters), against ``max_chars``;
* the nesting depth of arrays and objects, by one vectorised scan of the text with the strings taken
  out, against ``max_depth``;

and only then parses. A refusal is an :class:`~sonorad.serve.uploads.UploadError` (4xx) naming the form
field; a ``RecursionError`` can never escape.
"""

from __future__ import annotations

import json
import re

import numpy as np

from sonorad.serve.uploads import UploadError

__all__ = ["MAX_JSON_CHARS", "MAX_JSON_DEPTH", "json_depth", "load_json"]

#: Largest JSON text accepted in one form field (the largest ROI, 20,000 points, is well under 1 MB).
MAX_JSON_CHARS = 2_000_000
#: Deepest nesting of arrays and objects accepted (an ROI needs 4 levels, the variables 1).
MAX_JSON_DEPTH = 32

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPEN = np.zeros(256, dtype=np.int32)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth(text: str) -> int:
    """Deepest nesting of ``[`` / ``{`` in ``text``, ignoring brackets inside JSON strings.

    Linear in the length of ``text``; for text that is not valid JSON (an unterminated string) the
    answer may be too high, never too low for valid JSON.

    Examples
    --------
    >>> json_depth('{"a": [[1, 2], "]]]"]}')
    3
    >>> json_depth('7')
    0
    """
    bare = _STRING.sub("", text).encode("utf-8", "replace")
    if not bare:
        return 0
    steps = _OPEN[np.frombuffer(bare, dtype=np.uint8)]
    return max(int(np.cumsum(steps).max()), 0)


def load_json(text, *, field: str, fix: str, what: str | None = None, max_chars: int = MAX_JSON_CHARS,
              max_depth: int = MAX_JSON_DEPTH):
    """Parse ``text`` (str or UTF-8 bytes) as JSON within the size and depth limits.

    Parameters
    ----------
    text : str or bytes
    field : str
        The form field (or body) named in a refusal.
    fix : str
        What the client should send instead.
    what : str, optional
        How the refusal names the text (default: ``"the <field>"``).
    max_chars, max_depth : int

    Returns
    -------
    object
        What ``json.loads`` returns (``NaN`` and ``Infinity`` are read as floats, as ``json`` does).

    Raises
    ------
    UploadError
        413 above ``max_chars``; 422 for nesting deeper than ``max_depth``, text that is not UTF-8 or not
        JSON.
    """
    what = what or f"the {field}"
    if isinstance(text, (bytes, bytearray)):
        if len(text) > max_chars:
            raise UploadError(f"{what}: {len(text)} bytes of JSON, more than the limit of {max_chars}",
                              field=field, status=413, fix=fix)
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UploadError(f"{what}: not UTF-8 text ({exc})", field=field, fix=fix) from exc
    if not isinstance(text, str):
        raise UploadError(f"{what}: must be JSON text", field=field, fix=fix)
    if len(text) > max_chars:
        raise UploadError(f"{what}: {len(text)} characters of JSON, more than the limit of {max_chars}",
                          field=field, status=413, fix=fix)
    depth = json_depth(text)
    if depth > max_depth:
        raise UploadError(f"{what}: nested {depth} levels deep, more than the limit of {max_depth}",
                          field=field, fix=fix)
    try:
        return json.loads(text)
    except RecursionError as exc:  # not reachable within max_depth; kept so that it can never be a 500
        raise UploadError(f"{what}: nested too deeply", field=field, fix=fix) from exc
    except (TypeError, ValueError) as exc:
        raise UploadError(f"{what}: not valid JSON ({exc})", field=field, fix=fix) from exc
