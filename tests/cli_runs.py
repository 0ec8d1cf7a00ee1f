"""Running the real CLI from a test: `metaexamples <args>` as a subprocess with the test's
cache, and the W&B offline run a job wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(args: list[str], cwd: Path, cache: Path, module: str = "metaexamples", timeout: int = 600):
    env = {**os.environ, "METAEXAMPLES_CACHE": str(cache), "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def offline_run_dir(job_dir: Path) -> Path:
    [run] = list((job_dir / "wandb").glob("offline-run-*"))
    return run
