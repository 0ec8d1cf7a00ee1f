"""How results are shown: a dotted key read out of a results.json row, a figure formatted for
a table, a Markdown table, a figure saved atomically. Shared by the sweep report, the tasks'
and the methods' report parts, and the end-of-run summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metaexamples.io import atomic_path


def get(row: dict, dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:  # small p-values and losses: not "0.0000"
            return f"{value:.3g}"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
