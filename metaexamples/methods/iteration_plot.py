"""The sweep report's per-iteration curves for expert iteration: accuracy (and, for grammars,
validity and novel-valid share) by iteration, one line per job and split, from each job's
iterations.jsonl."""

from __future__ import annotations

from pathlib import Path

from metaexamples.io import read_jsonl
from metaexamples.rendering import save_figure

PANELS = (("accuracy", "accuracy (mean reward)"), ("novelty_rate", "novel share of valid samples"))


def iteration_curves(rows: list[dict]) -> list[tuple]:
    """(job label, split, metric, iterations, values) per job, split and panel metric; the label
    is the report's run label (name + swept overrides), so the controls of one sweep differ."""
    curves = []
    for row in rows:
        log = Path((row.get("train") or {}).get("iterations_file") or "")
        if not log.is_file():
            continue
        its = read_jsonl(log)
        splits = sorted({k.split("/")[0] for r in its for k in r if k.endswith("/accuracy")})
        for split in splits:
            for metric, _ in PANELS:
                pts = [(r["iteration"], r[f"{split}/{metric}"]) for r in its if r.get(f"{split}/{metric}") is not None]
                if pts:
                    curves.append((row.get("run_label") or row.get("run", "?"), split, metric, *zip(*pts)))
    return curves


def plot_iterations(rows: list[dict], path: Path) -> list[str]:
    curves = iteration_curves(rows)
    if not curves:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(m, title) for m, title in PANELS if any(c[2] == m for c in curves)]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (metric, title) in zip(axes[0], panels):
        for label, split, m, xs, ys in curves:
            if m == metric:
                ax.plot(xs, ys, marker="o", label=f"{label} / {split}")
        ax.set_xlabel("iteration (0 = before training)")
        ax.set_ylabel(title)
        ax.set_ylim(0, 1)
        ax.legend(fontsize="x-small")
    fig.suptitle("Expert iteration: by iteration, one line per job and split")
    fig.tight_layout()
    save_figure(fig, path)
    return [path.name]
