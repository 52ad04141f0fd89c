"""How one key of the study file is declared, checked, and described for editors and the docs.

A :class:`Key` declares a key: its kind (``integer``, ``choice``, ``mapping`` ...), default, allowed
choices, bounds, the keys under it and a one-line meaning. :class:`Checker` validates a parsed value
against a declaration and collects every problem (key path, bad value, allowed choices) instead of
stopping at the first; :mod:`sonorad.study.describe` turns the same declaration into a JSON Schema
and the rows of a documentation table. The declarations themselves live in :mod:`sonorad.study.schema`.

Examples
--------
>>> seed = Key("seed", "integer", "the one seed", default=0)
>>> checker = Checker()
>>> checker.check(seed, -1, "seed") is INVALID, checker.problems[0].message
(True, 'must be a non-negative integer, got -1')
"""

from __future__ import annotations

import copy
import importlib
import math
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonorad.errors import Problem
from sonorad.variables import canonical_value

__all__ = ["Key", "Checker", "MISSING", "INVALID", "KINDS", "lazy", "show", "word"]


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: A key without a default (left out of the checked values when absent).
MISSING = _Marker("MISSING")
#: What :meth:`Checker.check` returns for a value with a problem.
INVALID = _Marker("INVALID")

#: Kinds of value a key may hold.
KINDS = ("text", "integer", "number", "fraction", "boolean", "choice", "names", "levels", "centers", "scalar",
         "range", "path", "toggle", "mapping", "section", "any")


