"""The Hydra entrypoint: `metaexamples [overrides]`, `metaexamples -m ...` for sweeps.

A thin wrapper: validate the config, open this job's W&B run and results.json, run the
stages, and always close both, marked failed when the job failed.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from metaexamples.config import register_configs, validate  # noqa: E402
from metaexamples.errors import ConfigError  # noqa: E402

log = logging.getLogger("metaexamples")
CONF_DIR = str(Path(__file__).resolve().parent / "conf")  # shipped in the package; conf/ at the repo root links here
_exit_code = 0  # set by a failed single run; main() exits with it after Hydra returns


def job_identity(cfg: DictConfig, hydra_cfg, task) -> dict:
    """W&B group, name, job type and tags for this job (name and tags from the task)."""
    group = cfg.logger.group or cfg.experiment_name
    if group is None and hydra_cfg.mode == RunMode.MULTIRUN:
        group = "sweep-" + Path(hydra_cfg.sweep.dir).as_posix().strip("/").replace("/", "_").removeprefix("multirun_")
    stages = list(cfg.stages)
    job_type = "pipeline" if stages == ["data", "train", *task.eval_stages] else "+".join(stages)
    tags = list(cfg.logger.tags) + task.tags() + [cfg.model.name, cfg.decoding.name]
    return {"name": task.run_name(), "group": group, "job_type": job_type, "tags": tags}


def run_job(cfg: DictConfig) -> str:
    """One job. Returns its status; raises in a sweep so the launcher records the failure."""
    global _exit_code
    from metaexamples.launch import is_main_process
    from metaexamples.pipeline import run_stages
    from metaexamples.results import Results
    from metaexamples.tasks import task_class
    from metaexamples.tracking import Tracker, start_tracker

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    tracker: Tracker = Tracker()
    results = None
    try:
        main = is_main_process()
        task = task_class(cfg.task.name)(cfg)
        identity = job_identity(cfg, hydra_cfg, task)
        if main:  # first, so that a job failing validation is still listed as failed
            results = Results(run_dir, {
                "run": identity["name"], "task": task.name, "method": cfg.method.name, **task.header(),
                "model": cfg.model.name, "decoding": cfg.decoding.name, "seed": cfg.seed,
                "experiment": cfg.experiment_name, "stages": list(cfg.stages), "output_dir": str(run_dir),
            })
        validate(cfg)
        if main:
            tracker = start_tracker(cfg, run_dir, **identity)
        run_stages(cfg, run_dir, tracker, results)
    except BaseException as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if results is not None:
            results.finish("failed", f"{type(exc).__name__}: {message}")
        tracker.finish(exit_code=1)
        if isinstance(exc, ConfigError):
            log.error("error: %s", message)
            if hydra_cfg.mode == RunMode.RUN:
                print(f"error: {message}", file=sys.stderr)
                _exit_code = 2
                return "failed"
        raise
    if results is not None:
        results.finish("completed")
        log.info("results: %s", results.path)
    tracker.finish(exit_code=0)
    return "completed"


register_configs()
_hydra_main = hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")(run_job)


def main() -> None:
    _hydra_main()
    if _exit_code:
        sys.exit(_exit_code)


if __name__ == "__main__":
    main()
