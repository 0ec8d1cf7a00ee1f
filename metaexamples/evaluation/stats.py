"""Intervals and paired tests over evaluation units (prompts; prompts x seeds).

- `bootstrap_ci`: the mean of per-unit values and its percentile-bootstrap interval: resample
  the units with replacement `n_boot` times (seeded), take the alpha/2 and 1-alpha/2 quantiles
  of the resampled means (95% by default).
- `paired_test`: for two arms measured on the same units (the same prompt under the same seed),
  the mean difference b - a, its percentile-bootstrap interval over units, and a two-sided
  p-value from a paired sign-flip permutation test: under H0 (no difference) each unit's
  difference is as likely to have either sign, so p = (1 + #{|mean(sign * d)| >= |mean(d)|}) /
  (1 + n_perm) over n_perm random sign vectors (all 2^n exactly when that is at most n_perm).
- `compare_arms`: every arm against a baseline arm over the units both have (prompts x seeds
  for polychromic RL, seeds for the grammar seed matrix): each arm's mean and interval, and the
  paired difference, its interval and p (the two functions above).
Units whose value is None (a metric undefined there) are dropped, pairwise for the paired test.
With n paired units the smallest p the exact sign-flip test can give is 2 / 2^n (0.25 for 3
seeds), and a percentile bootstrap over 3 units spans about [min, max] of the differences.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np


def _clean(values: Sequence[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)


def bootstrap_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 256):  # bounded memory: 256 resamples at a time
        stop = min(n_boot, start + 256)
        means[start:stop] = values[rng.integers(0, len(values), (stop - start, len(values)))].mean(axis=1)
    return means


def bootstrap_ci(values: Sequence[float | None], n_boot: int = 2000, alpha: float = 0.05,
                 seed: int = 0) -> dict:
    """{"mean", "lo", "hi", "n"}: the mean over units and its (1 - alpha) bootstrap interval;
    mean/lo/hi None with no usable unit."""
    v = _clean(values)
    if len(v) == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    means = bootstrap_means(v, n_boot, seed)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return {"mean": float(v.mean()), "lo": float(lo), "hi": float(hi), "n": int(len(v))}


def sign_flip_p(diffs: np.ndarray, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided paired permutation p-value of mean(diffs) != 0."""
    n = len(diffs)
    if n == 0:
        return 1.0
    observed = abs(diffs.mean())
    if np.allclose(diffs, 0):
        return 1.0
    if 2 ** n <= n_perm:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=n)))
        return float(np.mean(np.abs(signs @ diffs / n) >= observed - 1e-12))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_perm, 1000):
        signs = rng.choice((-1.0, 1.0), size=(min(1000, n_perm - start), n))
        hits += int((np.abs(signs @ diffs / n) >= observed - 1e-12).sum())
    return (1 + hits) / (1 + n_perm)


def paired_test(a: Sequence[float | None], b: Sequence[float | None], n_boot: int = 2000,
                n_perm: int = 10000, alpha: float = 0.05, seed: int = 0) -> dict:
    """b - a over paired units: {"diff", "lo", "hi", "p", "n"}."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and np.isfinite(x) and np.isfinite(y)]
    if not pairs:
        return {"diff": None, "lo": None, "hi": None, "p": None, "n": 0}
    d = np.array([y - x for x, y in pairs], dtype=np.float64)
    ci = bootstrap_ci(d, n_boot, alpha, seed)
    return {"diff": ci["mean"], "lo": ci["lo"], "hi": ci["hi"], "p": sign_flip_p(d, n_perm, seed), "n": len(d)}


def compare_arms(units: dict[str, dict], baseline: str, metrics: Sequence[str], n_boot: int = 2000,
                 n_perm: int = 10000) -> dict:
    """units: {arm: {unit key: {metric: value or None}}}. Returns {arm: {"units", "paired_units",
    metric: {"mean", "lo", "hi", "diff", "diff_lo", "diff_hi", "p", "ratio"}}}: the arm's mean over
    its units and its bootstrap interval; diff: mean of arm - baseline over the units both have,
    its bootstrap interval and sign-flip p (None without a paired unit); ratio: arm mean /
    baseline mean over the paired units."""
    out: dict = {}
    base = units.get(baseline, {})
    for arm, values in units.items():
        paired = sorted(set(values) & set(base), key=str)
        entry: dict = {"units": len(values), "paired_units": len(paired)}
        for metric in metrics:
            ci = bootstrap_ci([v.get(metric) for v in values.values()], n_boot=n_boot)
            a = [base[u].get(metric) for u in paired]
            b = [values[u].get(metric) for u in paired]
            test = paired_test(a, b, n_boot=n_boot, n_perm=n_perm)
            mean_a = np.mean([x for x in a if x is not None]) if any(x is not None for x in a) else None
            mean_b = np.mean([x for x in b if x is not None]) if any(x is not None for x in b) else None
            entry[metric] = {"mean": ci["mean"], "lo": ci["lo"], "hi": ci["hi"], "diff": test["diff"],
                             "diff_lo": test["lo"], "diff_hi": test["hi"], "p": test["p"],
                             "ratio": float(mean_b / mean_a) if mean_a else None}
        out[arm] = entry
    return out


__all__ = ["bootstrap_ci", "bootstrap_means", "compare_arms", "paired_test", "sign_flip_p"]
