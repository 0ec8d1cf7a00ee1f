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

from metaexamples.io import read_json, write_text
from metaexamples.rendering import fmt, get, markdown_table


def _read_yaml(path: Path):
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def _split_override(text: str) -> tuple[str, str]:
    key, _, value = str(text).partition("=")
    return key.lstrip("+~"), value


def job_overrides(job: Path) -> list[str]:
    """The job's command-line overrides, as Hydra saved them (.hydra/overrides.yaml)."""
    found = _read_yaml(job / ".hydra" / "overrides.yaml")
    return [str(o) for o in found] if isinstance(found, list) else []


def _job_num(job: Path) -> int | None:
    hydra = _read_yaml(job / ".hydra" / "hydra.yaml")
    try:
        return int(hydra["hydra"]["job"]["num"])
    except (TypeError, KeyError, ValueError):
        return None


def planned_jobs(sweep_dir: Path) -> tuple[list[list[str]], set[str]] | None:
    """(every job the sweep planned, in job-number order, as its override list; the swept keys),
    from the multirun.yaml Hydra writes in the sweep folder before the first job starts; None
    for a folder that has none, or a sweeper other than Hydra's basic one."""
    master = _read_yaml(Path(sweep_dir) / "multirun.yaml")
    try:
        hydra = master["hydra"]
        sweeper = hydra.get("sweeper") or {}
        if "BasicSweeper" not in str(sweeper.get("_target_", "BasicSweeper")):
            return None
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
        overrides = OverridesParser.create().parse_overrides(params + list(hydra["overrides"]["task"] or []))
        swept = {o.get_key_element().lstrip("+~") for o in overrides if o.is_sweep_override()}
        jobs = [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
        return jobs, swept
    except Exception:  # noqa: BLE001 - an unreadable or foreign multirun.yaml: no plan to compare with
        return None


def _run_label(row: dict, overrides: list[str], swept: set[str]) -> str:
    """The run name, plus the swept overrides it does not already show (`grammar.min_len=6`;
    not `grammar=g2`, which the name holds)."""
    parts = set(str(row.get("run") or "").split("-"))
    shown = [f"{k}={v}" for k, v in map(_split_override, overrides) if k in swept and v not in parts]
    return " ".join([str(row.get("run") or "-"), *shown])


def collect(sweep_dir: Path) -> tuple[list[dict], list[dict]]:
    """(completed jobs, failed, missing or never started jobs). A job folder is one Hydra wrote
    (.hydra/); the jobs a sweep planned come from its multirun.yaml. Each row gets `run_label`:
    the run name and the overrides swept over (what tells two jobs of the same run apart)."""
    done, problems = [], []
    job_dirs = sorted({p.parent.parent for p in sweep_dir.rglob(".hydra/config.yaml")})
    overrides = {job: job_overrides(job) for job in job_dirs}
    values: dict[str, set[str]] = {}
    for ovs in overrides.values():
        for key, value in map(_split_override, ovs):
            values.setdefault(key, set()).add(value)
    plan = planned_jobs(sweep_dir)
    swept = {k for k, v in values.items() if len(v) > 1} | (plan[1] if plan else set())
    for job in job_dirs:
        results_path = job / "results.json"
        rel = job.relative_to(sweep_dir).as_posix() or "."
        if not results_path.exists():
            problems.append({"job": rel, "status": "missing", "error": "no results.json (job did not start or crashed)"})
            continue
        row = read_json(results_path)
        row["job"] = rel
        row["run_label"] = _run_label(row, overrides[job], swept)
        if row.get("status") == "completed":
            done.append(row)
        else:
            problems.append({"job": rel, "status": row.get("status", "?"), "error": row.get("error") or ""})
    if plan:
        started = {_job_num(job) for job in job_dirs}
        for num, ovs in enumerate(plan[0]):
            if num not in started:
                shown = " ".join(o for o in ovs if _split_override(o)[0] in plan[1]) or " ".join(ovs)
                problems.append({"job": f"#{num} {shown}", "status": "not started",
                                 "error": "planned by the sweep (multirun.yaml) but never started: the sweep "
                                          "was stopped before it"})
    return done, problems


def table_rows(rows: list[dict], columns: list[tuple[str, str]], section: str) -> list[list[str]]:
    """The cells; the `run` column shows each job's run label (name + swept overrides)."""
    return [[fmt(r.get("run_label") or get(r, key)) if key == "run" else fmt(get(r, key)) for _, key in columns]
            for r in rows if r.get(section)]


def _task_of(row: dict):
    from metaexamples.tasks import task_class

    return task_class(row.get("task") or "grammar")


def _method_of(name: str):
    from metaexamples.methods import method_class

    return method_class(name)


def build_report(sweep_dir: Path, out_dir: Path | None = None) -> dict:
    """Write report.md and plots into out_dir (default: the sweep folder); return the pieces:
    rows, problems, tables [(title, headers, rows)], `<section>_rows` per table, plots."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: not a folder")
    out_dir = Path(out_dir) if out_dir else sweep_dir
    rows, problems = collect(sweep_dir)
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
    for name in sorted(by_task):
        task = _task_of({"task": name})
        task_rows = sorted(by_task[name], key=lambda r: (*task.sort_key(r), r.get("seed", 0), r["job"]))
        for table in task.report_tables:
            add_table(table, task_rows)
        for section in task.report_sections(task_rows):
            out["sections"].append(section)
            parts.extend([f"## {section.title}", ""])
            if section.headers:
                parts.extend([markdown_table(section.headers, section.rows), ""])
            if section.text:
                parts.extend([*section.text, ""])
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
        found = _read_yaml(Path(sweep_dir) / row["job"] / ".hydra" / "config.yaml")
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

    from metaexamples.tracking import start_tracker

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
    args = parser.parse_args(argv)
    try:
        report = build_report(args.sweep_dir, args.out)
    except FileNotFoundError as exc:
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
