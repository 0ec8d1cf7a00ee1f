"""What the one training loop (training/loop.py) needs to train a numeric model: batches and an
objective, the same contract as BlockBatches and CausalLMLoss.

- `NumericBatches`: every training problem collated once (`collate(model, problems)`, padded to
  the longest), then micro-batches addressed by (step, micro-batch, rank) by BlockBatches' own
  `index` (training/batches.py: the data position is a function of the step and a resumed run
  continues exactly where it stopped). A batch is a tuple of tensors in
  `keys` order, trimmed to its own longest row (right padding: trimming changes no loss).
  `blocks` (the padded input ids) is what the loop reads its width from: its tokens/s count
  padded positions of the full width.
- `NumericObjective`: an nn.Module wrapping the model (as `.model`, where export and checkpoints
  look for it) whose forward(*tensors) is `training_loss(model, dict(zip(keys, tensors)))`.
"""

from __future__ import annotations

import torch
from torch import nn

from metaexamples.errors import ConfigError
from metaexamples.training import BlockBatches


class NumericBatches(BlockBatches):
    """Micro-batches of collated numeric problems (a tuple of tensors in `self.keys` order)."""

    def __init__(self, tensors: dict[str, torch.Tensor], batch_size: int, grad_accum: int, world: int,
                 seed: int) -> None:
        if "input_ids" not in tensors or "attention_mask" not in tensors:
            raise ValueError("a numeric batch needs input_ids and attention_mask")
        if len(tensors["input_ids"]) == 0:
            raise ConfigError("task.sizes.train: the training split is empty")
        super().__init__(tensors["input_ids"].numpy(), batch_size, grad_accum, world, seed)
        self.keys = list(tensors)
        self.tensors = tensors
        self.width = int(tensors["input_ids"].shape[1])

    def get(self, step: int, micro: int, rank: int) -> tuple[torch.Tensor, ...]:
        index = self.index(step, micro, rank)
        rows = {k: v[index] for k, v in self.tensors.items()}
        used = int(rows["attention_mask"].sum(1).max())
        # per-position tensors ([b, width, ...]) are cut to this batch's longest row
        return tuple(v[:, :used] if v.dim() >= 2 and v.shape[1] == self.width else v for v in rows.values())


class NumericObjective(nn.Module):
    """forward(*tensors) -> the model's training loss on the batch they make up."""

    def __init__(self, model: nn.Module, keys: list[str]) -> None:
        super().__init__()
        self.model = model
        self.keys = list(keys)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        from metaexamples.models.numeric import training_loss

        if len(tensors) != len(self.keys):
            raise ValueError(f"expected {len(self.keys)} tensors ({', '.join(self.keys)}), got {len(tensors)}")
        return training_loss(self.model, dict(zip(self.keys, tensors)))


def numeric_sft_setup(model, problems: list[dict], batch_size: int, grad_accum: int, world: int, seed: int):
    """(NumericBatches over `problems`, objective factory objective(model) -> NumericObjective)."""
    from functools import partial

    from metaexamples.models.numeric import collate

    if not problems:
        raise ConfigError("task.sizes.train: the training split is empty")
    batches = NumericBatches(collate(model, problems), batch_size, grad_accum, world, seed)
    return batches, partial(NumericObjective, keys=batches.keys)


__all__ = ["NumericBatches", "NumericObjective", "numeric_sft_setup"]
