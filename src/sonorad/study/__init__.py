"""The study file: one YAML file -> a typed, validated :class:`StudyConfig`.

:mod:`sonorad.study.schema` declares every key of the file once (validation messages, the JSON
Schema ``study.schema.json`` and the docs' key tables come from it); :mod:`sonorad.study.config`
holds the typed objects; :mod:`sonorad.study.loading` reads the YAML file.
"""

from sonorad.study.config import CenterSplit, LabelSpec, MaskSpec, PatientSplit, StudyConfig
from sonorad.study.loading import load_study

__all__ = ["StudyConfig", "LabelSpec", "MaskSpec", "CenterSplit", "PatientSplit", "load_study"]
