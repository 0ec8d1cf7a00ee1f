"""g3: a palindrome over the alphabet with length in [min_len, max_len]."""

from __future__ import annotations

import random
from typing import Sequence

from metaexamples.tasks.grammar.languages.base import Language, String


class G3(Language):
    name = "g3"

    def is_valid(self, s: Sequence[int]) -> bool:
        s = tuple(s)
        return self.min_len <= len(s) <= self.max_len and self.in_alphabet(s) and s == s[::-1]

    def sample_valid(self, rng: random.Random, length: int | None = None) -> String:
        n = self.sample_length(rng) if length is None else length
        half = rng.choices(self.alphabet, k=(n + 1) // 2)
        return tuple(half + half[: n // 2][::-1])

    def completable(self, prefix: Sequence[int]) -> bool:
        # Some palindrome length n >= len(prefix) must agree with the prefix where its mirror
        # positions fall inside the prefix.
        p = tuple(prefix)
        if not self.in_alphabet(p):
            return False
        k = len(p)
        return any(all(p[i] == p[n - 1 - i] for i in range(n - k, k))
                   for n in range(max(k, self.min_len), self.max_len + 1))

    def allowed_next(self, prefix: Sequence[int]) -> set[int]:
        return self.allowed_by_completion(prefix, self.completable)
