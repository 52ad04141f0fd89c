"""Study-file defaults shared by layers on both sides of the design registry.

:mod:`sonorad.designs` reads these, and :mod:`sonorad.study.schema` declares the ``models:`` section
with them. The schema asks the design registry for each design's own keys, so the designs must not
import the schema: both import these names from here instead.
"""

from __future__ import annotations

__all__ = ["DEFAULT_DESIGN", "RUNNER_MODEL_KEYS"]

#: The design of a study file without ``models.design``.
DEFAULT_DESIGN = "score_fusion"
#: Keys of the ``models:`` section read by the runner itself (the rest belong to the design).
RUNNER_MODEL_KEYS = ("cnn", "bundle_exclude")
