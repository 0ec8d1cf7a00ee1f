"""The one sampler every task uses: batched, left-padded, KV cache, the decoding group's
settings, the task's stop sequence and constraint.

Prompts may differ in length: each batch is left-padded (pad id, attention mask 0), so every
row's next token sits in the last column and the KV cache serves all rows. A batch of
equal-length prompts has no padding at all. A completion is the generated tokens up to and
including the first stop sequence (or EOS); generation also ends at `max_new_tokens`.
Log-probability = sum of log p(token) of the kept tokens under the model's raw distribution,
whatever the decoding (the decoding module's recorder).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from metaexamples.evaluation.decoding import generate_kwargs

log = logging.getLogger(__name__)


@dataclass
class Completion:
    tokens: list[int]  # generated tokens kept (the stop sequence or EOS included)
    logprob: float
    stop: str  # "stop" (the stop sequence), "eos", or "budget"
    stop_at: int  # index in `tokens` where the stop sequence starts, -1 if none


def find_subsequence(tokens: Sequence[int], pattern: Sequence[int]) -> int:
    """Index of the first occurrence of `pattern` in `tokens`, or -1."""
    n, pattern = len(pattern), list(pattern)
    for i in range(len(tokens) - n + 1):
        if list(tokens[i:i + n]) == pattern:
            return i
    return -1


def _left_pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = 1
    return ids, mask


def _prefill_shared(model, rows: list[list[int]], pad: int, device):
    """Prompts repeated in a batch (k samples per problem) go through the model once: the
    distinct prompts are prefilled (all but their last token) and the KV cache is copied to
    every row that repeats them. Returns (input_ids, attention_mask, cache) for generate,
    which then only runs each row's last prompt token and the new ones."""
    distinct: dict[tuple[int, ...], int] = {}
    index = [distinct.setdefault(tuple(r), len(distinct)) for r in rows]
    ids, mask = _left_pad([list(p) for p in distinct], pad)
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)  # as generate numbers left-padded rows
    with torch.inference_mode():
        out = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1], use_cache=True)
    cache = out.cache
    select = torch.tensor(index, device=device)
    cache.reorder_cache(select)
    return ids[select], mask[select], cache


class ProgressLines:
    """Progress of a long loop as log lines (a file-friendly progress bar: no carriage
    returns), at most one per `every` seconds and none for a loop shorter than that: a long
    evaluation (minutes of eval_verify or eval_gen) says how far it is and how long is left."""

    def __init__(self, what: str, total: int, unit: str, every: float = 30.0) -> None:
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.start = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if done <= 0 or now - self.last < self.every:
            return
        self.last = now
        left = (now - self.start) / done * (self.total - done)
        log.info("%s: %d/%d %s (%.0f%%), ~%.0f s left", self.what, done, self.total, self.unit,
                 100 * done / self.total, left)


def sample_completions(model, prompts: Sequence[Sequence[int]], dec, *, max_new_tokens: int, pad_id: int,
                       eos_id: int | None, batch_size: int, seed: int, stop_ids: Sequence[int] | None = None,
                       constraint: Callable[[], object] | None = None,
                       share_prompts: bool = False) -> list[Completion]:
    """One completion per prompt, in prompt order. `constraint` builds a fresh constraint
    processor (or None) per batch. Seeded: the same prompts and seed give the same samples.
    share_prompts: a prompt repeated within a batch is prefilled once (`_prefill_shared`); the
    same distribution, but not bit-identical samples to the unshared path (other matmul
    shapes round differently), so the grammar task's eval_gen keeps it off."""
    device = next(model.parameters()).device
    stop = list(stop_ids or [])
    torch.manual_seed(seed)
    model.eval()
    out: list[Completion] = []
    progress = ProgressLines("sampling", len(prompts), "completions")
    for start in range(0, len(prompts), batch_size):
        progress.update(start)
        rows = [list(p) for p in prompts[start:start + batch_size]]
        kwargs, recorder = generate_kwargs(dec, max_new_tokens=max_new_tokens, pad_token_id=pad_id,
                                           eos_token_id=eos_id, stop_ids=stop,
                                           constraint=constraint() if constraint else None)
        if share_prompts and len(set(map(tuple, rows))) < len(rows):
            ids, mask, kwargs["cache"] = _prefill_shared(model, rows, pad_id, device)
        else:
            ids, mask = _left_pad(rows, pad_id)
        with torch.inference_mode():
            seqs = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
        logps = recorder.finish(seqs).tolist()
        for r, row in enumerate(seqs[:, ids.shape[1]:].tolist()):
            at = find_subsequence(row, stop) if stop else -1
            if at >= 0:
                kept, how = at + len(stop), "stop"
            elif eos_id is not None and eos_id in row:
                kept, how = row.index(eos_id) + 1, "eos"
            else:
                kept, how = len(row), "budget"
            out.append(Completion(tokens=row[:kept], logprob=float(sum(logps[r][:kept])), stop=how, stop_at=at))
    return out
