"""Evaluation machinery every task reuses: batched exact scoring (scoring, prefix_tree), the
left-padded sampler (sampling), decoding presets and processors (decoding), shared metrics
(metrics) and plots. Each task's evaluation stages live in its own package."""

from metaexamples.evaluation.scoring import score_strings

__all__ = ["score_strings"]
