"""Metrics shared by every task (scikit-learn where it has them).

Discrimination (valid = positive class; score = minus log-perplexity = -nll / n_tokens,
per-symbol score = -nll_per_symbol):
- auroc: roc_auc_score; aupr: average_precision_score.
- best_f1: the highest F1 over all thresholds on the test scores (an oracle threshold, as
  the reference report).
- balanced_acc: balanced_accuracy_score on test at the threshold that maximises balanced
  accuracy (Youden's J) on a separate split's scores, never on test.
Sampling with a verifier:
- pass@k: the unbiased estimator 1 - C(n-c, k) / C(n, k) (HumanEval's), from n samples of
  which c are correct, averaged over problems.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
from sklearn.metrics import (average_precision_score, balanced_accuracy_score,
                             precision_recall_curve, roc_auc_score, roc_curve)


def score_of(row: dict) -> float:
    """Minus log-perplexity: -nll / n_tokens."""
    return -row["nll"] / row["n_tokens"]


def per_symbol_score_of(row: dict) -> float:
    return -row["nll_per_symbol"]


def choose_threshold(labels: Sequence[int], scores: Sequence[float]) -> float:
    """The score threshold (predict valid iff score >= t) maximising balanced accuracy,
    i.e. Youden's J = TPR - FPR, on these (eval split) scores."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    if len(set(labels.tolist())) < 2:
        return float(np.median(scores)) if len(scores) else 0.0
    fpr, tpr, thr = roc_curve(labels, scores)
    best = int(np.argmax(tpr - fpr))
    t = float(thr[best])
    return t if math.isfinite(t) else float(scores.max())


def best_f1(labels: Sequence[int], scores: Sequence[float]) -> float:
    precision, recall, _ = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(f1.max())


def discrimination(labels: Sequence[int], scores: Sequence[float], threshold: float) -> dict:
    """auroc, aupr, best_f1, balanced_acc (at `threshold`); None where a class is missing."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    if len(set(labels.tolist())) < 2:
        return {"auroc": None, "aupr": None, "best_f1": None, "balanced_acc": None}
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr": float(average_precision_score(labels, scores)),
        "best_f1": best_f1(labels, scores),
        "balanced_acc": float(balanced_accuracy_score(labels, (scores >= threshold).astype(int))),
    }


def _mean(xs: Iterable[float]) -> float | None:
    xs = list(xs)
    return float(np.mean(xs)) if xs else None


# --- sampling with a verifier ----------------------------------------------------------------
def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem (HumanEval): 1 - C(n-c, k) / C(n, k), computed as a
    stable product; requires k <= n."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts: Sequence[tuple[int, int]], ks: Sequence[int]) -> dict[str, float | None]:
    """{"pass@k": mean over problems} for (n, c) per problem; None where some n < k."""
    out: dict[str, float | None] = {}
    for k in ks:
        ok = counts and all(n >= k for n, _ in counts)
        out[f"pass@{k}"] = float(np.mean([pass_at_k(n, c, k) for n, c in counts])) if ok else None
    return out


def verified_metrics(rows: Sequence[dict], ks: Sequence[int]) -> dict:
    """Verified samples (dicts with "id" of the problem, "reward" in [0, 1], "verdict") ->
    problems, samples, accuracy (mean reward), pass@k for each k no larger than every problem's
    sample count (a sample passes with reward 1), verdicts (samples per verdict kind)."""
    per_problem: dict[str, list[float]] = {}
    for r in rows:
        per_problem.setdefault(r["id"], []).append(float(r["reward"]))
    counts = [(len(v), sum(x >= 1.0 for x in v)) for v in per_problem.values()]
    smallest = min((n for n, _ in counts), default=0)
    verdicts: dict[str, int] = {}
    for r in rows:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    return {"problems": len(per_problem), "samples": len(rows),
            "accuracy": float(np.mean([r["reward"] for r in rows])) if rows else 0.0,
            **mean_pass_at_k(counts, [k for k in ks if k <= smallest]),
            "verdicts": dict(sorted(verdicts.items()))}
