"""Methods: how a model is trained on a task (the `method` config group).

A method is one module here with a `Method` subclass that sets `name`, plus one YAML in
conf/method/. `train(cfg, task, run_dir, tracker)` returns results.json's `train` section.
Every method works with every task that provides what it needs (`sft` needs the task's
supervised data; the verifier-driven methods need a `tasks.VerifiedTask`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from metaexamples.errors import ConfigError
from metaexamples.registry import Registry
from metaexamples.tasks import VerifiedTask


class Method:
    name: ClassVar[str] = ""
    needs_verifier: ClassVar[bool] = False
    trains_by_epochs: ClassVar[bool] = False  # train.epochs (passes over a fixed training set) applies
    config_schema: ClassVar[type | None] = None  # dataclass of the method's keys (method.*); None = name only
    # the method's key figures in the summary a run ends with: (label, dotted results.json key)
    summary_keys: ClassVar[list[tuple[str, str]]] = []

    @classmethod
    def check_config(cls, cfg, task_cls) -> None:
        """Before any stage runs: refuse, with one line naming the key, a setting out of range
        or a task (class) this method cannot use."""
        if cls.needs_verifier and not issubclass(task_cls, VerifiedTask):
            raise ConfigError(f"method.name: {cls.name} needs a verifier and task={task_cls.name} has none")

    @classmethod
    def check_run_dir(cls, cfg, run_dir: Path) -> None:
        """Before any stage: refuse, in one line naming the differing keys, to continue a run
        folder this method filled under another config (checkpoints are checked for every
        method by the CLI; a method with its own resumable files checks them here)."""

    def check(self, cfg, task) -> None:
        """At train time, with the task's data loaded: what needs the data to decide."""

    def train(self, cfg, task, run_dir: Path, tracker) -> dict:
        raise NotImplementedError

    @classmethod
    def report_plots(cls, rows: list[dict], out_dir: Path) -> list[str]:
        """Draw this method's sweep plots from its jobs' results.json rows; return file names."""
        return []

    @classmethod
    def report_tables(cls) -> list:
        """This method's sweep-report tables (tasks.ReportTable), beside the task's."""
        return []


REGISTRY = Registry(Method, __name__, "method.name", "method")


def available() -> list[str]:
    return REGISTRY.available()


def method_class(name: str) -> type[Method]:
    return REGISTRY.get(name)


def make_method(name: str) -> Method:
    return method_class(name)()


__all__ = ["Method", "available", "make_method", "method_class"]
