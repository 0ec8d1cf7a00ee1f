"""Sweep report: `metaexamples-report <multirun folder>`.

Reads every job's results.json under the folder (never W&B internals) and writes, and prints
with rich, each task's tables (the task's `report_tables`; for the grammar task the reference
report's two tables with the new columns after them), its sections (`report_sections`; the
grammar task: conditions over seeds, paired against examples, findings) and plots
(`report_plots`), and lists failed or missing jobs. Keyed by the `task` field of results.json
(older files: grammar). When the jobs logged to W&B (their logger.backend), the sections'
tables go to one W&B run of job_type "report" too (`--no-wandb`: not).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from metaexamples.errors import ConfigError
from metaexamples.io import write_text
from metaexamples.methods import method_class
from metaexamples.rendering import fmt, get, markdown_table
from metaexamples.sweep_jobs import collect, read_yaml
from metaexamples.tasks import task_class
from metaexamples.tracking import start_tracker


def table_rows(rows: list[dict], columns: list[tuple[str, str]], section: str) -> list[list[str]]:
    """The cells; the `run` column shows each job's run label (name + swept overrides)."""
    return [[fmt(r.get("run_label") or get(r, key)) if key == "run" else fmt(get(r, key)) for _, key in columns]
            for r in rows if r.get(section)]


def _task_of(row: dict):
    return task_class(row.get("task") or "grammar")


def _method_of(name: str):
    return method_class(name)


def build_report(sweep_dir: Path, out_dir: Path | None = None, allow_unpaired: bool = False) -> dict:
    """Write report.md and plots into out_dir (default: the sweep folder); return the pieces:
    rows, problems, tables [(title, headers, rows)], `<section>_rows` per table, plots.
    Every table and section is computed before the first file is written: a refusal (a
    ConfigError, e.g. a paired comparison that cannot pair) leaves the folder as it was.
    allow_unpaired: write comparisons that cannot pair as such, whatever the jobs' min_seeds."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: not a folder")
    out_dir = Path(out_dir) if out_dir else sweep_dir
    rows, problems = collect(sweep_dir)
    if allow_unpaired:
        for row in rows:
            row["min_seeds"] = 1
    by_task: dict[str, list[dict]] = {}
    for row in rows:
        by_task.setdefault(_task_of(row).name, []).append(row)
    out: dict[str, Any] = {"rows": rows, "problems": problems, "tables": [], "sections": [], "plots": []}
    parts = [f"# Sweep report: {sweep_dir.name}", "",
             f"{len(rows)} completed job(s), {len(problems)} failed or missing.", ""]

    def add_table(table, table_jobs: list[dict]) -> None:
        cells = table_rows(table_jobs, table.columns, table.section)
        headers = [h for h, _ in table.columns]
        out["tables"].append((table.title, headers, cells))
        out[f"{table.section}_rows"] = out.get(f"{table.section}_rows", []) + cells
        parts.extend([f"## {table.title}", "", markdown_table(headers, cells), ""])
    tasks = []
    for name in sorted(by_task):
        task = _task_of({"task": name})
        # a stable sort: ties keep collect's order, Hydra's job numbers
        task_rows = sorted(by_task[name], key=lambda r: (*task.sort_key(r), r.get("seed", 0)))
        tasks.append((task, task_rows))
        for table in task.report_tables:
            add_table(table, task_rows)
        for section in task.report_sections(task_rows):
            out["sections"].append(section)
            parts.extend([f"## {section.title}", ""])
            if section.headers:
                parts.extend([markdown_table(section.headers, section.rows), ""])
            if section.text:
                parts.extend([*section.text, ""])
    for task, task_rows in tasks:  # the first files written
        out["plots"] += task.report_plots(task_rows, out_dir)
    by_method: dict[str, list[dict]] = {}
    for row in rows:
        by_method.setdefault(row.get("method") or "sft", []).append(row)
    for name in sorted(by_method):
        method = _method_of(name)
        for table in method.report_tables():
            add_table(table, by_method[name])
        out["plots"] += method.report_plots(by_method[name], out_dir)
    if problems:
        parts += ["## Failed or missing jobs", "",
                  markdown_table(["Job", "Status", "Error"], [[p["job"], p["status"], p["error"]] for p in problems]), ""]
    parts += [f"![{p}]({p})" for p in out["plots"]]
    out["markdown"] = "\n".join(parts) + "\n"
    write_text(out_dir / "report.md", out["markdown"])
    out["path"] = out_dir / "report.md"
    return out


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or redirected: don't squeeze the tables into 80 columns
        console = Console(width=220)
    for title, headers, rows in report["tables"]:
        table = Table(title=title)
        for header in headers:
            table.add_column(header, no_wrap=True)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for section in report.get("sections", []):
        if section.headers:
            table = Table(title=section.title)
            for header in section.headers:
                table.add_column(header, no_wrap=True)
            for row in section.rows:
                table.add_row(*row)
            console.print(table)
        else:
            console.print(f"[bold]{section.title}[/bold]")
        for line in section.text:
            console.print(line, markup=False, highlight=False)
    if report["problems"]:
        table = Table(title="Failed or missing jobs")
        for header in ("Job", "Status", "Error"):
            table.add_column(header, overflow="fold")
        for p in report["problems"]:
            table.add_row(p["job"], p["status"], p["error"])
        console.print(table)
    console.print(f"report: {report['path']}" + "".join(f"\nplot: {report['path'].parent / p}" for p in report["plots"]))


def jobs_logger(sweep_dir: Path, rows: list[dict]):
    """The logger config of the sweep's first completed job (.hydra/config.yaml), or None."""
    for row in rows:
        found = read_yaml(Path(sweep_dir) / row["job"] / ".hydra" / "config.yaml")
        if isinstance(found, dict) and isinstance(found.get("logger"), dict):
            return {"logger": found["logger"], "experiment_name": found.get("experiment_name")}
    return None


