"""Reading a study file: YAML with only true/false as booleans and no repeated keys, then validation.

:func:`load_study` is the one way a study file is read; the YAML loader (:func:`study_loader`) is a
``yaml.SafeLoader`` subclass, so no Python object is ever built from the file.
"""

from __future__ import annotations

import functools
from pathlib import Path

from sonorad.errors import ConfigError
from sonorad.study.config import StudyConfig

__all__ = ["load_study", "study_loader"]


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

    class StudyLoader(yaml.SafeLoader):
        pass

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
