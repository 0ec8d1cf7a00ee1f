"""Training on the mixed stream with accelerate: the loop (loop), optimizer and schedule
(optim), checkpoints and resume (checkpoint), in-training evaluation (monitor)."""

from metaexamples.training.loop import run_train_stage

__all__ = ["run_train_stage"]
