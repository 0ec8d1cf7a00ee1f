"""Grammar registry: every module in this package that defines a `Language` subclass with a
`name` is registered automatically, so a new language is one file here plus one YAML in
conf/grammar/."""

from __future__ import annotations

import importlib
import pkgutil

from metaexamples.errors import ConfigError
from metaexamples.tasks.grammar.languages.base import END, Language

_REGISTRY: dict[str, type[Language]] = {}


def _discover() -> None:
    if _REGISTRY:
        return
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base":
            importlib.import_module(f"{__name__}.{mod.name}")
    for cls in _all_subclasses(Language):
        if cls.name:
            _REGISTRY[cls.name] = cls


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def available() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def make_language(grammar_cfg, num_symbols: int) -> Language:
    """Build the language named by grammar config `name` (min_len, max_len, length_dist, params)."""
    _discover()
    name = grammar_cfg["name"]
    if name not in _REGISTRY:
        raise ConfigError(f"grammar.name: unknown grammar {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name](
        num_symbols=num_symbols,
        min_len=int(grammar_cfg["min_len"]),
        max_len=int(grammar_cfg["max_len"]),
        length_dist=grammar_cfg.get("length_dist", "uniform"),
        **dict(grammar_cfg.get("params") or {}),
    )


__all__ = ["END", "Language", "available", "make_language"]