def log_to_wandb(report: dict, sweep_dir: Path) -> Path | None:
    """The sections' tables (and the findings, as a one-column table) as one W&B run of
    job_type "report", when the jobs logged to W&B; returns its folder (None: not logged)."""
    found = jobs_logger(sweep_dir, report["rows"])
    if not report.get("sections") or not found or found["logger"].get("backend") != "wandb":
        return None
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"logger": found["logger"]})
    out_dir = Path(report["path"]).parent
    tracker = start_tracker(cfg, out_dir, name=f"report-{Path(sweep_dir).name}",
                            group=found.get("experiment_name"), job_type="report", tags=["report"])
    for section in report["sections"]:
        name = "report/" + "".join(ch if ch.isalnum() else "_" for ch in section.title.split(" (")[0].lower())
        if section.headers:
            tracker.table(name, section.headers, section.rows)
        if section.text:
            tracker.table(name + "_text", ["line"], [[line] for line in section.text])
    tracker.finish()
    return out_dir / "wandb"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="metaexamples-report", description=__doc__.splitlines()[2].strip())
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (or any folder of job folders)")
    parser.add_argument("--out", type=Path, default=None, help="where to write report.md and plots (default: the sweep folder)")
    parser.add_argument("--no-wandb", action="store_true", help="do not log the summary tables to W&B even if the jobs did")
    parser.add_argument("--allow-unpaired", action="store_true",
                        help="write the report even where jobs that pair over seeds (experiment=seed_matrix) have a "
                             "comparison with fewer than 2 shared seeds (those cells say: cannot pair)")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.sweep_dir, args.out, allow_unpaired=args.allow_unpaired)
    except (FileNotFoundError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print_report(report)
    if not args.no_wandb:
        logged = log_to_wandb(report, args.sweep_dir)
        if logged:
            print(f"wandb: summary tables logged ({logged})")
    if not report["rows"] and not report["problems"]:
        print(f"error: {args.sweep_dir}: no job folders found (expected Hydra job folders with .hydra/)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
