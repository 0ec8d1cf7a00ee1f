"""Grammar registry: every module in this package that defines a `Language` subclass with a
`name` is registered automatically, so a new language is one file here plus one YAML in
conf/grammar/ (its `language` key names the class; its `name` is the preset's label)."""

from __future__ import annotations

from metaexamples.registry import Registry
from metaexamples.tasks.grammar.languages.base import END, Language

REGISTRY = Registry(Language, __name__, "grammar.language", "language", skip=("base",))


def available() -> list[str]:
    return REGISTRY.available()


def make_language(grammar_cfg, num_symbols: int) -> Language:
    """Build the language class named by grammar config `language` (min_len, max_len,
    length_dist, params); `name` is the preset's label, not a class."""
    return REGISTRY.get(grammar_cfg["language"])(
        num_symbols=num_symbols,
        min_len=int(grammar_cfg["min_len"]),
        max_len=int(grammar_cfg["max_len"]),
        length_dist=grammar_cfg.get("length_dist", "uniform"),
        **dict(grammar_cfg.get("params") or {}),
    )


__all__ = ["END", "Language", "available", "make_language"]
