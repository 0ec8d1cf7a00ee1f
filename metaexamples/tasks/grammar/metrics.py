"""The grammar task's metrics (definitions as in the README).

Discrimination table (eval_ppl):
- valid_ppl / invalid_ppl: the MEAN of the per-string perplexities of each class (as the
  reference report); gap = invalid_ppl - valid_ppl; ratio = invalid_ppl / valid_ppl; auroc,
  aupr, best_f1, balanced_acc as in evaluation/metrics.py.
- Strata: by length bucket (both classes filtered to the bucket), by how the negative was
  made (all valid strings vs that kind of negative) and by edit distance (likewise).
- auroc_hard / auroc_random: AUROC of all valid strings vs the hard negatives (minimal edits:
  substitution, insertion, deletion) / vs the random negatives alone; a reference that scores
  against random strings is comparable with auroc_random, not with the mixed auroc.
Generation (eval_gen): validity_rate = valid / samples; novelty_rate = novel_valid / valid
(0 if none); unique_valid = distinct valid strings; calibration buckets are equal-count bins
of the samples' own log-probability, each with its validity rate.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from metaexamples.evaluation.metrics import _mean, discrimination, per_symbol_score_of, score_of


def ppl_block(valid: list[dict], invalid: list[dict], threshold: float,
              threshold_per_symbol: float) -> dict:
    """The table's columns for one set of scored valid and invalid strings."""
    vp, ip = _mean(r["ppl"] for r in valid), _mean(r["ppl"] for r in invalid)
    labels = [1] * len(valid) + [0] * len(invalid)
    rows = valid + invalid
    out = {
        "valid_ppl": vp,
        "invalid_ppl": ip,
        "gap": ip - vp if vp is not None and ip is not None else None,
        "ratio": ip / vp if vp and ip is not None else None,
        **discrimination(labels, [score_of(r) for r in rows], threshold),
        "valid_nll_per_symbol": _mean(r["nll_per_symbol"] for r in valid),
        "invalid_nll_per_symbol": _mean(r["nll_per_symbol"] for r in invalid),
        "n_valid": len(valid),
        "n_invalid": len(invalid),
    }
    per_symbol = discrimination(labels, [per_symbol_score_of(r) for r in rows], threshold_per_symbol)
    out.update({f"{k}_per_symbol": v for k, v in per_symbol.items()})
    return out


