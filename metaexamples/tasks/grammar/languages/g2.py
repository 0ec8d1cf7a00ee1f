"""g2: a g1 string in which every symbol occurs an even number of times (so lengths are even)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Sequence

from metaexamples.errors import ConfigError
from metaexamples.tasks.grammar.languages.base import Language, String


class G2(Language):
    name = "g2"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.valid_lengths():
            raise ConfigError(f"grammar.max_len: g2 needs an even length in [{self.min_len}, {self.max_len}]")

    def valid_lengths(self) -> list[int]:
        return [n for n in range(self.min_len, self.max_len + 1) if n % 2 == 0]

    def is_valid(self, s: Sequence[int]) -> bool:
        return (self.min_len <= len(s) <= self.max_len and self.in_alphabet(s)
                and all(c % 2 == 0 for c in Counter(s).values()))

    def sample_valid(self, rng: random.Random, length: int | None = None) -> String:
        # Draw half the symbols, use each twice and shuffle: even counts by construction.
        n = self.sample_length(rng) if length is None else length
        s = rng.choices(self.alphabet, k=n // 2) * 2
        rng.shuffle(s)
        return tuple(s)

    def completable(self, prefix: Sequence[int]) -> bool:
        # Each odd-count symbol needs one more occurrence; the shortest completion has length
        # len + odd, which has the parity of an even-count string, and grows by pairs.
        if not self.in_alphabet(prefix):
            return False
        odd = sum(c % 2 for c in Counter(prefix).values())
        shortest = max(len(prefix) + odd, self.min_len)
        shortest += shortest % 2
        return shortest <= self.max_len

    def allowed_next(self, prefix: Sequence[int]) -> set[int]:
        return self.allowed_by_completion(prefix, self.completable)
