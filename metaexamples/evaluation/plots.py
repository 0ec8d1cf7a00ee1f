"""PNG plots of the evaluation (matplotlib, headless Agg backend), written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from sklearn.metrics import precision_recall_curve, roc_curve

from metaexamples.io import atomic_path


def _pyplot():
    """matplotlib loads only when a plot is drawn (about a thousand modules: not at CLI start-up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def roc_plot(labels: Sequence[int], scores: Sequence[float], auroc: float | None, path: Path, title: str) -> Path:
    fpr, tpr, _ = roc_curve(labels, scores)
    fig, ax = _pyplot().subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUROC {auroc:.4f}" if auroc is not None else "ROC")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate (valid)", title=title)
    ax.legend(loc="lower right")
    return _save(fig, path)


def pr_plot(labels: Sequence[int], scores: Sequence[float], aupr: float | None, path: Path, title: str) -> Path:
    precision, recall, _ = precision_recall_curve(labels, scores)
    fig, ax = _pyplot().subplots(figsize=(4.5, 4.5))
    ax.plot(recall, precision, label=f"AUPR {aupr:.4f}" if aupr is not None else "PR")
    ax.set(xlabel="recall (valid)", ylabel="precision", title=title, ylim=(0, 1.02))
    ax.legend(loc="lower left")
    return _save(fig, path)


def length_hist_plot(hist: dict, path: Path, title: str) -> Path:
    fig, ax = _pyplot().subplots(figsize=(6, 3.5))
    x = hist["length"]
    ax.bar([v - 0.2 for v in x], hist["train"], width=0.4, label=f"train (n={hist['n_train']})")
    ax.bar([v + 0.2 for v in x], hist["samples"], width=0.4, label=f"samples (n={hist['n_samples']})")
    ax.set(xlabel="length (symbols)", ylabel="share", title=title)
    ax.legend()
    return _save(fig, path)


def calibration_plot(buckets: list[dict], path: Path, title: str) -> Path:
    fig, ax = _pyplot().subplots(figsize=(5, 3.5))
    mids = [(b["logprob_lo"] + b["logprob_hi"]) / 2 for b in buckets]
    ax.plot(mids, [b["validity_rate"] for b in buckets], "o-")
    ax.set(xlabel="sample log-probability (bucket middle)", ylabel="validity rate", title=title, ylim=(-0.02, 1.02))
    return _save(fig, path)
