"""Reading a study file: YAML with only true/false as booleans and no repeated keys, then validation.

:func:`load_study` is the one way a study file is read; the YAML loader (:func:`study_loader`) is a
``yaml.SafeLoader`` subclass, so no Python object is ever built from the file. The loader also bounds
the work a file can ask for: aliases that would expand to more than :data:`MAX_NODES` values (a
"billion laughs" file), an alias that refers to itself, or nesting deeper than :data:`MAX_DEPTH` are
refused while the file is read, naming the key, before any value is built or echoed.
"""

from __future__ import annotations

import functools
from pathlib import Path

from sonorad.errors import ConfigError
from sonorad.study.config import StudyConfig

__all__ = ["load_study", "study_loader", "bounded_loader", "YamlTooLarge", "MAX_NODES", "MAX_DEPTH"]

#: Most values (after expanding aliases) a study file may hold; real study files hold a few hundred.
MAX_NODES = 100_000
#: Deepest nesting of lists and mappings a study file may use; real study files use four or five.
MAX_DEPTH = 50


class YamlTooLarge(Exception):
    """A YAML file asks for more work than it may; ``key`` is where, ``line`` the 1-based line."""

    def __init__(self, key: str, line: int, reason: str):
        super().__init__(reason)
        self.key, self.line, self.reason = key, line, reason


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate a study file.

    Parameters
    ----------
    path : str or Path
        YAML study file. A relative ``cohort`` path inside it is relative to the file's folder.

    Returns
    -------
    StudyConfig

    Raises
    ------
    ConfigError
        When the file is missing, is not valid YAML (the message gives the line), is not a mapping,
        or holds invalid keys or values (every problem listed at once).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: study file not found. Fix: check the path (it is read relative to "
                          f"the current folder {Path.cwd()})")
    try:
        with path.open(encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=study_loader())  # noqa: S506 (a SafeLoader subclass)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the study file ({exc}). Fix: save it as UTF-8 text") from None
    except YamlTooLarge as exc:
        raise ConfigError(f"{path}, line {exc.line}: `{exc.key}` {exc.reason}\nFix: write the value out "
                          "plainly (a study file needs no deep nesting and no alias repeated inside "
                          "another alias)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}\nFix: correct the syntax at the line shown "
                          "(indentation, a missing ':', an unclosed quote or bracket, a repeated key)") from None
    if data is None:
        data = {}
    return StudyConfig.from_dict(data, source=path)


@functools.lru_cache(maxsize=1)
def study_loader():
    """A SafeLoader with YAML 1.2 booleans (only true/false) that rejects duplicate keys.

    YAML 1.1 reads ``yes``, ``no``, ``on``, ``off`` as booleans, which silently turns the levels
    ``[no, yes]`` of a binary variable into ``[False, True]``; the study file keeps them as text.
    A repeated key would silently replace the first one; it is an error instead.
    """
    import re

    import yaml

    compose_node, get_single_node = _bounded_composer(yaml)

    class StudyLoader(yaml.SafeLoader):
        pass

    StudyLoader.compose_node = compose_node
    StudyLoader.get_single_node = get_single_node

    StudyLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    StudyLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )

    def construct_mapping(loader, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StudyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StudyLoader


@functools.lru_cache(maxsize=1)
def bounded_loader():
    """A plain SafeLoader with the study file's limits on nesting and alias expansion.

    For the other YAML files sonorad reads (PyRadiomics parameter files), which keep YAML's usual
    scalars; a file past :data:`MAX_NODES` or :data:`MAX_DEPTH` raises :class:`YamlTooLarge`.
    """
    import yaml

    compose_node, get_single_node = _bounded_composer(yaml)

    class BoundedLoader(yaml.SafeLoader):
        pass

    BoundedLoader.compose_node = compose_node
    BoundedLoader.get_single_node = get_single_node
    return BoundedLoader


def _bounded_composer(yaml):
    """Composer methods that refuse deep nesting while composing and alias bombs once composed.

    PyYAML composes an alias as a second reference to the anchored node, so a file of a few lines can
    describe 9**9 values; nothing is expanded until a value is copied or printed. The expanded size is
    counted on the node graph (each node once, with its children's counts), which takes time linear in
    the file, and the file is refused before anything is built from it.
    """

    def compose_node(self, parent, index):
        stack = self.__dict__.setdefault("_key_stack", [])
        if isinstance(index, yaml.ScalarNode):
            stack.append(str(index.value))
        elif isinstance(index, int):
            stack.append(f"[{index}]")
        else:
            stack.append(None)
        try:
            if len(stack) > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlTooLarge(_outer_key(_key_path(stack)), mark.line + 1,
                                f"is nested more than {MAX_DEPTH} levels deep")
            return yaml.SafeLoader.compose_node(self, parent, index)
        finally:
            stack.pop()

    def get_single_node(self):
        node = yaml.SafeLoader.get_single_node(self)
        if node is not None:
            _check_expanded_size(yaml, node)
        return node

    return compose_node, get_single_node


def _key_path(stack) -> str:
    parts = [p for p in stack if p is not None]
    return "".join(p if p.startswith("[") or i == 0 else f".{p}" for i, p in enumerate(parts)) or "(top level)"


def _check_expanded_size(yaml, root) -> None:
    """Refuse a node graph whose aliases expand to more than :data:`MAX_NODES` values, naming the key."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node, path) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            raise YamlTooLarge(path or "(top level)", node.start_mark.line + 1, "refers to itself through an alias")
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                total += size(key_node, path) + size(value_node, f"{path}.{name}" if path else name)
                if total > MAX_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                total += size(item, f"{path}[{i}]")
                if total > MAX_NODES:
                    break
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        if total > MAX_NODES:
            raise YamlTooLarge(_outer_key(path), node.start_mark.line + 1,
                            f"expands (through YAML aliases) to more than {MAX_NODES:,} values; "
                            "the file is refused before reading them")
        return total

    size(root, "")


def _outer_key(path: str) -> str:
    """The top-level key of a key path (``description`` of ``description.l8[3]``): the one the user wrote."""
    return path.split(".")[0].split("[")[0] or "(top level)"
