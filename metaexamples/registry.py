"""One registry pattern for everything pluggable (tasks, methods, grammars): every module of a
package is imported once, and each subclass of a base class that sets `name` is registered
under it. A new task, method or grammar is therefore one module plus its YAML, no list to edit."""

from __future__ import annotations

import importlib
import pkgutil

from metaexamples.errors import ConfigError


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


class Registry:
    def __init__(self, base: type, package: str, key: str, what: str, skip: tuple[str, ...] = ()) -> None:
        self.base, self.package, self.key, self.what, self.skip = base, package, key, what, skip
        self._classes: dict[str, type] = {}

    def _discover(self) -> None:
        if self._classes:
            return
        module = importlib.import_module(self.package)
        for mod in pkgutil.iter_modules(module.__path__):
            if mod.name not in self.skip:
                importlib.import_module(f"{self.package}.{mod.name}")
        for cls in _all_subclasses(self.base):
            if getattr(cls, "name", ""):
                self._classes[cls.name] = cls

    def available(self) -> list[str]:
        self._discover()
        return sorted(self._classes)

    def get(self, name: str) -> type:
        self._discover()
        if name not in self._classes:
            raise ConfigError(f"{self.key}: unknown {self.what} {name!r}; available: {', '.join(self.available())}")
        return self._classes[name]
