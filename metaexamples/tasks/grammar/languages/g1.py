"""g1: any non-empty sequence over the alphabet with length in [min_len, max_len]."""

from __future__ import annotations

import random
from typing import Sequence

from metaexamples.tasks.grammar.languages.base import Language, String


class G1(Language):
    name = "g1"

    def is_valid(self, s: Sequence[int]) -> bool:
        return self.min_len <= len(s) <= self.max_len and self.in_alphabet(s)

    def sample_valid(self, rng: random.Random, length: int | None = None) -> String:
        n = self.sample_length(rng) if length is None else length
        return tuple(rng.choices(self.alphabet, k=n))

    def completable(self, prefix: Sequence[int]) -> bool:
        return len(prefix) <= self.max_len and self.in_alphabet(prefix)

    def allowed_next(self, prefix: Sequence[int]) -> set[int]:
        return self.allowed_by_completion(prefix, self.completable)
