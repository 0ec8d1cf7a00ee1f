"""Batch addressing shared by every training set: micro-batch (step, micro-batch, rank) reads a
fixed slice of a seeded permutation per epoch, so the data position is a function of the step
and a run resumed from a checkpoint continues exactly where it stopped.

`BlockBatches` serves token blocks (and optional labels); a task with its own rows (task=numeric)
subclasses it and overrides `get` alone: `index` is the one addressing."""

from __future__ import annotations

import numpy as np
import torch


class BlockBatches:
    """Micro-batches of training blocks, addressed by (step, micro-batch, rank). With `labels`
    (same shape, -100 = not scored) a batch is (input_ids, labels), else input_ids alone.
    `blocks` must not be empty: the caller, which knows the setting that sizes it, refuses
    that in its own words."""

    def __init__(self, blocks: np.ndarray, batch_size: int, grad_accum: int, world: int, seed: int,
                 labels: np.ndarray | None = None) -> None:
        if len(blocks) == 0:
            raise ValueError("BlockBatches: no training blocks")
        self.blocks = torch.from_numpy(blocks.astype(np.int64))
        self.labels = torch.from_numpy(labels.astype(np.int64)) if labels is not None else None
        self.batch_size, self.grad_accum, self.world, self.seed = batch_size, grad_accum, world, seed
        self._epoch, self._perm = -1, np.empty(0, dtype=np.int64)  # the last epoch's order, reused

    def _order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.blocks))
        return self._perm

    def index(self, step: int, micro: int, rank: int) -> torch.Tensor:
        """Row indices of micro-batch (step, micro, rank)."""
        n = len(self.blocks)
        first = ((step * self.grad_accum + micro) * self.world + rank) * self.batch_size
        parts, p, end = [], first, first + self.batch_size
        while p < end:  # positions are contiguous: one slice per epoch the batch spans
            epoch, offset = divmod(p, n)
            take = min(n - offset, end - p)
            parts.append(self._order(epoch)[offset:offset + take])
            p += take
        return torch.from_numpy(np.concatenate(parts))

    def get(self, step: int, micro: int, rank: int):
        index = self.index(step, micro, rank)
        return self.blocks[index] if self.labels is None else (self.blocks[index], self.labels[index])


__all__ = ["BlockBatches"]
