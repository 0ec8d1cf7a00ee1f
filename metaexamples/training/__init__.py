"""Training: the scaffold every method trains through (scaffold: accelerate, resume, progress,
metrics logging, checkpoints, export; a method supplies one step), the supervised loop on it
(loop), batch addressing by step (batches), the optimizer and schedule (optim), checkpoints
(checkpoint) and the SFT objective (loss). Methods (metaexamples/methods) decide what a model
is trained on and with which objective."""

from metaexamples.training.batches import BlockBatches
from metaexamples.training.loop import apply_lora, train_loop
from metaexamples.training.scaffold import Progress, TrainingRun, keep_rows_up_to, last_row_with, run_fingerprint

__all__ = ["BlockBatches", "Progress", "TrainingRun", "apply_lora", "keep_rows_up_to", "last_row_with",
           "run_fingerprint", "train_loop"]
