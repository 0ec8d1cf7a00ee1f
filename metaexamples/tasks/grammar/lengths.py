"""Length generalization: `grammar.eval_lengths`, inclusive length buckets beyond the training
lengths, and the language that judges each bucket.

A bucket's language is the grammar with min_len, max_len set to the bucket (and uniform
lengths): its valid strings follow the rule at a length never trained on, its invalid ones
are built exactly as the in-range test negatives (length-matched minimal edits and random
strings), so AUROC per bucket compares like with like.
"""

from __future__ import annotations

from metaexamples.errors import ConfigError, check_key
from metaexamples.tasks.grammar.languages import Language, make_language


def bucket_label(lo: int, hi: int) -> str:
    return f"{lo}-{hi}"


def eval_buckets(grammar_cfg) -> list[tuple[int, int]]:
    """grammar.eval_lengths as [(lo, hi), ...] (already checked by check_eval_lengths)."""
    return [(int(lo), int(hi)) for lo, hi in (grammar_cfg.get("eval_lengths") or [])]


def bucket_language(grammar_cfg, lo: int, hi: int, num_symbols: int) -> Language:
    g = dict(grammar_cfg)
    g.update(min_len=lo, max_len=hi, length_dist="uniform")
    return make_language(g, num_symbols)


def check_eval_lengths(grammar_cfg, num_symbols: int) -> None:
    """Pairs [lo, hi] of integers, lo <= hi, all beyond grammar.max_len, in increasing order
    without overlap, each holding a length the language has strings of."""
    key = "grammar.eval_lengths"
    raw = grammar_cfg.get("eval_lengths") or []
    previous_hi = int(grammar_cfg["max_len"])
    for i, bucket in enumerate(raw):
        ok = (not isinstance(bucket, (str, bytes)) and hasattr(bucket, "__len__") and len(bucket) == 2
              and all(isinstance(x, int) and not isinstance(x, bool) for x in bucket))
        check_key(ok, key, f"each bucket must be a pair [lo, hi] of integers, got {bucket!r}")
        lo, hi = int(bucket[0]), int(bucket[1])
        check_key(lo <= hi, key, f"bucket [{lo}, {hi}]: lo must be <= hi")
        if i == 0:
            check_key(lo > previous_hi, key, f"bucket [{lo}, {hi}] overlaps the training lengths "
                      f"[{grammar_cfg['min_len']}, {previous_hi}]; eval lengths must start above grammar.max_len")
        else:
            check_key(lo > previous_hi, key, f"bucket [{lo}, {hi}] is out of order or overlaps the one "
                      f"ending at {previous_hi}; give increasing, disjoint buckets")
        try:
            bucket_language(grammar_cfg, lo, hi, num_symbols)
        except ConfigError as exc:
            raise ConfigError(f"{key}: bucket [{lo}, {hi}] has no string of {grammar_cfg['name']} "
                              f"({str(exc).split(': ', 1)[-1]})") from None
        previous_hi = hi
