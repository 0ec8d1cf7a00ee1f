"""dyck: balanced brackets of two kinds over four of the symbols: 0 ( 1 ) 2 [ 3 ].

Proof that a new language is one file here plus one YAML in conf/grammar/.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Sequence

from metaexamples.errors import ConfigError
from metaexamples.tasks.grammar.languages.base import Language, String

OPEN = {0: 1, 2: 3}  # opening symbol -> its closing symbol


class Dyck(Language):
    name = "dyck"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.num_symbols < 4:
            raise ConfigError(f"data.num_symbols: dyck needs 4 symbols, got {self.num_symbols}")
        if not self.valid_lengths():
            raise ConfigError(f"grammar.max_len: dyck needs an even length in [{self.min_len}, {self.max_len}]")

    @property
    def alphabet(self) -> range:
        return range(4)

    def valid_lengths(self) -> list[int]:
        return [n for n in range(self.min_len, self.max_len + 1) if n % 2 == 0]

    def _depth(self, s: Sequence[int]) -> int | None:
        """Open brackets left after reading s, or None if s is not a prefix of any Dyck word."""
        stack = []
        for x in s:
            if x in OPEN:
                stack.append(OPEN[x])
            elif x in (1, 3) and stack and stack[-1] == x:
                stack.pop()
            else:
                return None
        return len(stack)

    def is_valid(self, s: Sequence[int]) -> bool:
        return self.min_len <= len(s) <= self.max_len and self._depth(s) == 0

    def completable(self, prefix: Sequence[int]) -> bool:
        depth = self._depth(prefix)
        if depth is None:
            return False
        shortest = max(len(prefix) + depth, self.min_len)  # len + depth is always even
        shortest += shortest % 2
        return shortest <= self.max_len

    def allowed_next(self, prefix: Sequence[int]) -> set[int]:
        return self.allowed_by_completion(prefix, self.completable)

    def sample_valid(self, rng: random.Random, length: int | None = None) -> String:
        # Uniform over Dyck words of length n: each step is weighted by how many words
        # complete it (closing: the matching bracket; opening: either kind).
        n = self.sample_length(rng) if length is None else length
        out, stack = [], []
        for pos in range(n):
            d = len(stack)
            w_close = _completions(n - pos - 1, d - 1) if d else 0
            w_open = 2 * _completions(n - pos - 1, d + 1)
            if rng.random() * (w_open + w_close) < w_close:
                out.append(stack.pop())
            else:
                sym = rng.choice((0, 2))
                out.append(sym)
                stack.append(OPEN[sym])
        return tuple(out)


@lru_cache(maxsize=None)
def _completions(remaining: int, depth: int) -> int:
    """Number of two-kind bracket continuations of `remaining` symbols closing `depth` opens."""
    if depth < 0 or depth > remaining:
        return 0
    if remaining == 0:
        return 1
    return _completions(remaining - 1, depth - 1) + 2 * _completions(remaining - 1, depth + 1)
