"""Token ids of synthetic items, built directly from symbol ids and the tags' ids.

One token per symbol, always: joining symbol texts and re-tokenizing could merge neighbours
into other tokens, so nothing here tokenizes a string that contains symbols.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from metaexamples.errors import ConfigError


@dataclass(frozen=True)
class Tags:
    open: str
    close: str
    open_ids: tuple[int, ...]
    close_ids: tuple[int, ...]

    def as_dict(self) -> dict:
        return {"open": self.open, "close": self.close,
                "open_ids": list(self.open_ids), "close_ids": list(self.close_ids)}


def make_tags(tokenizer, tag: str) -> Tags:
    """`<tag>` and `</tag>`, each tokenized once, on its own."""
    if not tag or any(c.isspace() or c in "<>" for c in tag):
        raise ConfigError(f"grammar.tag: must be a non-empty word without spaces or <>, got {tag!r}")
    open_text, close_text = f"<{tag}>", f"</{tag}>"
    return Tags(open_text, close_text,
                tuple(tokenizer.encode(open_text, add_special_tokens=False)),
                tuple(tokenizer.encode(close_text, add_special_tokens=False)))


class ItemIds:
    """Maps symbol strings (alphabet indices; >= num_symbols = foreign) to token ids."""

    def __init__(self, symbol_ids: Sequence[int], foreign_ids: Sequence[int], tags: Tags, tokenizer) -> None:
        self.table = list(symbol_ids) + list(foreign_ids)
        self.tags = tags
        self.tokenizer = tokenizer
        self._text_cache: dict[str, list[int]] = {}

    def string(self, s: Sequence[int]) -> list[int]:
        table = self.table
        return [table[x] for x in s]

    def wrapped(self, s: Sequence[int]) -> list[int]:
        """<tag> s </tag> as ids."""
        return [*self.tags.open_ids, *self.string(s), *self.tags.close_ids]

    def text(self, text: str) -> list[int]:
        """Natural-language glue (verdicts, rule statements), tokenized once per distinct text."""
        ids = self._text_cache.get(text)
        if ids is None:
            ids = self._text_cache[text] = list(self.tokenizer.encode(text, add_special_tokens=False))
        return ids
