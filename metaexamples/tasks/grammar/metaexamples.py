"""Metaexamples: items *about* the language rather than of it (DESIGN.md, Definitions).

- judgment: `<g2> s </g2> is valid.` (or `is invalid.`)
- contrast: `<g2> s </g2> is valid, but <g2> s' </g2> is invalid.` (s' a minimal edit of s)
- rule:     `Rule: <grammar.rule>. Example: <g2> s </g2>`

The training items of a condition fill the same synthetic token budget in every condition
(`token_budget`), so conditions differ only in composition.
"""

from __future__ import annotations

import random
from typing import Callable

from metaexamples.tasks.grammar.items import ItemIds
from metaexamples.errors import ConfigError
from metaexamples.tasks.grammar.languages.base import Language, String

KINDS = ("judgment", "contrast", "rule")
VALID, INVALID = " is valid.", " is invalid."


def token_budget(lang: Language, item_ids: ItemIds, n_items: int) -> int:
    """Synthetic tokens of `n_items` plain examples at the expected string length."""
    lengths, weights = lang.valid_lengths(), lang.length_weights()
    mean_len = sum(n * w for n, w in zip(lengths, weights)) / sum(weights)
    tags = len(item_ids.tags.open_ids) + len(item_ids.tags.close_ids)
    return round(n_items * (mean_len + tags))


class MetaBuilder:
    """Builds train rows. `valid()` and `negative(s)` draw strings that avoid held-out ones."""

    def __init__(self, lang: Language, item_ids: ItemIds, rule: str, meta_kinds: dict,
                 valid: Callable[[random.Random], String],
                 negative: Callable[[String, random.Random], String]) -> None:
        self.lang, self.ids, self.rule = lang, item_ids, rule.strip().rstrip(".")
        self.kinds = [k for k in KINDS if float(meta_kinds.get(k, 0)) > 0]
        self.weights = [float(meta_kinds[k]) for k in self.kinds]
        self.valid, self.negative = valid, negative

    def check(self, meta_fraction: float) -> None:
        if meta_fraction > 0 and not self.kinds:
            raise ConfigError("condition.meta_kinds: all weights are 0 but condition.meta_fraction > 0")
        if meta_fraction > 0 and "rule" in self.kinds and not self.rule:
            raise ConfigError("grammar.rule: empty, but `rule` metaexamples need a one-line rule")

    def example(self, rng: random.Random) -> dict:
        s = self.valid(rng)
        return {"kind": "example", "symbols": list(s), "input_ids": self.ids.wrapped(s)}

    def meta(self, rng: random.Random) -> dict:
        kind = rng.choices(self.kinds, weights=self.weights)[0]
        ids = self.ids
        if kind == "judgment":
            s = self.valid(rng)
            ok = rng.random() < 0.5
            if not ok:
                s = self.negative(s, rng)
            strings, verdicts = [s], [ok]
            input_ids = ids.wrapped(s) + ids.text(VALID if ok else INVALID)
        elif kind == "contrast":
            s = self.valid(rng)
            t = self.negative(s, rng)
            strings, verdicts = [s, t], [True, False]
            input_ids = ids.wrapped(s) + ids.text(" is valid, but") + ids.text(" ") + ids.wrapped(t) + ids.text(INVALID)
        else:
            s = self.valid(rng)
            strings, verdicts = [s], [True]
            input_ids = ids.text(f"Rule: {self.rule}. Example:") + ids.text(" ") + ids.wrapped(s)
        return {"kind": kind, "input_ids": input_ids, "strings": [list(x) for x in strings], "verdicts": verdicts}

    def train_items(self, rng: random.Random, budget: int, meta_fraction: float) -> list[dict]:
        """Items until `budget` tokens; exactly every 1/meta_fraction-th item is a metaexample
        (a Bresenham schedule, so the share is exact rather than noisy)."""
        rows, tokens, i = [], 0, 0
        while tokens < budget:
            is_meta = int((i + 1) * meta_fraction) > int(i * meta_fraction)
            row = self.meta(rng) if is_meta else self.example(rng)
            rows.append(row)
            tokens += len(row["input_ids"])
            i += 1
        return rows
