"""The grammar task's sweep-report plots: an AUROC heatmap (grammar x condition) and validity
by decoding preset."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from metaexamples.rendering import get, save_figure


def plot_auroc_heatmap(rows: list[dict], path: Path) -> bool:
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        if get(r, "ppl.auroc") is not None:
            cells[(r["grammar"], r["condition"])].append(float(get(r, "ppl.auroc")))
    if not cells:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grammars = sorted({g for g, _ in cells})
    conditions = sorted({c for _, c in cells}, key=_condition_order)
    grid = np.full((len(grammars), len(conditions)), np.nan)
    for (g, c), values in cells.items():
        grid[grammars.index(g), conditions.index(c)] = float(np.mean(values))
    fig, ax = plt.subplots(figsize=(1.6 * len(conditions) + 2, 0.7 * len(grammars) + 1.5))
    im = ax.imshow(grid, vmin=0.5, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(conditions)), conditions)
    ax.set_yticks(range(len(grammars)), grammars)
    for i in range(len(grammars)):
        for j in range(len(conditions)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", color="w" if grid[i, j] < 0.8 else "k")
    fig.colorbar(im, ax=ax, label="AUROC (mean over runs)")
    ax.set_title("Perplexity discrimination: AUROC")
    fig.tight_layout()
    save_figure(fig, path)
    return True


def plot_validity_by_decoding(rows: list[dict], path: Path) -> bool:
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        if get(r, "gen.validity_rate") is not None:
            cells[(r["grammar"], r.get("decoding") or "?")].append(float(get(r, "gen.validity_rate")))
    if not cells:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grammars = sorted({g for g, _ in cells})
    presets = sorted({d for _, d in cells})
    width = 0.8 / len(presets)
    fig, ax = plt.subplots(figsize=(1.5 * len(grammars) + 3, 3.5))
    for k, preset in enumerate(presets):
        heights = [float(np.mean(cells.get((g, preset), [np.nan]))) for g in grammars]
        ax.bar(np.arange(len(grammars)) + k * width, heights, width, label=preset)
    ax.set_xticks(np.arange(len(grammars)) + 0.4 - width / 2, grammars)
    ax.set_ylim(0, 1)
    ax.set_ylabel("validity rate")
    ax.set_title("Generation validity by decoding preset")
    ax.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)
    return True



def _condition_order(name: str) -> tuple[int, str]:
    from metaexamples.tasks.grammar import CONDITION_ORDER

    return (CONDITION_ORDER.get(name, 99), name)


def grammar_plots(rows: list[dict], out_dir: Path) -> list[str]:
    made = []
    if plot_auroc_heatmap(rows, out_dir / "auroc_heatmap.png"):
        made.append("auroc_heatmap.png")
    if plot_validity_by_decoding(rows, out_dir / "validity_by_decoding.png"):
        made.append("validity_by_decoding.png")
    return made
