"""Run tracking: W&B (offline by default, online, or off) behind one small interface.

Stages only call `log`, `summary`, `table` and `image`; which backend is behind it, and that
only the main process logs, is decided here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


class Tracker:
    """No-op tracker: the interface every stage talks to (also used by tests and non-main ranks)."""

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Namespaced scalars, e.g. {"train/loss": 2.1}."""

    def summary(self, values: dict[str, Any]) -> None:
        """Final values (the report's table fields), e.g. {"ppl/auroc": 0.99}."""

    def table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A table of rows, e.g. generated samples with their verdicts."""

    def image(self, name: str, path: str | Path) -> None:
        """A PNG plot, e.g. the ROC curve."""

    def finish(self, exit_code: int = 0) -> None:
        pass
