"""Held-out splits (eval, test_valid, test_invalid) and the strings training must avoid.

Held-out strings are drawn first; training examples and every string inside a metaexample are
then drawn excluding all of them (valid and invalid), so no eval/test string is ever trained on.
Negatives are length-matched: for a target length n the edit kind is chosen among those that
land on n (substitution of a length-n string, insertion into n-1, deletion from n+1).
"""

from __future__ import annotations

import random

from metaexamples.tasks.grammar.items import ItemIds
from metaexamples.errors import ConfigError
from metaexamples.tasks.grammar.languages.base import Language, String

MAX_TRIES = 1000


def sample_excluding(lang: Language, rng: random.Random, held: set, what: str = "train") -> String:
    """A valid string (length drawn too) not in `held`."""
    for _ in range(MAX_TRIES):
        s = lang.sample_valid(rng)
        if s not in held:
            return s
    raise ConfigError(
        f"data.n_test: the held-out strings cover almost all of {lang.name} in "
        f"[{lang.min_len}, {lang.max_len}], so no {what} string can be drawn; lower data.n_test / "
        "data.n_eval or raise grammar.max_len"
    )


def negative_of_length(lang: Language, rng: random.Random, n: int, random_fraction: float,
                       num_foreign: int) -> tuple[String, str, int | None]:
    """An invalid string of length n: random (share `random_fraction`) or a minimal edit."""
    if rng.random() < random_fraction:
        return lang.random_negative(rng, n, num_foreign), "random", None
    lengths = set(lang.valid_lengths())
    options = [(k, m) for k, m in (("substitution", n), ("insertion", n - 1), ("deletion", n + 1)) if m in lengths]
    kind, m = rng.choice(options)
    neg, info = lang.hard_negative(lang.sample_valid(rng, m), rng, kind=kind, num_foreign=num_foreign)
    return neg, info["how"], info["edit_distance"]


def row(s: String, valid: bool, how: str, edit_distance: int | None, item_ids: ItemIds) -> dict:
    return {"symbols": list(s), "ids": item_ids.string(s), "valid": valid, "length": len(s),
            "how": how, "edit_distance": edit_distance}


def valid_rows(lang: Language, rng: random.Random, n: int, item_ids: ItemIds, avoid: set | None = None) -> list[dict]:
    out = []
    for _ in range(n):
        s = lang.sample_valid(rng) if not avoid else sample_excluding(lang, rng, avoid, "eval")
        out.append(row(s, True, "valid", None, item_ids))
    return out


def negative_rows(lang: Language, rng: random.Random, positives: list[dict], item_ids: ItemIds,
                  random_fraction: float, num_foreign: int) -> list[dict]:
    """One length-matched negative per positive row."""
    out = []
    for p in positives:
        s, how, d = negative_of_length(lang, rng, p["length"], random_fraction, num_foreign)
        out.append(row(s, False, how, d, item_ids))
    return out


def held_out_splits(lang: Language, item_ids: ItemIds, rngs, n_eval: int, n_test: int,
                    random_fraction: float, num_foreign: int) -> dict[str, list[dict]]:
    """{"eval": valid + invalid rows, "test_valid": rows, "test_invalid": length-matched rows}.
    `rngs(purpose)` gives an independent, seeded random.Random per purpose."""
    test_valid = valid_rows(lang, rngs("test_valid"), n_test, item_ids)
    test_invalid = negative_rows(lang, rngs("test_invalid"), test_valid, item_ids, random_fraction, num_foreign)
    # eval is disjoint from test too: thresholds chosen on it must not see test strings
    test_strings = {tuple(r["symbols"]) for r in test_valid}
    eval_valid = valid_rows(lang, rngs("eval_valid"), n_eval, item_ids, test_strings)
    eval_invalid = negative_rows(lang, rngs("eval_invalid"), eval_valid, item_ids, random_fraction, num_foreign)
    return {"eval": eval_valid + eval_invalid, "test_valid": test_valid, "test_invalid": test_invalid}


def long_split(bucket_langs: dict[str, Language], item_ids: ItemIds, rngs, n: int, random_fraction: float,
               num_foreign: int) -> list[dict]:
    """test_long: per length bucket (label -> that bucket's language), n valid rows and n
    length-matched negatives built as test_invalid's; each row carries its `bucket`. Its
    strings are longer than any training string, so none can be trained on."""
    out = []
    for label, lang in bucket_langs.items():
        positives = valid_rows(lang, rngs(f"test_long:{label}:valid"), n, item_ids)
        negatives = negative_rows(lang, rngs(f"test_long:{label}:invalid"), positives, item_ids,
                                  random_fraction, num_foreign)
        out += [{**r, "bucket": label} for r in positives + negatives]
    return out


def held_strings(splits: dict[str, list[dict]]) -> set[tuple[int, ...]]:
    return {tuple(r["symbols"]) for rows in splits.values() for r in rows}
