"""Shared behaviour of the evaluation result dataclasses: ``to_frame()`` and a readable ``str``."""

from __future__ import annotations


class ResultMixin:
    """Gives a result dataclass a readable ``__str__`` built from its ``to_frame()`` table."""

    title = "result"

    def to_frame(self):  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def __str__(self) -> str:
        import pandas as pd

        with pd.option_context("display.max_columns", 20, "display.width", 120,
                               "display.float_format", "{:.4f}".format):
            return f"{self.title}\n{self.to_frame().to_string()}"
