"""The one training loop with accelerate (loop), its optimizer and schedule (optim),
checkpoints and resume (checkpoint), and the SFT objective (loss). Methods
(metaexamples/methods) decide what a model is trained on and with which objective."""

from metaexamples.training.loop import BlockBatches, apply_lora, train_loop

__all__ = ["BlockBatches", "apply_lora", "train_loop"]
