"""Run a list of bad inputs through the real CLI and count how each one ends.

    python benchmarks/audit_bad_input.py [--only NAME,...] [--json out.json] [--workdir DIR]

Every case is one `python -m metaexamples ...` process (in a scratch folder, logger=none,
train.num_threads=1), some after a preparation that leaves a run folder behind (a finished
expert-iteration run, a polychromic run killed after its first checkpoint, ...). Outcomes:

- `one_line`:  exit 2, one `error: ...` line, no traceback, no stage ran, nothing damaged;
- `late`:      exit 2 and one line, but only after a stage had run (the config alone could tell);
- `twice`:     exit 2, but the line is printed more than once in the combined output;
- `traceback`: a Python traceback, or another exit code;
- `silent`:    exit 0 (a wrong or meaningless result), or a refused run that damaged a finished
               run's files (results.json flipped to failed).

Prints one line per case and the counts per outcome; `--json` writes them as well.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
BASE = ["logger=none", "train.num_threads=1"]
SMOKE = ["experiment=smoke"]
DATA_ONLY = [*SMOKE, "stages=[data]"]
PROC = [*SMOKE, "task=procedural", "model=tiny"]
EI = [*PROC, "method=expert_iteration"]
POLY = [*SMOKE, "method=polychromic", "method.n_samples=4", "method.set_size=2", "method.prompts_per_update=2",
        "method.rollout_batch_size=8", "method.minibatch_size=8", "method.ppo_epochs=1"]


@dataclass
class Case:
    name: str
    args: list[str]
    env: dict = field(default_factory=dict)
    prepare: str | None = None  # a prepared run folder copied in as this case's run folder
    edit: Callable[[Path], None] | None = None  # damage the copied folder before the run
    multirun: bool = False


def _truncate(rel: str) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        p = run / rel
        p.write_text(p.read_text()[: max(1, len(p.read_text()) // 2)])
    return edit


def _append(rel: str, text: str) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        with open(run / rel, "a") as f:
            f.write(text)
    return edit


def _drop_metrics(run: Path) -> None:
    (run / "iter_0" / "metrics.json").unlink()


# Prepared run folders: (overrides). The polychromic one stops after its first update's checkpoint.
PREPARED = {
    "ei": [*EI, "stages=[data,train]"],
    "poly": [*POLY, "stages=[data,train]", "train.max_steps=1", "train.save_steps=1"],
    "data": DATA_ONLY,
}

CASES = [
    # 1. silent wrong results
    Case("polychromic on procedural's default stages", [*SMOKE, "task=procedural", "method=polychromic"]),
    Case("polychromic resume, changed lam", [*POLY, "stages=[data,train]", "train.max_steps=2", "train.save_steps=1",
                                             "method.lam=0.5"], prepare="poly"),
    Case("polychromic resume, changed seed", [*POLY, "stages=[data,train]", "train.max_steps=2", "train.save_steps=1",
                                              "seed=3"], prepare="poly"),
    Case("polychromic resume, changed architecture", [*POLY, "stages=[data,train]", "train.max_steps=2",
                                                      "train.save_steps=1", "model.arch.hidden_size=96"],
         prepare="poly"),
    Case("EI changed method.k, iter_0/metrics.json missing", [*EI, "stages=[data,train]", "method.k=3"],
         prepare="ei", edit=_drop_metrics),
    Case("EI trained_on.jsonl appended", [*EI, "stages=[eval_sets]"], prepare="ei",
         edit=_append("trained_on.jsonl", '{"extracted": "1"}\n')),
    Case("EI refused re-run (method.k) keeps results.json", [*EI, "stages=[data,train]", "method.k=3"],
         prepare="ei"),
    Case("EI task.n_train=0", [*EI, "stages=[data,train]", "task.n_train=0"]),
    Case("train.precision=fp16 on CPU", [*DATA_ONLY, "train.precision=fp16"]),
    Case("train.distributed=fsdp in one process", [*DATA_ONLY, "train.distributed=fsdp"]),
    Case("method.grok_rise=-1", [*EI, "stages=[data]", "method.grok_rise=-1"]),
    Case("method.grok_within=0", [*EI, "stages=[data]", "method.grok_within=0"]),
    Case("method.grok_train_above=5", [*EI, "stages=[data]", "method.grok_train_above=5"]),
    Case("task.eval_splits=[]", [*PROC, "stages=[data]", "task.eval_splits=[]"]),
    Case("method.eval_splits=[]", [*EI, "stages=[data]", "method.eval_splits=[]"]),
    Case("eval.set_ks=[]", [*PROC, "stages=[data]", "eval.set_ks=[]"]),
    Case("task.pass_k=[]", [*PROC, "stages=[data]", "task.pass_k=[]"]),
    Case("task.show_failures=-1", [*PROC, "stages=[data]", "task.show_failures=-1"]),
    Case("train.lora.alpha=-1", [*DATA_ONLY, "train.lora.enabled=true", "train.lora.alpha=-1"]),
    # 2. tracebacks
    Case("unresolved interpolation", [*DATA_ONLY, "grammar.max_len=${oops}"]),
    Case("seed=-1", [*DATA_ONLY, "seed=-1"]),
    Case("method.warmup_lr=-1", [*POLY, "stages=[data]", "method.warmup_lr=-1"]),
    Case("truncated results.json", DATA_ONLY, prepare="data", edit=_truncate("results.json")),
    Case("truncated iterations.jsonl", [*EI, "stages=[data,train]", "method.iterations=3"], prepare="ei",
         edit=_truncate("iterations.jsonl")),
    Case("truncated trained_on.jsonl", [*EI, "stages=[eval_sets]"], prepare="ei", edit=_append("trained_on.jsonl", '{"extr')),
    Case("trained_on row without extracted", [*EI, "stages=[eval_sets]"], prepare="ei",
         edit=_append("trained_on.jsonl", '{"text": "1"}\n')),
    # (not run on the code before: there it allocates until the kernel kills it, on a shared machine)
    Case("a batch size that cannot fit in memory", [*SMOKE, "stages=[data,train]", "train.batch_size=200000"]),
    Case("METAEXAMPLES_CACHE under /proc", DATA_ONLY, env={"METAEXAMPLES_CACHE": "/proc/metaexamples-cache"}),
    # 3. checks before any stage
    Case("method.lam=-1", [*POLY, "method.lam=-1"]),
    Case("method.n_samples=4 set_size=4", [*POLY, "method.set_size=4"]),
    Case("method.lr=0", [*POLY, "method.lr=0"]),
    Case("method.clip_eps=0", [*POLY, "method.clip_eps=0"]),
    Case("method.kl_coef=-1", [*POLY, "method.kl_coef=-1"]),
    Case("method.form=bogus", [*POLY, "method.form=bogus"]),
    Case("method.diversity=bogus", [*POLY, "method.diversity=bogus"]),
    Case("method.max_sets=0", [*POLY, "method.max_sets=0"]),
    Case("eval.set_problems=0", [*PROC, "eval.set_problems=0"]),
    Case("eval.set_samples=0", [*PROC, "eval.set_samples=0"]),
    Case("eval.set_ks=[50]", [*PROC, "eval.set_ks=[50]"]),
    Case("train.lora.r=0", [*SMOKE, "train.lora.enabled=true", "train.lora.r=0"]),
    Case("train.lora.dropout=1.5", [*SMOKE, "train.lora.enabled=true", "train.lora.dropout=1.5"]),
    Case("grammar.length_dist=bogus", [*SMOKE, "grammar.length_dist=bogus"]),
    Case("grammar.min_len=0", [*SMOKE, "grammar.min_len=0"]),
    Case("grammar=dyck with no even length in range", [*SMOKE, "grammar=dyck", "grammar.min_len=3", "grammar.max_len=3"]),
    Case("corpus.glob with no file", [*SMOKE, "corpus=text_files", "corpus.glob=/nonexistent/*.txt"]),
    Case("method.control=reference on grammar", [*SMOKE, "method=expert_iteration", "method.control=reference"]),
    Case("-m sweep with an unknown option", ["-m", *DATA_ONLY, "grammar=g1,bogus"], multirun=True),
    # 4. messages
    Case("+grammar=g2", [*DATA_ONLY, "+grammar=g2"]),
    Case("polychromic_arm=grpo without +", [*DATA_ONLY, "method=polychromic", "polychromic_arm=grpo"]),
    Case("method.eval_splits=[bogus]", [*EI, "stages=[data,train]", "method.eval_splits=[bogus]"]),
]


def _cli(args: list[str], run_dir: Path, cwd: Path, env: dict, multirun: bool = False,
         timeout: int = 900) -> tuple[int, str]:
    where = [f"hydra.sweep.dir={run_dir}"] if multirun else [f"hydra.run.dir={run_dir}"]
    full_env = {**os.environ, **env}
    start = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "metaexamples", *args, *BASE, *where], cwd=cwd, env=full_env,
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as exc:
        return -9, f"timeout after {time.perf_counter() - start:.0f} s {exc}"


def classify(code: int, out: str, damaged: bool) -> str:
    if "Traceback (most recent call last)" in out or code not in (0, 2):
        return "traceback"
    if code == 0 or damaged:
        return "silent"
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    if len(errors) > 1 or (errors and out.count(errors[-1][len("error: "):]) > 1):  # also a logged copy
        return "twice"
    if "stage data: start" in out or "stage train: start" in out:
        return "late"
    return "one_line"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    ap.add_argument("--json", default=None)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="audit-bad-input-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONPATH": str(REPO), "METAEXAMPLES_CACHE": str(work / "cache")}
    cases = [c for c in CASES if not a.only or any(s in c.name for s in a.only.split(","))]
    prepared: dict[str, Path] = {}
    for key in sorted({c.prepare for c in cases if c.prepare}):
        folder = work / f"prepared-{key}"
        shutil.rmtree(folder, ignore_errors=True)
        code, out = _cli(PREPARED[key], folder, work, env)
        print(f"prepared {key}: exit {code}", flush=True)
        if code != 0:
            print(out[-3000:], flush=True)
        prepared[key] = folder
    counts: dict[str, int] = {}
    rows = []
    for i, case in enumerate(cases):
        run = work / f"case-{i:02d}"
        shutil.rmtree(run, ignore_errors=True)
        before = None
        if case.prepare:
            shutil.copytree(prepared[case.prepare], run, symlinks=True)
            if case.edit:
                case.edit(run)
            results = run / "results.json"
            try:
                before = json.loads(results.read_text()).get("status")
            except (OSError, ValueError):
                before = None
        start = time.perf_counter()
        code, out = _cli(case.args, run, work, {**env, **case.env}, case.multirun)
        seconds = time.perf_counter() - start
        damaged = False
        if before == "completed" and code != 0:
            try:
                damaged = json.loads((run / "results.json").read_text()).get("status") != "completed"
            except (OSError, ValueError):
                damaged = True
        outcome = classify(code, out, damaged)
        counts[outcome] = counts.get(outcome, 0) + 1
        errors = [line for line in out.splitlines() if line.startswith("error: ")]
        last = errors[-1] if errors else (out.strip().splitlines() or [""])[-1]
        rows.append({"case": case.name, "outcome": outcome, "exit": code, "seconds": round(seconds, 1),
                     "line": last[:300]})
        print(f"{outcome:<9} exit {code:>3} {seconds:5.0f} s  {case.name}: {last[:200]}", flush=True)
    print("counts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" (of {len(cases)})", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"counts": counts, "cases": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
