"""Decoding presets (conf/decoding/*.yaml) -> `model.generate` arguments: the generic half.

The processor order is fixed here, not left to `generate`: [log-prob recorder (raw model
scores), the task's constraint, temperature, top-k, top-p, sampler]. Constraining before the
warpers means top-k and top-p choose among allowed tokens (never an all-masked row), and the
recorder sees the model's own distribution (used for calibration). A task supplies its own
constraint processor for `decoding.constraint` (the grammar task: `alphabet`, `grammar`, in
tasks/grammar/constraints.py) and its own stop sequence (`StopOnSequence`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from transformers import (GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria,
                          StoppingCriteriaList, TemperatureLogitsWarper, TopKLogitsWarper,
                          TopPLogitsWarper)

from metaexamples.errors import ConfigError

CLOSE_MARGIN = 4  # extra new tokens beyond max_len + closing tag, for a task's default budget


def check_decoding(dec, constraints: Sequence[str] = ("none",)) -> None:
    """The same one-line errors as config.validate, for callers that skip it."""
    if dec.temperature < 0:
        raise ConfigError(f"decoding.temperature: must be >= 0, got {dec.temperature}")
    if not 0.0 < dec.top_p <= 1.0:
        raise ConfigError(f"decoding.top_p: must be in (0, 1], got {dec.top_p}")
    if dec.top_k < 0:
        raise ConfigError(f"decoding.top_k: must be >= 0, got {dec.top_k}")
    if dec.constraint not in constraints:
        raise ConfigError(f"decoding.constraint: unknown {dec.constraint!r} for this task; "
                          f"available: {', '.join(constraints)}")


# Per-step work happens on [batch, vocab] float32 scores (49 MB at batch 250 with a 49k
# vocabulary). A fresh tensor that size is a fresh mmap on CPU (above glibc's 32 MB mmap
# threshold), page-faulted on every step; that, not arithmetic, was most of the cost of a
# constraint. So processors work on row blocks of ~4 MB, and the constrained and sampled
# outputs live in buffers kept across steps, of which only the entries written last step are
# reset. (The samples are the same, token for token, as with whole-tensor operations.)
BLOCK_ELEMENTS = 2**20


def _row_blocks(scores: torch.Tensor):
    step = max(1, BLOCK_ELEMENTS // scores.shape[1])
    return [slice(i, i + step) for i in range(0, scores.shape[0], step)]


class _SparseBuffer:
    """A [batch, vocab] tensor of `fill` kept across steps; `columns` = every column a caller
    may write, reset to `fill` on the next `blank()`."""

    def __init__(self, fill: float, columns: Sequence[int]) -> None:
        self.fill = fill
        self.columns = torch.tensor(sorted(set(columns)), dtype=torch.long)
        self.buf: torch.Tensor | None = None

    def blank(self, like: torch.Tensor) -> torch.Tensor:
        if self.buf is None or self.buf.shape != like.shape or self.buf.device != like.device \
                or self.buf.dtype != like.dtype:
            self.buf = torch.full_like(like, self.fill)
            self.columns = self.columns.to(like.device)
        else:
            self.buf.index_fill_(1, self.columns, self.fill)
        return self.buf


class LogProbRecorder(LogitsProcessor):
    """Records log p(token) of each generated token under the model's raw distribution.

    At step t it sees the token chosen at step t-1 (the last input id) and the scores it was
    drawn from (kept from the previous call: no copy; later processors never write into their
    input). `finish(sequences)` accounts for the last token. `logprobs()` -> [batch, new_tokens].
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prev: torch.Tensor | None = None
        self._steps: list[torch.Tensor] = []
        self._len = 0

    def _take(self, scores: torch.Tensor, tokens: torch.Tensor) -> None:
        lse = torch.cat([torch.logsumexp(scores[b].float(), dim=-1) for b in _row_blocks(scores)])
        chosen = scores.gather(1, tokens[:, None]).squeeze(1).float()
        self._steps.append((chosen - lse).cpu())

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._prev is not None and input_ids.shape[1] > self._len:
            self._take(self._prev, input_ids[:, -1])
        elif self._prev is not None:  # a new generate call
            self.reset()
        self._prev, self._len = scores, input_ids.shape[1]
        return scores

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        if self._prev is not None:
            self._take(self._prev, sequences[:, self._len].to(self._prev.device))
        out = torch.stack(self._steps, dim=1) if self._steps else torch.zeros(sequences.shape[0], 0)
        self.reset()
        return out


