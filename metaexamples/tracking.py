"""Run tracking: W&B (offline by default, online, or off) behind one small interface.

Stages only call `log`, `summary`, `table` and `image`; which backend is behind it, and that
only the main process logs, is decided here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

from metaexamples.network import reachable

log = logging.getLogger(__name__)


class Tracker:
    """No-op tracker: the interface every stage talks to (also used by tests and non-main ranks)."""

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Namespaced scalars, e.g. {"train/loss": 2.1}."""

    def summary(self, values: dict[str, Any]) -> None:
        """Final values (the report's table fields), e.g. {"ppl/auroc": 0.99}."""

    def table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A table of rows, e.g. generated samples with their verdicts."""

    def image(self, name: str, path: str | Path) -> None:
        """A PNG plot, e.g. the ROC curve."""

    def finish(self, exit_code: int = 0) -> None:
        pass


class WandbTracker(Tracker):
    """One W&B run per job; files live inside the job's output folder."""

    def __init__(self, run) -> None:
        self.run = run

    def log(self, metrics, step=None):
        self.run.log(dict(metrics), step=step)

    def summary(self, values):
        self.run.summary.update(dict(values))

    def table(self, name, columns, rows):
        import wandb

        self.run.log({name: wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

    def image(self, name, path):
        import wandb

        self.run.log({name: wandb.Image(str(path))})

    def finish(self, exit_code: int = 0):
        self.run.finish(exit_code=exit_code)


def flatten(prefix: str, value) -> dict:
    """{"gen": {"failures": {"rule": 3}}} -> {"gen/failures/rule": 3}: scalars only."""
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            out.update(flatten(f"{prefix}/{key}", sub))
        return out
    return {prefix: value} if isinstance(value, (int, float, str, bool)) or value is None else {}


def _wandb_reachable(timeout: float = 3.0) -> bool:
    """A fast check that an online run can start (an API key and the server answering)."""
    has_key = bool(os.environ.get("WANDB_API_KEY")) or _netrc_has_wandb()
    return has_key and reachable(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"), timeout)


def _netrc_has_wandb() -> bool:
    import netrc

    try:
        return any("wandb" in host for host in netrc.netrc().hosts)
    except (OSError, netrc.NetrcParseError):
        return False


def start_tracker(cfg, run_dir: Path, *, name: str, group: str | None, job_type: str,
                  tags: list[str]) -> Tracker:
    """Start this job's W&B run (or the no-op tracker for logger=none).

    Online with no key or no network falls back to offline with a warning, losing nothing:
    the offline run can be synced later with `wandb sync`.
    """
    if cfg.logger.backend == "none":
        return Tracker()
    import wandb
    from omegaconf import OmegaConf

    mode = cfg.logger.mode
    if mode == "online" and not _wandb_reachable():
        log.warning("W&B online needs an API key and network; none usable, logging offline "
                    "instead (sync later with `wandb sync %s/wandb/offline-run-*`)", run_dir)
        mode = "offline"
    run_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        group=group,
        name=name,
        job_type=job_type,
        tags=tags,
        config=OmegaConf.to_container(cfg, resolve=True),
        dir=str(run_dir),
        mode=mode,
        reinit="finish_previous",  # same-process multirun: never log into the previous job's run
        settings=wandb.Settings(init_timeout=60, console="off", silent=True),
    )
    return WandbTracker(run)
