"""The jobs of a sweep folder: each job's results.json row labelled with the overrides the
sweep varied, and the jobs that failed, are missing or never started (from the sweep's
multirun.yaml). Read by the sweep report and by the method reports that compare a sweep's
arms across methods."""

from __future__ import annotations

import re
from pathlib import Path

from metaexamples.io import read_json


def read_yaml(path: Path):
    """A YAML file's content, or None when it cannot be read."""
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
    found = read_yaml(job / ".hydra" / "overrides.yaml")
    return [str(o) for o in found] if isinstance(found, list) else []


def _natural_order(job: Path) -> list:
    """Job folders in the order Hydra numbered them (2_g1 before 10_g1), not as strings sort."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", job.as_posix())]


def _job_num(job: Path) -> int | None:
    hydra = read_yaml(job / ".hydra" / "hydra.yaml")
    try:
        return int(hydra["hydra"]["job"]["num"])
    except (TypeError, KeyError, ValueError):
        return None


def sweep_plan(hydra: dict) -> tuple[list[list[str]], set[str]] | None:
    """(every job a sweep plans, in job-number order, as its override list; the swept keys) from
    the sweep's `hydra` node (its sweeper params, then the command-line overrides, which win),
    expanded as Hydra's basic sweeper does; None for another sweeper or a node it cannot read."""
    try:
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
    except Exception:  # noqa: BLE001 - an unreadable or foreign sweep config: no plan to compare with
        return None


def planned_jobs(sweep_dir: Path) -> tuple[list[list[str]], set[str]] | None:
    """sweep_plan of the multirun.yaml Hydra writes in the sweep folder before the first job
    starts; None for a folder that has none."""
    master = read_yaml(Path(sweep_dir) / "multirun.yaml")
    return sweep_plan(master["hydra"]) if isinstance(master, dict) and isinstance(master.get("hydra"), dict) else None


def override_values(jobs: list[list[str]], key: str) -> set[str]:
    """The values `key` takes over the jobs' override lists (empty: no job overrides it)."""
    return {value for job in jobs for k, value in map(_split_override, job) if k == key}


def job_min_seeds(job: Path) -> int:
    """The job's `min_seeds` (.hydra/config.yaml): how many seeds its preset pairs runs over
    (experiment=seed_matrix: 2); 1 when it pairs nothing or the file does not say."""
    found = read_yaml(job / ".hydra" / "config.yaml")
    value = found.get("min_seeds") if isinstance(found, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _run_label(row: dict, overrides: list[str], swept: set[str]) -> str:
    """The run name, plus the swept overrides it does not already show (`grammar.min_len=6`;
    not `grammar=g2`, which the name holds)."""
    parts = set(str(row.get("run") or "").split("-"))
    shown = [f"{k}={v}" for k, v in map(_split_override, overrides) if k in swept and v not in parts]
    return " ".join([str(row.get("run") or "-"), *shown])


def collect(sweep_dir: Path) -> tuple[list[dict], list[dict]]:
    """(completed jobs, failed, missing or never started jobs). A job folder is one Hydra wrote
    (.hydra/); the jobs a sweep planned come from its multirun.yaml. Each row gets `run_label`:
    the run name and the overrides swept over (what tells two jobs of the same run apart), and
    `min_seeds`: the seeds its preset pairs runs over (job_min_seeds)."""
    done, problems = [], []
    job_dirs = sorted({p.parent.parent for p in sweep_dir.rglob(".hydra/config.yaml")}, key=_natural_order)
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
        row["min_seeds"] = job_min_seeds(job)
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
