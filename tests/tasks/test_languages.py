"""Property tests for every registered grammar: sampling, hard negatives, allowed_next."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaexamples.errors import ConfigError
from metaexamples.sequence_distance import edit_distance
from metaexamples.tasks.grammar.languages import END, available, make_language
from metaexamples.tasks.grammar.languages.base import EDIT_KINDS

GRAMMARS = available()
PROPS = settings(max_examples=60, deadline=None)


def lang_for(name: str, min_len: int = 4, max_len: int = 12, num_symbols: int = 5, **extra):
    return make_language({"language": name, "min_len": min_len, "max_len": max_len, **extra}, num_symbols)


def test_registry_has_the_grammars():
    assert {"g1", "g2", "g3", "dyck", "copy", "anbncn"} <= set(GRAMMARS)


@pytest.mark.parametrize("name", GRAMMARS)
@PROPS
@given(seed=st.integers(0, 2**32), min_len=st.integers(1, 6), extra=st.integers(0, 10))
def test_valid_samples_are_valid(name, seed, min_len, extra):
    lang = lang_for(name, min_len=min_len, max_len=min_len + 2 + extra)  # always holds an even length and a multiple of 3
    rng = random.Random(seed)
    for _ in range(20):
        s = lang.sample_valid(rng)
        assert lang.is_valid(s), s
        assert lang.min_len <= len(s) <= lang.max_len
        assert len(s) in lang.valid_lengths()


@pytest.mark.parametrize("name", GRAMMARS)
@PROPS
@given(seed=st.integers(0, 2**32), kind=st.sampled_from(EDIT_KINDS + (None,)))
def test_hard_negatives_are_invalid_minimal_edits(name, seed, kind):
    lang = lang_for(name)
    rng = random.Random(seed)
    s = lang.sample_valid(rng)
    neg, info = lang.hard_negative(s, rng, kind=kind, num_foreign=3)
    assert not lang.is_valid(neg)
    assert 1 <= edit_distance(s, neg) <= 2
    assert info["edit_distance"] == edit_distance(s, neg)
    assert info["how"] in EDIT_KINDS and (kind is None or info["how"] == kind)
    # the kind fixes the length change, which is what length-matching relies on
    assert len(neg) - len(s) == {"substitution": 0, "insertion": 1, "deletion": -1}[info["how"]]


@pytest.mark.parametrize("name", GRAMMARS)
@PROPS
@given(seed=st.integers(0, 2**32), length=st.integers(4, 12))
def test_random_negatives_are_invalid(name, seed, length):
    lang = lang_for(name)
    neg = lang.random_negative(random.Random(seed), length, num_foreign=2)
    assert len(neg) == length and not lang.is_valid(neg)


@pytest.mark.parametrize("name", GRAMMARS)
@PROPS
@given(seed=st.integers(0, 2**32), max_len=st.integers(4, 14))
def test_walk_following_allowed_next_ends_valid(name, seed, max_len):
    lang = lang_for(name, min_len=2, max_len=max_len)
    rng = random.Random(seed)
    prefix: tuple[int, ...] = ()
    while True:
        allowed = lang.allowed_next(prefix)
        assert allowed, f"dead end after {prefix}"
        choice = rng.choice(sorted(allowed))
        if choice == END:
            break
        prefix += (choice,)
        assert len(prefix) <= lang.max_len
    assert lang.is_valid(prefix)


@pytest.mark.parametrize("name", GRAMMARS)
def test_allowed_next_is_exact(name):
    """Against brute force: a symbol is allowed iff some valid string within max_len extends
    prefix + symbol; END iff the prefix is valid."""
    k = 4 if name == "dyck" else 3
    lang = lang_for(name, min_len=2, max_len=6, num_symbols=k)
    valid = [s for n in range(7) for s in itertools.product(range(k), repeat=n) if lang.is_valid(s)]
    prefixes = {s[:i] for s in valid for i in range(len(s) + 1)}
    for n in range(6):
        for p in itertools.product(range(k), repeat=n):
            expected = {a for a in range(k) if p + (a,) in prefixes} | ({END} if lang.is_valid(p) else set())
            assert lang.allowed_next(p) == expected, p


@pytest.mark.parametrize("name", GRAMMARS)
def test_foreign_symbols_are_never_valid(name):
    lang = lang_for(name)
    s = lang.sample_valid(random.Random(0))
    assert not lang.is_valid(s[:-1] + (lang.num_symbols,))
    assert END not in lang.allowed_next((lang.num_symbols,)) and not lang.allowed_next((lang.num_symbols,))


def test_membership_examples():
    g2, g3, dyck = lang_for("g2"), lang_for("g3"), lang_for("dyck")
    assert g2.is_valid((1, 2, 1, 2)) and not g2.is_valid((1, 2, 1, 1))
    assert g3.is_valid((1, 2, 3, 2, 1)) and not g3.is_valid((1, 2, 3, 1, 2))
    assert dyck.is_valid((0, 2, 3, 1)) and not dyck.is_valid((0, 2, 1, 3)) and not dyck.is_valid((0, 1, 4, 4))
    assert not lang_for("g1").is_valid((0, 1, 2))  # below min_len
    copy, abc = lang_for("copy"), lang_for("anbncn")
    assert copy.is_valid((1, 4, 2, 1, 4, 2)) and not copy.is_valid((1, 4, 2, 2, 4, 1))
    assert abc.is_valid((0, 3, 1, 4, 2, 2)) and not abc.is_valid((0, 1, 4, 2, 2, 2)) and not abc.is_valid((1, 0, 2))


def test_length_distribution_is_configurable():
    lang = lang_for("g1", length_dist={5: 1.0, "7": 3.0})
    rng = random.Random(0)
    lengths = [len(lang.sample_valid(rng)) for _ in range(400)]
    assert set(lengths) == {5, 7} and lengths.count(7) > 2 * lengths.count(5)


def test_bad_language_parameters():
    with pytest.raises(ConfigError, match="data.num_symbols"):
        lang_for("dyck", num_symbols=3)
    with pytest.raises(ConfigError, match="grammar.max_len"):
        lang_for("g2", min_len=5, max_len=5)
    with pytest.raises(ConfigError, match="grammar.language"):
        lang_for("nope")
    with pytest.raises(ConfigError, match="grammar.max_len"):
        lang_for("anbncn", min_len=4, max_len=5)
    with pytest.raises(ConfigError, match="data.num_symbols"):
        lang_for("anbncn", num_symbols=2)


# --- the context-sensitive languages against recognizers written here, independently -------
def copy_recognizer(s, k, lo, hi):
    s = list(s)
    return lo <= len(s) <= hi and all(0 <= x < k for x in s) and len(s) % 2 == 0 and s == s[:len(s) // 2] * 2


def anbncn_recognizer(s, k, lo, hi):
    if not (lo <= len(s) <= hi and all(0 <= x < k for x in s)):
        return False
    m = re.fullmatch(r"(a+)(b+)(c+)", "".join("abc"[x % 3] for x in s))
    return bool(m) and len(m.group(1)) == len(m.group(2)) == len(m.group(3))


RECOGNIZERS = {"copy": copy_recognizer, "anbncn": anbncn_recognizer}


@pytest.mark.parametrize("name", sorted(RECOGNIZERS))
def test_context_sensitive_membership_matches_an_independent_recognizer(name):
    """Every string over 5 symbols (plus one foreign) up to length 7, and sampled longer ones."""
    lang, check = lang_for(name, min_len=2, max_len=7), RECOGNIZERS[name]
    for n in range(8):
        for s in itertools.product(range(6), repeat=n) if n <= 5 else itertools.product(range(5), repeat=n):
            assert lang.is_valid(s) == check(s, 5, 2, 7), s
    rng = random.Random(0)
    long_lang = lang_for(name, min_len=17, max_len=64)
    for _ in range(300):
        s = long_lang.sample_valid(rng)
        neg, _ = long_lang.hard_negative(s, rng, num_foreign=3)
        assert check(s, 5, 17, 64) and not check(neg, 5, 17, 64)
        assert long_lang.is_valid(s) and not long_lang.is_valid(neg)


@pytest.mark.parametrize("dist", [{5: 1.0}, {4: -1.0, 6: 2.0}, "zipf"])
def test_bad_length_distribution(dist):
    with pytest.raises(ConfigError, match="grammar.length_dist"):
        lang_for("g2", length_dist=dist).sample_valid(random.Random(0))
