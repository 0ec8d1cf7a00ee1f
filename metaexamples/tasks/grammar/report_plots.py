"""The grammar task's sweep-report plots: an AUROC heatmap (grammar x condition), validity by
decoding preset, and (with grammar.eval_lengths) AUROC and validity against length."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from metaexamples.rendering import get, save_figure
from metaexamples.tasks.grammar.seed_summary import bucket_lo, condition_order, length_curves


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
    conditions = sorted({c for _, c in cells}, key=condition_order)
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



def plot_length_generalization(rows: list[dict], path) -> bool:
    """AUROC (top) and generation validity (bottom) against length bucket, one column per
    grammar, one line per condition: mean over seeds with its 95% bootstrap interval."""
    curves = {"AUROC": length_curves(rows, "ppl", "auroc"), "validity": length_curves(rows, "gen", "validity_rate")}
    grammars = sorted(set(curves["AUROC"]) | set(curves["validity"]))
    if not grammars:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(grammars), figsize=(3.6 * len(grammars) + 1, 6.0), squeeze=False)
    for row, (label, by_grammar) in enumerate(curves.items()):
        for col, g in enumerate(grammars):
            ax = axes[row][col]
            for c in sorted(by_grammar.get(g, {}), key=condition_order):
                curve = {b: ci for b, ci in by_grammar[g][c].items() if ci["mean"] is not None}
                if not curve:
                    continue
                buckets = list(curve)
                x = [bucket_lo(b) for b in buckets]
                m = [curve[b]["mean"] for b in buckets]
                err = [[mi - curve[b]["lo"] for mi, b in zip(m, buckets)],
                       [curve[b]["hi"] - mi for mi, b in zip(m, buckets)]]
                ax.errorbar(x, m, yerr=err, marker="o", capsize=3, label=c)
                ax.set_xticks(x, buckets, fontsize=7)
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{g}: {label}", fontsize=9)
            ax.set_xlabel("string length bucket (first: trained)", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"{label} (mean over seeds, 95% CI)", fontsize=8)
            if row == 0 and col == 0:
                ax.legend(fontsize=7)
    fig.suptitle("Length generalization", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def grammar_plots(rows: list[dict], out_dir: Path) -> list[str]:
    made = []
    if plot_auroc_heatmap(rows, out_dir / "auroc_heatmap.png"):
        made.append("auroc_heatmap.png")
    if plot_validity_by_decoding(rows, out_dir / "validity_by_decoding.png"):
        made.append("validity_by_decoding.png")
    if plot_length_generalization(rows, out_dir / "length_generalization.png"):
        made.append("length_generalization.png")
    return made