@dataclass(frozen=True)
class Key:
    """One key of the study file.

    Parameters
    ----------
    name : str
        The key as written in the file.
    kind : str
        One of :data:`KINDS`: ``text`` (non-empty text), ``integer`` (``>= minimum``), ``number``
        (in ``[low, high]``), ``fraction`` (strictly between 0 and 1), ``boolean``, ``choice`` (one of
        ``choices``), ``names`` (a name or a list of names, each among ``choices`` when given),
        ``levels`` (distinct values, compared as canonical text), ``centers`` (distinct center names),
        ``scalar`` (one number or text, canonical text), ``range`` (``[low, high]``), ``path`` (a file
        or folder, relative to the study file), ``toggle`` (true, false or a mapping of ``keys``),
        ``mapping`` (the ``keys`` under it), ``section`` (any mapping, kept as given), ``any``.
    doc : str
        The meaning, one sentence or two (the docs' tables show it).
    default : object
        The value when the key is absent (:data:`MISSING`: none).
    default_doc : str, optional
        How the docs show the default when it is not a plain value.
    required, nullable : bool
        The key must be given; ``null`` is a value (else ``null`` is an error, or, for the study's
        own sections, the same as leaving the key out).
    blank_ok : bool
        In the study's own sections, ``null`` means the key is left out; ``False``: it is an error
        (an empty ``levels:`` must not silently mean "any value").
    choices : sequence or callable, optional
        Allowed values (``choice``) or names (``names``); a callable is asked when checking, so a
        registry (backbones, zoo models, designs) is imported only then.
    display : sequence or callable, optional
        The choices named in messages and the docs when they differ from ``choices`` (old aliases).
    noun, plural : str, optional
        ``noun="type"`` words a bad choice as ``unknown type 'x'; allowed types: ...``; an empty
        ``plural`` gives ``allowed: ...``. Without a noun: ``must be a, b or c, got 'x'``.
    minimum, maximum, low, high : number
        Bounds of ``integer`` (``maximum``: none when ``None``) / ``number``.
    single : bool
        ``names``: one name may stand for a list of one.
    expect : str, optional
        What the value must be, in words, when the kind's own wording does not fit.
    fix, required_fix : str
        How to correct a bad or missing value (``{name}`` is the key).
    keys : tuple of Key
        ``mapping`` / ``toggle``: the keys under it, in file order.
    entries : Key, optional
        ``mapping`` of free names (``variables``): the declaration of each entry.
    entry_rule : callable, optional
        ``(name, sibling values) -> (message, fix) or None``: a rule on an entry's name.
    shorthand : str, optional
        ``mapping``: a text value ``v`` stands for ``{shorthand: v}`` (``age: numeric``).
    discriminator : str, optional
        ``mapping``: the key whose value selects which of ``keys`` apply (their ``when``).
    variants : callable, optional
        ``(discriminator value) -> tuple of Key``: keys added by the selected variant (a design's own keys).
    variant_noun : str, optional
        ``variable``: words an inapplicable key ``is not allowed for a numeric variable``; ``None``:
        an inapplicable key is unknown and the allowed keys listed are the applicable ones.
    when, required_when : tuple of str, optional
        The discriminator values for which the key applies / is required.
    when_fix : str or mapping
        The fix of an inapplicable key (a mapping: by discriminator value, ``"*"`` for the rest).
    must_exist, resolve, words : path options
        The file must exist; relative paths are resolved against the study file's real folder;
        ``words`` are values kept as they are (``default``, ``random``).
    rules : tuple of callable
        ``mapping``: ``rule(values, raw, path, checker)`` checks across its keys once they are checked.
    opaque : bool
        Checked by :mod:`sonorad.runner` only: the study file's own validation keeps it as a mapping.
    """

    name: str
    kind: str
    doc: str = ""
    default: Any = MISSING
    default_doc: str | None = None
    required: bool = False
    nullable: bool = False
    blank_ok: bool = True
    choices: Sequence | Callable[[], Sequence] | None = None
    display: Sequence | Callable[[], Sequence] | None = None
    noun: str | None = None
    plural: str | None = None
    minimum: int = 0
    maximum: int | None = None
    low: float | None = None
    high: float | None = None
    single: bool = True
    expect: str | None = None
    fix: str = ""
    required_fix: str | None = None
    keys: tuple[Key, ...] = ()
    entries: Key | None = None
    entry_rule: Callable | None = None
    shorthand: str | None = None
    discriminator: str | None = None
    variants: Callable[[Any], tuple[Key, ...]] | None = None
    variant_noun: str | None = None
    when: tuple[str, ...] | None = None
    required_when: tuple[str, ...] = ()
    when_fix: str | Mapping[str, str] = "remove it"
    must_exist: bool = False
    resolve: bool = False
    words: tuple[str, ...] = ()
    rules: tuple[Callable, ...] = field(default=(), repr=False)
    opaque: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {self.kind!r}")

    def child(self, name: str) -> Key:
        """The declaration of the key ``name`` under this mapping."""
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(name)

    def allowed_choices(self) -> tuple:
        return tuple(_resolve(self.choices) or ())

    def shown_choices(self) -> tuple:
        return tuple(_resolve(self.display) or _resolve(self.choices) or ())


def _resolve(value):
    return value() if callable(value) else value


def lazy(target: str) -> Callable[[], list]:
    """Choices named ``"module:attribute"`` (a function or a tuple), imported only when they are needed."""
    module, _, name = target.partition(":")

    def choices() -> list:
        found = getattr(importlib.import_module(module), name)
        return list(found() if callable(found) else found)

    choices.__qualname__ = f"lazy({target!r})"
    return choices


#: Longest value a message echoes; a longer one is cut, so a message stays readable and its cost bounded.
SHOW_LIMIT = 200


def show(value: Any) -> str:
    """A value as a message shows it: text quoted, anything else as written, cut to :data:`SHOW_LIMIT`.

    A large nested value (lists sharing one another many times over) is never written out in full:
    only its first items are, so echoing it costs no more than echoing a small one.
    """
    if _fewer_items_than(value, SHOW_LIMIT):
        text = repr(value) if isinstance(value, str) else str(value)
    else:
        text = _SHORT_REPR.repr(value)
    return text if len(text) <= SHOW_LIMIT else f"{text[:SHOW_LIMIT - 4]} ..."


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxlevel, short.maxstring, short.maxother = 3, SHOW_LIMIT, SHOW_LIMIT
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = short.maxfrozenset = 4
    return short


