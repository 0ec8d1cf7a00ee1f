"""The interface every language implements, over symbol indices 0..num_symbols-1.

Strings are tuples of ints (indices into the alphabet chosen by `metaexamples.symbols`); the
mapping to token ids happens in `metaexamples.data.items`. `allowed_next` is what
grammar-constrained decoding uses, so it must be exact: every symbol it allows can still be
completed into a valid string within `max_len`, and END is allowed iff the prefix is valid.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, Mapping, Sequence

END = -1  # the "stop here" choice of allowed_next
EDIT_KINDS = ("substitution", "insertion", "deletion")

String = tuple[int, ...]


class Language(ABC):
    """A formal language over `num_symbols` symbols with lengths in [min_len, max_len]."""

    name: str = ""

    def __init__(self, num_symbols: int, min_len: int, max_len: int,
                 length_dist: Any = "uniform", **params: Any) -> None:
        self.num_symbols = num_symbols
        self.min_len = min_len
        self.max_len = max_len
        self.params = dict(params)
        self.length_dist = length_dist

    # --- required -------------------------------------------------------------------
    @abstractmethod
    def is_valid(self, s: Sequence[int]) -> bool:
        """Membership."""

    @abstractmethod
    def sample_valid(self, rng: random.Random, length: int | None = None) -> String:
        """A valid string; its length is drawn from the length distribution if not given."""

    @abstractmethod
    def allowed_next(self, prefix: Sequence[int]) -> set[int]:
        """Symbols (and END) from which a valid string within max_len can still be reached."""

    # --- shared behaviour, overridable -----------------------------------------------
    def valid_lengths(self) -> list[int]:
        """Lengths at which valid strings exist (e.g. even only for some languages)."""
        return list(range(self.min_len, self.max_len + 1))

    def length_weights(self) -> list[float]:
        """Weights over valid_lengths(): uniform, or a {length: weight} map from config."""
        lengths = self.valid_lengths()
        if self.length_dist == "uniform" or self.length_dist is None:
            return [1.0] * len(lengths)
        if isinstance(self.length_dist, Mapping):
            return [float(self.length_dist.get(n, self.length_dist.get(str(n), 0.0))) for n in lengths]
        raise ValueError(f"grammar.length_dist: expected 'uniform' or a map, got {self.length_dist!r}")

    def sample_length(self, rng: random.Random) -> int:
        return rng.choices(self.valid_lengths(), weights=self.length_weights())[0]
