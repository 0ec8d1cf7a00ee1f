"""Sweep report: `metaexamples-report <multirun folder>`.

Reads every job's results.json under the folder (never W&B internals) and writes, and prints
with rich, the reference report's two tables with the new columns after them, lists failed or
missing jobs, and draws an AUROC heatmap (grammar x condition) and validity by decoding preset.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from metaexamples.io import read_json, write_text

PPL_COLUMNS = [  # (header, results key); the reference report's columns first
    ("Run", "run"), ("Grammar", "grammar"), ("Valid PPL", "ppl.valid_ppl"),
    ("Invalid PPL", "ppl.invalid_ppl"), ("Gap", "ppl.gap"), ("Ratio", "ppl.ratio"),
    ("AUROC", "ppl.auroc"), ("AUPR", "ppl.aupr"), ("Best F1", "ppl.best_f1"),
    ("Balanced Acc", "ppl.balanced_acc"),
    ("Condition", "condition"), ("Model", "model"), ("Seed", "seed"),
    ("Valid NLL/sym", "ppl.valid_nll_per_symbol"), ("Invalid NLL/sym", "ppl.invalid_nll_per_symbol"),
    ("AUROC/sym", "ppl.auroc_per_symbol"),
]
GEN_COLUMNS = [
    ("Run", "run"), ("Grammar", "grammar"), ("Samples", "gen.samples"), ("Valid", "gen.valid"),
    ("Invalid", "gen.invalid"), ("Validity Rate", "gen.validity_rate"),
    ("Condition", "condition"), ("Decoding", "decoding"), ("Novel Valid", "gen.novel_valid"),
    ("Unique Valid", "gen.unique_valid"), ("No Close", "gen.failures.no_close"),
    ("Foreign Token", "gen.failures.foreign_token"), ("Length", "gen.failures.length"),
    ("Rule", "gen.failures.rule"),
]


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
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def collect(sweep_dir: Path) -> tuple[list[dict], list[dict]]:
    """(completed jobs, failed or missing jobs). A job folder is one Hydra wrote (.hydra/)."""
    done, problems = [], []
    job_dirs = sorted({p.parent.parent for p in sweep_dir.rglob(".hydra/config.yaml")})
    for job in job_dirs:
        results_path = job / "results.json"
        rel = job.relative_to(sweep_dir).as_posix() or "."
        if not results_path.exists():
            problems.append({"job": rel, "status": "missing", "error": "no results.json (job did not start or crashed)"})
            continue
        row = read_json(results_path)
        row["job"] = rel
        if row.get("status") == "completed":
            done.append(row)
        else:
            problems.append({"job": rel, "status": row.get("status", "?"), "error": row.get("error") or ""})
    return done, problems


def table_rows(rows: list[dict], columns: list[tuple[str, str]], section: str) -> list[list[str]]:
    return [[fmt(get(r, key)) for _, key in columns] for r in rows if r.get(section)]


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


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
    _save_figure(fig, path)
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
    _save_figure(fig, path)
    return True


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    from metaexamples.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _condition_order(name: str) -> tuple[int, str]:
    order = {"examples": 0, "meta_1pct": 1, "meta_5pct": 2, "meta_10pct": 3}
    return (order.get(name, 99), name)


def build_report(sweep_dir: Path, out_dir: Path | None = None) -> dict:
    """Write report.md and plots into out_dir (default: the sweep folder); return the pieces."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: not a folder")
    out_dir = Path(out_dir) if out_dir else sweep_dir
    rows, problems = collect(sweep_dir)
    rows.sort(key=lambda r: (r.get("grammar", ""), _condition_order(r.get("condition", "")), r.get("seed", 0), r["job"]))
    ppl_rows = table_rows(rows, PPL_COLUMNS, "ppl")
    gen_rows = table_rows(rows, GEN_COLUMNS, "gen")
    plots = []
    if plot_auroc_heatmap(rows, out_dir / "auroc_heatmap.png"):
        plots.append("auroc_heatmap.png")
    if plot_validity_by_decoding(rows, out_dir / "validity_by_decoding.png"):
        plots.append("validity_by_decoding.png")
    parts = [f"# Sweep report: {sweep_dir.name}", "",
             f"{len(rows)} completed job(s), {len(problems)} failed or missing.", "",
             "## Perplexity and Discrimination", "",
             markdown_table([h for h, _ in PPL_COLUMNS], ppl_rows), "",
             "## Generation Validity", "",
             markdown_table([h for h, _ in GEN_COLUMNS], gen_rows), ""]
    if problems:
        parts += ["## Failed or missing jobs", "",
                  markdown_table(["Job", "Status", "Error"], [[p["job"], p["status"], p["error"]] for p in problems]), ""]
    parts += [f"![{p}]({p})" for p in plots]
    markdown = "\n".join(parts) + "\n"
    write_text(out_dir / "report.md", markdown)
    return {"rows": rows, "problems": problems, "ppl_rows": ppl_rows, "gen_rows": gen_rows,
            "plots": plots, "markdown": markdown, "path": out_dir / "report.md"}


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or redirected: don't squeeze the tables into 80 columns
        console = Console(width=220)
    for title, columns, rows in (("Perplexity and Discrimination", PPL_COLUMNS, report["ppl_rows"]),
                                 ("Generation Validity", GEN_COLUMNS, report["gen_rows"])):
        table = Table(title=title)
        for header, _ in columns:
            table.add_column(header, no_wrap=True)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    if report["problems"]:
        table = Table(title="Failed or missing jobs")
        for header in ("Job", "Status", "Error"):
            table.add_column(header, overflow="fold")
        for p in report["problems"]:
            table.add_row(p["job"], p["status"], p["error"])
        console.print(table)
    console.print(f"report: {report['path']}" + "".join(f"\nplot: {report['path'].parent / p}" for p in report["plots"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="metaexamples-report", description=__doc__.splitlines()[2].strip())
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (or any folder of job folders)")
    parser.add_argument("--out", type=Path, default=None, help="where to write report.md and plots (default: the sweep folder)")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.sweep_dir, args.out)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print_report(report)
    if not report["rows"] and not report["problems"]:
        print(f"error: {args.sweep_dir}: no job folders found (expected Hydra job folders with .hydra/)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