class InverseCdfSampler(LogitsProcessor):
    """Draws the next token from softmax(scores) by inverse CDF (one uniform per row) and
    returns scores that select it under argmax; generate then runs greedy selection.

    Why: torch.multinomial on CPU draws one exponential per vocabulary entry (49k per row per
    step), ~70% of generation time with a small model; this is the same distribution at a
    fraction of the cost. Uses torch's global RNG (seeded by the caller). The returned tensor
    is a buffer kept across steps: zeros and a 1 at each row's token (only argmax reads it).
    """

    def __init__(self) -> None:
        self._out: torch.Tensor | None = None
        self._marked: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        u = torch.rand(scores.shape[0], 1, device=scores.device)
        tok = torch.empty(scores.shape[0], 1, dtype=torch.long, device=scores.device)
        for b in _row_blocks(scores):
            cdf = torch.softmax(scores[b].float(), dim=-1).cumsum_(dim=-1)
            # right=True: the first index whose cdf exceeds u, never a zero-probability token
            tok[b] = torch.searchsorted(cdf, u[b] * cdf[:, -1:], right=True)
        tok.clamp_(max=scores.shape[1] - 1)
        if self._out is None or self._out.shape != scores.shape or self._out.device != scores.device:
            self._out = torch.zeros_like(scores)
        elif self._marked is not None:
            self._out.scatter_(1, self._marked, 0.0)
        self._marked = tok
        return self._out.scatter_(1, tok, 1.0)


class StopOnSequence(StoppingCriteria):
    """Done once a row's last tokens are the (multi-token) closing tag."""

    def __init__(self, stop_ids: Sequence[int]) -> None:
        self.stop = torch.tensor(list(stop_ids), dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        n = len(self.stop)
        if input_ids.shape[1] < n:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        return (input_ids[:, -n:] == self.stop.to(input_ids.device)).all(dim=1)


def build_processors(dec, constraint: LogitsProcessor | None = None) -> tuple[LogitsProcessorList, LogProbRecorder]:
    """(LogitsProcessorList in our order, its log-prob recorder). `constraint` is the task's
    processor for decoding.constraint (None = unconstrained). When sampling, the list ends
    with InverseCdfSampler and generate itself runs greedy (argmax)."""
    recorder = LogProbRecorder()
    procs = LogitsProcessorList([recorder])
    if constraint is not None:
        procs.append(constraint)
    # temperature 0 means greedy (argmax); generate cannot sample at temperature 0.
    if dec.do_sample and dec.temperature > 0:
        if dec.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(float(dec.temperature)))
        if dec.top_k > 0:
            procs.append(TopKLogitsWarper(int(dec.top_k)))
        if dec.top_p < 1.0:
            procs.append(TopPLogitsWarper(float(dec.top_p)))
        procs.append(InverseCdfSampler())
    return procs, recorder


def generate_kwargs(dec, *, max_new_tokens: int, pad_token_id: int, eos_token_id: int | None,
                    stop_ids: Sequence[int] | None = None,
                    constraint: LogitsProcessor | None = None) -> tuple[dict, LogProbRecorder]:
    """Keyword arguments for `model.generate` (KV cache on) and the log-prob recorder.
    `stop_ids`: a (multi-token) stop sequence that ends a row, besides EOS."""
    procs, recorder = build_processors(dec, constraint)
    # generate runs greedy (our sampler is a processor); with do_sample=False it adds no
    # warpers of its own (so no sampling settings here: they would only draw a warning).
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, use_cache=True,
                              pad_token_id=pad_token_id, eos_token_id=eos_token_id)
    kwargs = {"generation_config": config, "logits_processor": procs}
    if stop_ids:
        kwargs["stopping_criteria"] = StoppingCriteriaList([StopOnSequence(stop_ids)])
    return kwargs, recorder
