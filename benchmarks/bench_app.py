"""Wall time of the main command (embedded default) and of the 36-job seed_matrix sweep (as
`make sweep` runs it: two jobs at a time, one thread each),
and where the time goes by stage (from each job's results.json timings).

    .venv/bin/python benchmarks/bench_app.py            # both (the sweep takes ~half an hour)
    .venv/bin/python benchmarks/bench_app.py --main-only

Targets on a 2-core machine: main command <= 180 s, seed_matrix <= 1800 s. Each run starts
from an empty cache, as on a fresh machine after set-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("data", "train", "eval_ppl", "eval_gen")


def run(args: list[str], cwd: Path, cache: Path) -> float:
    env = {**os.environ, "METAEXAMPLES_CACHE": str(cache), "WANDB_SILENT": "true"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "metaexamples", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall


def stage_table(results_files: list[Path], wall: float) -> None:
    rows = [json.loads(p.read_text()) for p in results_files]
    print(f"  jobs: {len(rows)}  completed: {sum(r['status'] == 'completed' for r in rows)}")
    total_stage = 0.0
    for stage in STAGES:
        values = [r["timings"].get(stage, 0.0) for r in rows]
        total_stage += sum(values)
        print(f"  {stage:9s} total {sum(values):7.1f} s   per job median {statistics.median(values):6.1f} s")
    print(f"  other (start-up, model loading, W&B, results) {wall - total_stage:7.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--main-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wall = run([f"hydra.run.dir={tmp / 'main'}"], tmp, tmp / "cache_main")
        print(f"main command (embedded default): {wall:.1f} s  (target <= 180 s)")
        stage_table([tmp / "main" / "results.json"], wall)
        if args.main_only:
            return
        wall = run(["-m", "experiment=seed_matrix", "hydra/launcher=local_parallel", "train.num_threads=1",
                    f"hydra.sweep.dir={tmp / 'sweep'}"], tmp, tmp / "cache_sweep")
        print(f"seed_matrix sweep (36 jobs, 2 at a time): {wall:.1f} s  (target <= 1800 s)")
        stage_table(sorted((tmp / "sweep").glob("*/results.json")), wall)


if __name__ == "__main__":
    main()
