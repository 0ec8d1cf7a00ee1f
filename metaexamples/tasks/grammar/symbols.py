"""Choose the synthetic alphabet: rare, non-word-like single tokens of the model's own tokenizer
that round-trip exactly through decode/encode, alone and next to each other.

Rarity proxy: a high id (BPE merges learned late are rare). The scan walks ids from the top
and stops as soon as enough symbols (plus `num_foreign` extra tokens for negatives) are found.
"""

from __future__ import annotations

import string
import unicodedata

from metaexamples.errors import ConfigError

# Punctuation that occurs in ordinary prose; a symbol containing it would look like text.
COMMON_PUNCTUATION = set(string.punctuation) | set("‘’‚„“”–—…")
PROSE_PUNCTUATION = set(".,;:!?'\"")  # ASCII fallback tokens may be code-like, never prose-like


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def _decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, clean_up_tokenization_spaces=False, skip_special_tokens=False)


def reject_reason(text: str) -> str | None:
    """Why a decoded token cannot be a symbol (None if it can), judged on its text alone."""
    if not text:
        return "empty"
    if "\ufffd" in text:
        return "partial_utf8"  # a byte fragment of a multi-byte character
    cats = [unicodedata.category(c) for c in text]
    if any(c[0] in "ZC" for c in cats) or any(c.isspace() for c in text):
        return "whitespace_or_control"
    if any(c[0] == "L" for c in cats):
        return "word_like"
    if any(c[0] == "N" for c in cats):
        return "digit"
    if any(c[0] == "M" for c in cats):
        return "combining_mark"  # attaches to its neighbour when rendered
    if text.isascii():
        if len(text) < 2 or PROSE_PUNCTUATION & set(text):
            return "common_punctuation"
        return None
    if COMMON_PUNCTUATION & set(text):
        return "common_punctuation"
    return None


def _round_trips(tokenizer, ids: list[int]) -> bool:
    return _encode(tokenizer, _decode(tokenizer, ids)) == ids


def select_symbols(tokenizer, num_symbols: int = 5, prefer_non_ascii: bool = True,
                   ascii_fallback: bool = True, num_foreign: int = 3) -> dict:
    """The alphabet (highest qualifying ids first) and `num_foreign` extra qualifying tokens.

    Returns {"tokens", "ids", "foreign_tokens", "foreign_ids", "tokenizer", "rejected"}.
    Raises ConfigError naming data.num_symbols if too few tokens qualify.
    """
    want = num_symbols + num_foreign
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    rejected: dict[str, int] = {}
    chosen: list[int] = []
    ascii_ok: list[int] = []  # qualifying ASCII tokens, used only as a fallback

    def reject(reason: str) -> None:
        rejected[reason] = rejected.get(reason, 0) + 1

    def fits_sequence(i: int) -> bool:
        # Next to itself and to every symbol already chosen, the ids must come back unchanged.
        return all(_round_trips(tokenizer, pair) for j in chosen for pair in ([i, j], [j, i])) \
            and _round_trips(tokenizer, [i, i, i])

    for i in range(len(tokenizer) - 1, -1, -1):
        if len(chosen) >= want:
            break
        if i in special:
            reject("special")
            continue
        text = _decode(tokenizer, [i])
        reason = reject_reason(text)
        if reason is None and _encode(tokenizer, text) != [i]:
            reason = "no_round_trip"
        if reason is None and prefer_non_ascii and text.isascii():
            ascii_ok.append(i)
            continue
        if reason is None and not fits_sequence(i):
            reason = "merges_in_sequence"
        if reason:
            reject(reason)
        else:
            chosen.append(i)

    if len(chosen) < want and prefer_non_ascii and ascii_fallback:
        for i in ascii_ok:
            if len(chosen) >= want:
                break
            if fits_sequence(i):
                chosen.append(i)
            else:
                reject("merges_in_sequence")
    if len(chosen) < want:
        hint = "" if ascii_fallback or not prefer_non_ascii else " (or set data.ascii_fallback=true)"
        raise ConfigError(
            f"data.num_symbols: only {len(chosen)} tokens of {tokenizer.name_or_path!r} qualify as symbols, "
            f"{num_symbols} + {num_foreign} foreign needed; lower data.num_symbols{hint}"
        )
    ids, foreign = chosen[:num_symbols], chosen[num_symbols:]
    check_round_trip(tokenizer, ids + foreign)
    return {
        "tokens": [_decode(tokenizer, [i]) for i in ids],
        "ids": ids,
        "foreign_tokens": [_decode(tokenizer, [i]) for i in foreign],
        "foreign_ids": foreign,
        "tokenizer": str(tokenizer.name_or_path),
        "prefer_non_ascii": prefer_non_ascii,
        "ascii_fallback": ascii_fallback,
        "rejected": dict(sorted(rejected.items())),
    }


def check_round_trip(tokenizer, ids: list[int]) -> None:
    """Each symbol alone and the whole alphabet in sequence must decode and re-encode exactly."""
    for i in ids:
        if not _round_trips(tokenizer, [i]):
            raise ConfigError(f"data.num_symbols: symbol id {i} ({_decode(tokenizer, [i])!r}) does not round-trip")
    seq = ids + ids[::-1]
    if not _round_trips(tokenizer, seq):
        raise ConfigError(f"data.num_symbols: symbols {ids} do not round-trip in sequence")

