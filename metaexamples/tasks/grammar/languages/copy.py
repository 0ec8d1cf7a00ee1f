"""copy: ww, a string followed by an exact copy of itself (context-sensitive, not context-free).

Lengths are even; every symbol of the first half is repeated, in order, by the second.
"""

from __future__ import annotations

import random
from typing import Sequence

from metaexamples.errors import ConfigError
from metaexamples.tasks.grammar.languages.base import Language, String


class Copy(Language):
    name = "copy"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.valid_lengths():
            raise ConfigError(f"grammar.max_len: copy needs an even length in [{self.min_len}, {self.max_len}]")

    def valid_lengths(self) -> list[int]:
        return [n for n in range(self.min_len, self.max_len + 1) if n % 2 == 0]

    def is_valid(self, s: Sequence[int]) -> bool:
        s, half = tuple(s), len(s) // 2
        return (self.min_len <= len(s) <= self.max_len and len(s) % 2 == 0 and self.in_alphabet(s)
                and s[:half] == s[half:])

    def sample_valid(self, rng: random.Random, length: int | None = None) -> String:
        n = self.sample_length(rng) if length is None else length
        half = tuple(rng.choices(self.alphabet, k=n // 2))
        return half + half

    def completable(self, prefix: Sequence[int]) -> bool:
        # Some valid length n >= len(prefix) whose second half agrees with the first wherever
        # both positions already fall inside the prefix (the rest is free).
        p, k = tuple(prefix), len(prefix)
        if not self.in_alphabet(p):
            return False
        return any(all(p[i] == p[i + n // 2] for i in range(k - n // 2))
                   for n in self.valid_lengths() if n >= k)

    def allowed_next(self, prefix: Sequence[int]) -> set[int]:
        return self.allowed_by_completion(prefix, self.completable)
