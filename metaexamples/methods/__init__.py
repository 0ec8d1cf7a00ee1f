"""Methods: how a model is trained on a task (the `method` config group).

A method is one module here with a `Method` subclass that sets `name`, plus one YAML in
conf/method/. `train(cfg, task, run_dir, tracker)` returns results.json's `train` section.
Every method works with every task that provides what it needs (`sft` needs the task's
supervised data; the verifier-driven methods need `task.has_verifier`).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import ClassVar

from metaexamples.errors import ConfigError


class Method:
    name: ClassVar[str] = ""
    needs_verifier: ClassVar[bool] = False
    config_schema: ClassVar[type | None] = None  # dataclass of the method's keys (method.*); None = name only

    def check(self, cfg, task) -> None:
        """Refuse, with one line naming the key, a task or setting this method cannot use."""
        if self.needs_verifier and not task.has_verifier:
            raise ConfigError(f"method={self.name}: task={task.name} has no verifier to train on")

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


_REGISTRY: dict[str, type[Method]] = {}


def _discover() -> None:
    if _REGISTRY:
        return
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    for cls in Method.__subclasses__():
        if cls.name:
            _REGISTRY[cls.name] = cls


def available() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Method]:
    _discover()
    if name not in _REGISTRY:
        raise ConfigError(f"method.name: unknown method {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def make_method(name: str) -> Method:
    return method_class(name)()


__all__ = ["Method", "available", "make_method", "method_class"]
