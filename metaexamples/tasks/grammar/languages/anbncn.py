"""anbncn: a^n b^n c^n over the synthetic alphabet (context-sensitive, not context-free).

Symbol i belongs to block class i % 3 (with 5 symbols: a = {0, 3}, b = {1, 4}, c = {2}); a
string is n symbols of class a, then n of class b, then n of class c, n >= 1. With three
symbols this is literally a^n b^n c^n; with more, each block's symbols vary freely, so the
language has enough strings for disjoint training and held-out sets, while mapping every
symbol to its class still gives a^n b^n c^n (so it is not context-free either).
"""

from __future__ import annotations

import random
from typing import Sequence

from metaexamples.errors import ConfigError
from metaexamples.tasks.grammar.languages.base import Language, String

BLOCKS = 3


class AnBnCn(Language):
    name = "anbncn"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.num_symbols < BLOCKS:
            raise ConfigError(f"data.num_symbols: anbncn needs {BLOCKS} symbols, got {self.num_symbols}")
        if not self.valid_lengths():
            raise ConfigError(f"grammar.max_len: anbncn needs a multiple of 3 in [{self.min_len}, {self.max_len}]")

    def valid_lengths(self) -> list[int]:
        return [n for n in range(max(self.min_len, BLOCKS), self.max_len + 1) if n % BLOCKS == 0]

    def block_symbols(self, block: int) -> list[int]:
        return [a for a in self.alphabet if a % BLOCKS == block]

    def _fits(self, p: Sequence[int], n: int) -> bool:
        """p is a prefix of a string with blocks of length n."""
        return all(0 <= x < self.num_symbols and x % BLOCKS == i // n for i, x in enumerate(p))

    def is_valid(self, s: Sequence[int]) -> bool:
        n = len(s) // BLOCKS
        return self.min_len <= len(s) <= self.max_len and len(s) == BLOCKS * n and n > 0 and self._fits(s, n)

    def sample_valid(self, rng: random.Random, length: int | None = None) -> String:
        n = (self.sample_length(rng) if length is None else length) // BLOCKS
        return tuple(rng.choice(self.block_symbols(b)) for b in range(BLOCKS) for _ in range(n))

    def completable(self, prefix: Sequence[int]) -> bool:
        k = len(prefix)
        return any(self._fits(prefix, m // BLOCKS) for m in self.valid_lengths() if m >= k)

    def allowed_next(self, prefix: Sequence[int]) -> set[int]:
        return self.allowed_by_completion(prefix, self.completable)