_SHORT_REPR = _short_repr()


def _fewer_items_than(value: Any, budget: int) -> bool:
    """Whether ``value`` (texts counted by length) holds fewer than ``budget`` items; stops early."""
    pending = [value]
    while pending:
        item = pending.pop()
        budget -= len(item) if isinstance(item, (str, bytes)) else 1
        if isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        if budget <= 0:
            return False
    return True


def word(value: Any) -> str:
    """A value as the study file writes it (``true``, ``false``, ``null``)."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _one_of(options) -> str:
    words = [word(o) for o in options]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _join(path: str, name) -> str:
    return f"{path}.{name}" if path else str(name)


def _fix(key: Key, path: str, text: str | None = None) -> str:
    """A fix text with ``{name}`` (the key) and ``{parent}`` (the mapping it is in) filled in."""
    parts = path.split(".")
    return (key.fix if text is None else text).format(name=key.name, parent=parts[-2] if len(parts) > 1 else "")


def _required_for(key: Key, k: Key, variant) -> str:
    if variant not in k.required_when:
        return ""
    if key.variant_noun is None:
        return f" for `{key.discriminator}: {variant}`"
    return f" for {_article(variant)} {variant} {key.variant_noun}"


def _choices(options) -> str:
    return ", ".join(word(o) for o in options)


class Checker:
    """Validates values against :class:`Key` declarations, collecting every problem.

    Parameters
    ----------
    source : Path, optional
        The study file: relative ``path`` values are read from its folder.
    null_is_missing : bool
        ``null`` means the key was left out (the study file's own sections).
    deep : bool
        Check the ``opaque`` sections too (the runner's check), not only that they are mappings.
    """

    def __init__(self, *, source: Path | None = None, null_is_missing: bool = False, deep: bool = True):
        self.problems: list[Problem] = []
        self.source = source
        self.null_is_missing = null_is_missing
        self.deep = deep

    def add(self, path: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(message=message, fix=fix, column=path))

    def fail(self, key: Key, path: str, value, expect: str | None = None, fix: str | None = None):
        self.add(path, f"must be {key.expect or expect}, got {show(value)}", _fix(key, path, fix))
        return INVALID

    # -- one value ------------------------------------------------------------------------------------
    def check(self, key: Key, value, path: str, siblings: dict | None = None):
        """The checked (converted) value of ``key``, or :data:`INVALID` after recording its problems."""
        if value is None and key.nullable:
            return None
        return getattr(self, f"_{key.kind}")(key, value, path, siblings or {})

    def _any(self, key, value, path, siblings):
        return value

    def _section(self, key, value, path, siblings):
        if key.opaque and self.deep:
            return self._mapping(key, value, path, siblings)
        if not isinstance(value, Mapping):
            self.add(path, f"must be a mapping, got {type(value).__name__} {show(value)}")
            return INVALID
        return copy.deepcopy(dict(value))

    def _text(self, key, value, path, siblings):
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.add(path, f"must be non-empty text, got {type(value).__name__} {show(value)}")
        return INVALID

    def _integer(self, key, value, path, siblings):
        if (isinstance(value, bool) or not isinstance(value, int) or value < key.minimum
                or (key.maximum is not None and value > key.maximum)):
            expect = "a non-negative integer" if key.minimum == 0 else f"an integer >= {key.minimum}"
            return self.fail(key, path, value, expect if key.maximum is None else f"{expect} <= {key.maximum}")
        return value

    def _number(self, key, value, path, siblings):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not key.low <= value <= key.high:
            return self.fail(key, path, value, f"a number in [{key.low}, {key.high}]")
        return float(value)

    def _fraction(self, key, value, path, siblings):
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or not 0 < value < 1):
            return self.fail(key, path, value, "a fraction strictly between 0 and 1")
        return float(value)

    def _boolean(self, key, value, path, siblings):
        return value if isinstance(value, bool) else self.fail(key, path, value, "true or false")

    def _choice(self, key, value, path, siblings):
        allowed = key.allowed_choices()
        if any(value is option or (type(value) is type(option) and value == option) for option in allowed):
            return value
        if key.noun is None:
            return self.fail(key, path, value, _one_of(key.shown_choices()))
        plural = f"{key.noun}s" if key.plural is None else key.plural
        self.add(path, f"unknown {key.noun} {show(value)}; allowed{' ' + plural if plural else ''}: "
                 f"{_choices(key.shown_choices())}", _fix(key, path))
        return INVALID

    def _names(self, key, value, path, siblings):
        if isinstance(value, str) and key.single:
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            return self.fail(key, path, value, "a name or a list of names" if key.single else "a list of names")
        allowed = key.allowed_choices()
        ok = True
        for name in value:
            if allowed and name not in allowed:
                plural = f"{key.noun}s" if key.plural is None else key.plural
                self.add(path, f"unknown {key.noun or 'name'} {name!r}; allowed {plural or 'names'}: "
                         f"{_choices(key.shown_choices())}", "correct its spelling")
                ok = False
        return tuple(value) if ok else INVALID

    def _levels(self, key, value, path, siblings):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            return self.fail(key, path, value, "a non-empty list", f"write it as `{key.name}: [a, b]`")
        out: list[str] = []
        ok = True
        for i, item in enumerate(value):
            canon = canonical_value(item) if isinstance(item, (str, int, float)) else None
            if canon is None:
                self.add(f"{path}[{i}]", f"must be a number or text, got {show(item)}")
                ok = False
            elif canon in out:
                self.add(path, f"lists {canon!r} twice: {show(list(value))}", "list each value once")
                ok = False
            else:
                out.append(canon)
        return tuple(out) if ok else INVALID

    def _centers(self, key, value, path, siblings):
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            self.add(path, f"must be a non-empty list of center names, got {show(value)}")
            return INVALID
        out: list[str] = []
        ok = True
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (str, int)) or str(item).strip() == "":
                self.add(f"{path}[{i}]", f"must be a center name, got {show(item)}")
                ok = False
                continue
            name = str(item).strip()
            if name in out:
                self.add(path, f"lists center {name!r} twice", "list each center once")
                ok = False
            else:
                out.append(name)
        return tuple(out) if ok else INVALID

    def _scalar(self, key, value, path, siblings):
        canon = canonical_value(value) if isinstance(value, (str, int, float)) else None
        return self.fail(key, path, value, "a number or text") if canon is None else canon

    def _range(self, key, value, path, siblings):
        ok = (isinstance(value, (list, tuple)) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value))
        if not ok or value[0] >= value[1]:
            return self.fail(key, path, value, "[low, high], two finite numbers with low < high")
        return (float(value[0]), float(value[1]))

    def _path(self, key, value, path, siblings):
        if isinstance(value, str) and value in key.words:
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
            return self.fail(key, path, value, "a file path")
        out = Path(str(value).strip() if key.resolve else str(value)).expanduser()
        if not out.is_absolute() and self.source is not None:
            out = (self.source.resolve().parent if key.resolve else self.source.parent) / out
        if key.must_exist and not out.is_file():
            self.add(path, f"the file {out} does not exist", _fix(key, path))
            return INVALID
        return str(out) if key.words else out

    def _toggle(self, key, value, path, siblings):
        if value is True:
            value = {}
        if value is False:
            return None
        if not isinstance(value, Mapping):
            names = _choices(k.name for k in key.keys)
            return self.fail(key, path, value, f"true, false or a mapping with keys {names}")
        return self._mapping(key, value, path, siblings)

    # -- a mapping of keys ------------------------------------------------------------------------------
    def _mapping(self, key, value, path, siblings):
        if key.shorthand and isinstance(value, str):
            value = {key.shorthand: value}
        if not isinstance(value, Mapping):
            names = [k.name for k in key.keys]
            self.add(path or "(top level)",
                     f"must be a mapping (key: value lines), got {type(value).__name__} {show(value)}",
                     f"write it as a mapping with keys among: {_choices(names)}" if names else "")
            return INVALID
        for k in value:
            if not isinstance(k, str):
                self.add(_join(path, k), f"keys must be text, got {type(k).__name__} {show(k)}", "quote the key")
        raw = {k: v for k, v in value.items() if isinstance(k, str)}
        if key.entries is not None:
            return self._entries(key, raw, path, siblings)
        keys, variant = self._applicable(key, raw, path)
        out: dict[str, Any] = {}
        misplaced = []
        for k in keys:
            given = k.name in raw and not (raw[k.name] is None and self.null_is_missing and k.blank_ok)
            if k.name == key.discriminator:
                if variant is not INVALID:
                    out[k.name] = variant
            elif k.when is not None and variant not in k.when:
                if given and key.variant_noun is not None:
                    misplaced.append(k)
            elif given:
                checked = self.check(k, raw[k.name], _join(path, k.name), out)
                if checked is not INVALID:
                    out[k.name] = checked
            elif k.required or variant in k.required_when:
                self.add(_join(path, k.name), f"is required{_required_for(key, k, variant)}",
                         _fix(k, _join(path, k.name), k.required_fix or "add `{name}: ...`"))
            elif k.default is not MISSING:
                out[k.name] = copy.deepcopy(k.default)
        for k in misplaced:  # after the applicable keys: a wrong type is the likelier mistake
            fix = k.when_fix if isinstance(k.when_fix, str) else k.when_fix.get(variant, k.when_fix["*"])
            self.add(_join(path, k.name), f"is not allowed for {_article(variant)} {variant} {key.variant_noun}; "
                     f"`{k.name}` is for {' and '.join(k.when)} {key.variant_noun}s", fix)
        for rule in key.rules:
            rule(out, raw, path, self)
        return out

    def _applicable(self, key, raw, path):
        """The keys that apply under the discriminator's value (reporting unknown keys), and that value."""
        keys, variant = list(key.keys), None
        if key.variant_noun is not None:
            self._unknown(key, keys, raw, path, "")
        if key.discriminator is not None:
            variant = self._variant(key, raw, path)
            if variant is INVALID:
                keys = [k for k in keys if k.name != key.discriminator and k.when is None]
            elif key.variants is not None:
                keys += [k for k in key.variants(variant) if k.name not in {c.name for c in keys}]
        if key.variant_noun is None and variant is not INVALID:
            applicable = [k for k in keys if k.when is None or variant in k.when]
            label = f" for {key.discriminator} {variant!r}" if key.variants is not None else ""
            self._unknown(key, applicable, raw, path, label)
        return keys, variant

    def _unknown(self, key, keys, raw, path, label):
        names = [k.name for k in keys]
        for k in raw:
            if k not in names:
                self.add(_join(path, k), f"unknown key {k!r}{label}; allowed keys: {_choices(names)}",
                         "remove it or correct its spelling")

    def _variant(self, key, raw, path):
        disc = key.child(key.discriminator)
        value = raw.get(disc.name)
        if disc.name not in raw or (value is None and self.null_is_missing):
            if disc.default is not MISSING:
                return disc.default
            plural = f"{disc.noun}s" if disc.plural is None else disc.plural
            self.add(_join(path, disc.name), f"is required; allowed{' ' + plural if plural else ''}: "
                     f"{_choices(disc.shown_choices())}", _fix(disc, _join(path, disc.name)))
            return INVALID
        return self.check(disc, value, _join(path, disc.name))

    def _entries(self, key, raw, path, siblings):
        out = {}
        for name, item in raw.items():
            broken = key.entry_rule(name, siblings) if key.entry_rule is not None else None
            if broken is not None:
                self.add(_join(path, name), *broken)
                continue
            checked = self.check(key.entries, item, _join(path, name), siblings)
            if checked is not INVALID:
                out[name] = checked
        return out
