"""The study runner: ``sonorad run STUDY.yaml --out DIR`` (see ``docs/running-a-study.md``)."""

from sonorad.runner.config import RunConfig, run_config
from sonorad.runner.run import RunFailed, run_study

__all__ = ["RunConfig", "run_config", "RunFailed", "run_study"]
