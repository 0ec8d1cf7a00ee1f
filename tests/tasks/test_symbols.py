"""Symbol selection on the real SmolLM2 tokenizer."""

from __future__ import annotations

import random
import unicodedata

import pytest

from metaexamples.errors import ConfigError
from metaexamples.tasks.grammar.symbols import check_round_trip, reject_reason, select_symbols


@pytest.fixture(scope="module")
def chosen(tokenizer):
    return select_symbols(tokenizer)


def test_default_alphabet(tokenizer, chosen):
    ids, foreign = chosen["ids"], chosen["foreign_ids"]
    assert len(ids) == 5 and len(foreign) == 3
    assert len(set(ids + foreign)) == 8
    assert ids == sorted(ids, reverse=True) and min(ids) > max(foreign)  # rarest (highest id) first
    assert not set(ids + foreign) & set(tokenizer.all_special_ids)
    assert chosen["tokenizer"] == tokenizer.name_or_path
    assert chosen["tokens"] == [tokenizer.decode([i]) for i in ids]
    assert sum(chosen["rejected"].values()) > 0 and "word_like" in chosen["rejected"]
    for text in chosen["tokens"] + chosen["foreign_tokens"]:
        assert not text.isascii()  # prefer_non_ascii found enough
        assert not any(unicodedata.category(c)[0] in "LNZCM" for c in text)


def test_symbols_round_trip_alone_and_in_any_sequence(tokenizer, chosen):
    table = chosen["ids"] + chosen["foreign_ids"]
    for i in table:
        assert tokenizer.encode(tokenizer.decode([i]), add_special_tokens=False) == [i]
    rng = random.Random(0)
    for _ in range(200):
        seq = rng.choices(table, k=rng.randint(2, 16))
        assert tokenizer.encode(tokenizer.decode(seq), add_special_tokens=False) == seq


def test_ascii_only_when_asked(tokenizer):
    out = select_symbols(tokenizer, prefer_non_ascii=False)
    assert out["ids"] == sorted(out["ids"], reverse=True)
    assert any(t.isascii() for t in out["tokens"])
    check_round_trip(tokenizer, out["ids"])


def test_too_few_qualifying_tokens_is_a_config_error(tokenizer):
    with pytest.raises(ConfigError, match="data.num_symbols.*ascii_fallback"):
        select_symbols(tokenizer, num_symbols=60, ascii_fallback=False)


def test_round_trip_check_rejects_bad_symbols(tokenizer):
    partial = next(i for i in range(len(tokenizer) - 1, 0, -1) if "\ufffd" in tokenizer.decode([i]))
    with pytest.raises(ConfigError, match="data.num_symbols"):
        check_round_trip(tokenizer, [partial])
    hel, lo = (tokenizer.encode(t, add_special_tokens=False) for t in ("Hel", "lo"))
    assert len(hel) == len(lo) == 1
    with pytest.raises(ConfigError, match="data.num_symbols"):  # "Hel" + "lo" re-tokenizes as "Hello"
        check_round_trip(tokenizer, hel + lo)


@pytest.mark.parametrize("text,reason", [
    ("the", "word_like"), (" cat", "whitespace_or_control"), ("42", "digit"), (".", "common_punctuation"),
    ("’;", "common_punctuation"), ("\u0bcd", "combining_mark"), ("", "empty"), ("a\ufffd", "partial_utf8"),
    ("→", None), ("••", None), ("]][", None),
])
def test_reject_reasons(text, reason):
    assert reject_reason(text) == reason
