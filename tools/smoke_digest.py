"""Digest of every task x method smoke run's outputs, to show that a refactor changes nothing.

    python tools/smoke_digest.py OUT_DIR [--pairs grammar:sft,procedural:polychromic]

Runs `metaexamples experiment=smoke task=T method=M logger=none train.num_threads=1` for each
pair into OUT_DIR/<task>-<method>/ (data cached in OUT_DIR/cache), then writes
OUT_DIR/digest.json: the sha256 of every output file. Files that hold wall-clock figures or
this machine's paths are compared on their content without them: JSON and JSONL files with
timing keys dropped and the run/cache folders replaced by placeholders; logs and Hydra's own
records are left out. Two digests equal file by file = the outputs are byte-identical where
they can be.

    python tools/smoke_digest.py --compare BEFORE/digest.json AFTER/digest.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

SKIP_PARTS = {".hydra", "wandb"}
SKIP_SUFFIXES = {".log"}
# keys whose values are wall-clock measurements
TIMING_KEY = re.compile(r"(^|_)(time|timings|seconds|elapsed|wall)(_|$)|per_s$|_s$")


def _scrub(value, places: dict[str, str]):
    if isinstance(value, dict):
        return {k: _scrub(v, places) for k, v in value.items() if not TIMING_KEY.search(k)}
    if isinstance(value, list):
        return [_scrub(v, places) for v in value]
    if isinstance(value, str):
        for path, name in places.items():
            value = value.replace(path, name)
    return value


def file_digest(path: Path, places: dict[str, str]) -> str:
    if path.suffix == ".json":
        data = _scrub(json.loads(path.read_text()), places)
        raw = json.dumps(data, sort_keys=True).encode()
    elif path.suffix == ".jsonl":
        rows = [_scrub(json.loads(line), places) for line in path.read_text().splitlines() if line.strip()]
        raw = "\n".join(json.dumps(r, sort_keys=True) for r in rows).encode()
    else:
        raw = path.read_bytes()
        if path.suffix == ".pkl":  # accelerate's custom states: a plain dict may hold seconds
            import torch

            state = torch.load(path, weights_only=False)
            if isinstance(state, dict) and all(isinstance(v, (int, float, str)) for v in state.values()):
                raw = json.dumps(_scrub(state, places), sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()


def run_digest(run_dir: Path, places: dict[str, str]) -> dict[str, str]:
    out = {}
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if path.is_file() and not SKIP_PARTS & set(rel.parts) and path.suffix not in SKIP_SUFFIXES:
            out[rel.as_posix()] = file_digest(path, places)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--pairs", default="", help="task:method,... (default: every task x method)")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        for path in args.compare:
            if not path.is_file():
                print(f"error: {path}: no such digest (run tools/smoke_digest.py OUT_DIR first)", file=sys.stderr)
                return 2
        a, b = (json.loads(p.read_text()) for p in args.compare)
        same = differ = 0
        for run in sorted(set(a) | set(b)):
            fa, fb = a.get(run, {}), b.get(run, {})
            for name in sorted(set(fa) | set(fb)):
                if fa.get(name) == fb.get(name):
                    same += 1
                else:
                    differ += 1
                    print(f"differs: {run}/{name}")
        print(f"{same} files identical, {differ} differ, over {len(set(a) | set(b))} runs")
        return 1 if differ else 0
    if args.out is None:
        ap.error("OUT_DIR is required (or --compare BEFORE AFTER)")
    from metaexamples import methods, tasks

    pairs = [p.split(":") for p in args.pairs.split(",") if p] or \
        [(t, m) for t in tasks.available() for m in methods.available()]
    out = args.out.resolve()
    cache = out / "cache"
    env = {**os.environ, "METAEXAMPLES_CACHE": str(cache)}
    digest = {}
    for task, method in pairs:
        run_dir = out / f"{task}-{method}"
        cmd = [sys.executable, "-m", "metaexamples", "experiment=smoke", f"task={task}", f"method={method}",
               "logger=none", "train.num_threads=1", f"hydra.run.dir={run_dir}"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()[-200:]}"
        print(f"{task}-{method}: {status}", flush=True)
        digest[f"{task}-{method}"] = {"exit": str(proc.returncode),
                                      **(run_digest(run_dir, {str(run_dir): "<run>", str(cache): "<cache>"})
                                         if run_dir.exists() else {})}
    (out / "digest.json").write_text(json.dumps(digest, indent=1, sort_keys=True))
    print(f"digest: {out / 'digest.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
