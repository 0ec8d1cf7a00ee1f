"""Evaluation: batched scoring (scoring), metrics (metrics), decoding presets and constrained
processors (decoding), and the two stages: eval_ppl (ppl) and eval_gen (generation)."""

from metaexamples.evaluation.generation import run_eval_gen
from metaexamples.evaluation.ppl import run_eval_ppl
from metaexamples.evaluation.scoring import score_strings

__all__ = ["run_eval_gen", "run_eval_ppl", "score_strings"]
