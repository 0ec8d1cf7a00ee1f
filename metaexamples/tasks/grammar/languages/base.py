"""The interface every language implements, over symbol indices 0..num_symbols-1.

Strings are tuples of ints (indices into the alphabet chosen by `metaexamples.tasks.grammar.symbols`); the
mapping to token ids happens in `metaexamples.tasks.grammar.items`. `allowed_next` is what
grammar-constrained decoding uses, so it must be exact: every symbol it allows can still be
completed into a valid string within `max_len`, and END is allowed iff the prefix is valid.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from itertools import accumulate
from typing import Any, Mapping, Sequence

from metaexamples.errors import ConfigError

END = -1  # the "stop here" choice of allowed_next
EDIT_KINDS = ("substitution", "insertion", "deletion")

String = tuple[int, ...]


class Language(ABC):
    """A formal language over `num_symbols` symbols with lengths in [min_len, max_len]."""

    name: str = ""
    # allowed_next is exact (decoding=grammar yields only valid strings); a language whose
    # constraint can only approximate sets False and decoding=grammar is refused for it.
    exact_constraint: bool = True

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
        # Same draw as rng.choices(lengths, weights=...), with the cumulative weights computed once.
        if getattr(self, "_length_table", None) is None:
            self._length_table = self._checked_length_table()
        lengths, cum = self._length_table
        return rng.choices(lengths, cum_weights=cum)[0]

    # --- helpers shared by the grammars (added for the data stage) --------------------
    def _checked_length_table(self) -> tuple[list[int], list[float]]:
        try:
            weights = self.length_weights()
        except (ValueError, TypeError) as exc:
            raise ConfigError(str(exc).splitlines()[0]) from None
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"grammar.length_dist: needs non-negative weights and some weight on a valid "
                              f"{self.name} length ({self.valid_lengths()})")
        return self.valid_lengths(), list(accumulate(weights))

    @property
    def alphabet(self) -> range:
        """The symbols the language uses (a language may use only some of the alphabet)."""
        return range(self.num_symbols)

    def in_alphabet(self, s: Sequence[int]) -> bool:
        return all(0 <= x < self.num_symbols for x in s)

    def allowed_by_completion(self, prefix: Sequence[int], completable) -> set[int]:
        """allowed_next from a predicate `completable(p)`: some valid string of length <=
        max_len starts with p. Exact as long as the predicate is."""
        prefix = tuple(prefix)
        allowed = {a for a in self.alphabet if completable(prefix + (a,))}
        if self.is_valid(prefix):
            allowed.add(END)
        return allowed

    def hard_negative(self, s: Sequence[int], rng: random.Random, kind: str | None = None,
                      num_foreign: int = 0, tries: int = 16) -> tuple[String, dict]:
        """A minimal edit of the valid string `s` that leaves the language.

        `kind` (substitution, insertion or deletion; random if None) fixes the length change
        (0, +1, -1), so callers can length-match negatives. Rejection-sampled: first one edit
        within the alphabet, then that edit plus one substitution; if the language cannot be
        left that way (g1: every same-length string over the alphabet is valid), the edit
        uses a foreign symbol (index >= num_symbols; `num_foreign` of them exist).
        Returns (negative, {"how": kind, "edit_distance": Levenshtein distance to s}).
        """
        s = tuple(s)
        kind = kind or rng.choice([k for k in EDIT_KINDS if k != "deletion" or s])
        if kind == "deletion" and not s:
            raise ValueError("cannot delete from an empty string")
        alphabet = list(self.alphabet)
        for extra in (0, 1):
            for _ in range(tries):
                t = _edit(s, kind, rng, alphabet)
                if extra and t:
                    t = _edit(t, "substitution", rng, alphabet)
                if not self.is_valid(t):
                    return t, {"how": kind, "edit_distance": _small_distance(s, t)}
        if num_foreign <= 0:
            raise ValueError(f"no {kind} of {s} leaves {self.name} without foreign symbols")
        foreign = list(range(self.num_symbols, self.num_symbols + num_foreign))
        t = _edit(s, kind, rng, foreign)
        if kind == "deletion":  # a deletion alone stayed inside: add one foreign substitution
            t = _edit(t, "substitution", rng, foreign) if t else t
        return t, {"how": kind, "edit_distance": _small_distance(s, t)}

    def random_negative(self, rng: random.Random, length: int, num_foreign: int = 0,
                        tries: int = 16) -> String:
        """A random invalid string of `length` (uniform over the alphabet, rejection-sampled;
        one foreign symbol if the alphabet alone cannot leave the language)."""
        alphabet = list(self.alphabet)
        for _ in range(tries):
            t = tuple(rng.choices(alphabet, k=length))
            if not self.is_valid(t):
                return t
        if num_foreign <= 0 or length == 0:
            raise ValueError(f"no random string of length {length} leaves {self.name}")
        return _edit(t, "substitution", rng, list(range(self.num_symbols, self.num_symbols + num_foreign)))


def _small_distance(s: String, t: String) -> int:
    """Levenshtein distance of t != s made by at most two edits: 1 or 2, in linear time."""
    if len(s) == len(t):
        return 1 if sum(a != b for a, b in zip(s, t)) == 1 else 2
    short, long_ = (s, t) if len(s) < len(t) else (t, s)
    if len(long_) - len(short) != 1:
        return 2
    i = next((k for k, (a, b) in enumerate(zip(short, long_)) if a != b), len(short))
    return 1 if short[i:] == long_[i + 1:] else 2


def _edit(s: String, kind: str, rng: random.Random, symbols: list[int]) -> String:
    """One edit of `kind`, with the new symbol (if any) drawn from `symbols` and different
    from the one it replaces."""
    if kind == "deletion":
        i = rng.randrange(len(s))
        return s[:i] + s[i + 1:]
    if kind == "insertion":
        i = rng.randrange(len(s) + 1)
        return s[:i] + (rng.choice(symbols),) + s[i:]
    i = rng.randrange(len(s))
    choices = [a for a in symbols if a != s[i]] or symbols
    return s[:i] + (rng.choice(choices),) + s[i + 1:]