def length_buckets(min_len: int, max_len: int, n: int = 4) -> list[tuple[int, int]]:
    """Up to n equal-width, inclusive length ranges covering [min_len - 1, max_len + 1]
    (edited negatives can be one symbol shorter or longer than any valid string)."""
    lo, hi = max(min_len - 1, 0), max_len + 1
    edges = np.linspace(lo, hi + 1, min(n, hi - lo + 1) + 1).round().astype(int)
    return [(int(a), int(b) - 1) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def bucket_name(length: int, buckets: list[tuple[int, int]]) -> str:
    for a, b in buckets:
        if a <= length <= b:
            return f"{a}-{b}"
    a, b = buckets[0] if length < buckets[0][0] else buckets[-1]
    return f"{a}-{b}"


def strata(valid: list[dict], invalid: list[dict], threshold: float, threshold_per_symbol: float,
           buckets: list[tuple[int, int]]) -> dict:
    """ppl_block per length bucket, per negative kind (`how`) and per edit distance."""
    out: dict[str, dict] = {"length": {}, "how": {}, "edit_distance": {}}
    for a, b in buckets:
        name = f"{a}-{b}"
        v = [r for r in valid if bucket_name(r["length"], buckets) == name]
        i = [r for r in invalid if bucket_name(r["length"], buckets) == name]
        if v or i:
            out["length"][name] = ppl_block(v, i, threshold, threshold_per_symbol)
    for how in sorted({r["how"] for r in invalid}):
        out["how"][how] = ppl_block(valid, [r for r in invalid if r["how"] == how],
                                    threshold, threshold_per_symbol)
    for d in sorted({r["edit_distance"] for r in invalid if r.get("edit_distance") is not None}):
        out["edit_distance"][str(d)] = ppl_block(
            valid, [r for r in invalid if r.get("edit_distance") == d], threshold, threshold_per_symbol)
    return out


def negative_kind_auroc(valid: list[dict], invalid: list[dict]) -> dict:
    """{"auroc_hard", "auroc_random"}: valid vs the edited (hard) negatives, and vs the random
    ones (None where there are none)."""
    out = {}
    for name, keep in (("auroc_hard", lambda r: r["how"] != "random"), ("auroc_random", lambda r: r["how"] == "random")):
        negatives = [r for r in invalid if keep(r)]
        labels = [1] * len(valid) + [0] * len(negatives)
        scores = [score_of(r) for r in valid + negatives]
        out[name] = discrimination(labels, scores, 0.0)["auroc"] if valid and negatives else None
    return out


def by_length(in_range: tuple[str, list[dict], list[dict]], long_rows: list[dict], threshold: float,
              threshold_per_symbol: float) -> dict:
    """Length generalization: {bucket label: ppl_block + auroc_hard/auroc_random + in_training},
    the training range first (label, its test valid and invalid rows), then each eval_lengths
    bucket of the scored test_long rows (which carry `bucket`), in their order."""
    label, valid, invalid = in_range
    groups = {label: (valid, invalid)}
    for r in long_rows:
        groups.setdefault(r["bucket"], ([], []))[0 if r["valid"] else 1].append(r)
    return {name: {**ppl_block(v, i, threshold, threshold_per_symbol), **negative_kind_auroc(v, i),
                   "in_training": name == label}
            for name, (v, i) in groups.items()}


# --- generation ----------------------------------------------------------------------------
FAILURE_KINDS = ("no_close", "foreign_token", "length", "rule")


def generation_metrics(samples: list[dict], verified: dict, train_lengths: Sequence[int], max_len: int,
                       n_buckets: int) -> dict:
    """eval_gen's figures. samples: {"verdict": "valid" | a failure kind, "length": int | None,
    "logprob": float}; verified: the task's sample metrics over them (GrammarTask.sample_metrics:
    validity_rate, failures, novel_valid, novelty_rate, unique_valid), beside which this adds
    the counts, the calibration buckets and the length histogram."""
    n = len(samples)
    valid = sum(s["verdict"] == "valid" for s in samples)
    return {
        "samples": n,
        "valid": valid,
        "invalid": n - valid,
        **{k: verified[k] for k in ("validity_rate", "novel_valid", "novelty_rate", "unique_valid", "failures")},
        "calibration": calibration(samples, n_buckets),
        "length_hist": length_hist([s["length"] for s in samples if s["length"] is not None],
                                   train_lengths, max_len),
    }


def calibration(samples: list[dict], n_buckets: int) -> list[dict]:
    """Equal-count buckets of the samples' log-probability (low to high), validity per bucket."""
    order = sorted(samples, key=lambda s: s["logprob"])
    out = []
    for chunk in np.array_split(np.arange(len(order)), min(n_buckets, len(order))):
        rows = [order[i] for i in chunk]
        n_valid = sum(r["verdict"] == "valid" for r in rows)
        out.append({"logprob_lo": rows[0]["logprob"], "logprob_hi": rows[-1]["logprob"],
                    "n": len(rows), "valid": n_valid, "validity_rate": n_valid / len(rows)})
    return out


def length_hist(sample_lengths: Sequence[int], train_lengths: Sequence[int], max_len: int) -> dict:
    """Share of closed samples and of training strings at each length 0..top (top = the
    longest seen, at least max_len)."""
    top = max([max_len, *sample_lengths, *train_lengths])
    s, t = Counter(sample_lengths), Counter(train_lengths)
    ns, nt = max(len(sample_lengths), 1), max(len(train_lengths), 1)
    return {
        "length": list(range(top + 1)),
        "samples": [s.get(k, 0) / ns for k in range(top + 1)],
        "train": [t.get(k, 0) / nt for k in range(top + 1)],
        "n_samples": len(sample_lengths),
        "n_train": len(train_lengths),
        "mean_sample_length": _mean(sample_lengths),
        "mean_train_length": _mean(train_lengths),
    }
