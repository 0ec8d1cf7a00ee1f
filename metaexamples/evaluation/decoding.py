"""Decoding presets (conf/decoding/*.yaml) -> `model.generate` arguments, and the constrained
presets as `LogitsProcessor`s.

The processor order is fixed here, not left to `generate`: [log-prob recorder (raw model
scores), constraint, temperature, top-k, top-p]. Constraining before the warpers means top-k
and top-p choose among allowed tokens (never an all-masked row), and the recorder sees the
model's own distribution (used for calibration).

Constrained presets:
- `alphabet`: in the body, only the alphabet's symbol tokens and the closing tag's first token.
- `grammar`: only the symbols the language's `allowed_next(prefix)` allows (every one can
  still be completed to a valid string within max_len) and the closing tag iff the prefix is
  valid. 100% valid by construction.
Closing tags are several tokens ("</g2>" is ~4): once its first token is out, both force the
rest, and `StopOnSequence` ends the row when the whole tag is out.
All state is per row, updated from the last token each step. A constrained row is -inf
except its allowed columns (at most the symbols and the tag's tokens), so a step costs
O(batch x candidates), not O(batch x vocabulary): the overhead over plain sampling is a few %.
"""

from __future__ import annotations

from typing import Sequence

import torch
from transformers import (GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria,
                          StoppingCriteriaList, TemperatureLogitsWarper, TopKLogitsWarper,
                          TopPLogitsWarper)

from metaexamples.errors import ConfigError
from metaexamples.languages.base import END

CLOSE_MARGIN = 4  # extra new tokens beyond max_len + closing tag, for the default budget
CONSTRAINTS = ("none", "alphabet", "grammar")


def check_decoding(dec) -> None:
    """The same one-line errors as config.validate, for callers that skip it."""
    if dec.temperature < 0:
        raise ConfigError(f"decoding.temperature: must be >= 0, got {dec.temperature}")
    if not 0.0 < dec.top_p <= 1.0:
        raise ConfigError(f"decoding.top_p: must be in (0, 1], got {dec.top_p}")
    if dec.top_k < 0:
        raise ConfigError(f"decoding.top_k: must be >= 0, got {dec.top_k}")
    if dec.constraint not in CONSTRAINTS:
        raise ConfigError(f"decoding.constraint: unknown {dec.constraint!r}; available: {', '.join(CONSTRAINTS)}")


def default_max_new_tokens(dec, max_len: int, n_close: int) -> int:
    """decoding.max_new_tokens, or (null) room for the longest string, its tag and a margin."""
    if dec.get("max_new_tokens") is not None:
        if dec.max_new_tokens <= 0:
            raise ConfigError(f"decoding.max_new_tokens: must be positive, got {dec.max_new_tokens}")
        return int(dec.max_new_tokens)
    return int(max_len) + n_close + CLOSE_MARGIN


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


class _TagState(LogitsProcessor):
    """Per-row phase: 0 = writing the body, k = k closing-tag tokens out, n_close = done.

    A new `generate` call is recognised by the prompt length reappearing; `reset()` also works.
    The output is -inf except the allowed columns (the candidates: symbols and the tag's first
    token; inside the tag: its next token). Finished rows keep the candidates allowed: generate
    pads them (or the sample is cut at the tag), and a row is never all -inf.
    """

    def __init__(self, symbol_ids: Sequence[int], close_ids: Sequence[int]) -> None:
        if close_ids[0] in set(symbol_ids):
            raise ValueError("the closing tag's first token is also a symbol")
        self.close = torch.tensor(list(close_ids), dtype=torch.long)
        self.n_close = len(close_ids)
        # Candidate columns: the symbols in index order, then the closing tag's first token.
        self.columns = torch.tensor(list(symbol_ids) + [close_ids[0]], dtype=torch.long)
        self.out = _SparseBuffer(float("-inf"), list(symbol_ids) + list(close_ids))
        self.reset()

    def reset(self) -> None:
        self.prompt_len: int | None = None
        self.phase: torch.Tensor | None = None

    def _step(self, input_ids: torch.Tensor) -> bool:
        """Advance the state by the last token; True on the first call of a generation."""
        if self.phase is None or input_ids.shape[1] <= (self.prompt_len or 0):
            self.prompt_len = input_ids.shape[1]
            self.phase = torch.zeros(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
            self.close = self.close.to(input_ids.device)
            self.columns = self.columns.to(input_ids.device)
            return True
        last = input_ids[:, -1]
        closing = (self.phase > 0) & (self.phase < self.n_close)
        started = (self.phase == 0) & (last == self.close[0])
        self.phase = self.phase + (closing | started).long()
        return False

    def _constrain(self, scores: torch.Tensor, allow: torch.Tensor | None) -> torch.Tensor:
        """-inf except the candidate columns (where `allow`, [batch, candidates], if given);
        rows inside the closing tag: only its next token."""
        out = self.out.blank(scores)
        picked = scores[:, self.columns]
        out[:, self.columns] = picked if allow is None else picked.masked_fill(~allow, float("-inf"))
        rows = ((self.phase > 0) & (self.phase < self.n_close)).nonzero().squeeze(1)
        if rows.numel():
            tok = self.close[self.phase[rows]]
            out[rows[:, None], self.out.columns] = float("-inf")
            out[rows, tok] = scores[rows, tok]
        return out


class AlphabetLogitsProcessor(_TagState):
    """Body: only alphabet symbols or the closing tag's first token; then the tag's rest."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._step(input_ids)
        return self._constrain(scores, None)


class GrammarLogitsProcessor(_TagState):
    """Body: only symbols in language.allowed_next(prefix); the closing tag iff END is allowed.

    The prompt may end with seed symbols (after `n_open` opening-tag tokens): they start each
    row's prefix. allowed_next is memoised on the prefix (prefixes repeat across rows/batches).
    """

    def __init__(self, language, symbol_ids: Sequence[int], close_ids: Sequence[int], n_open: int) -> None:
        super().__init__(symbol_ids, close_ids)
        self.language = language
        self.n_open = n_open
        self.symbol_of = {t: i for i, t in enumerate(symbol_ids)}
        self._memo: dict[tuple[int, ...], tuple[bool, ...]] = {}

    def reset(self) -> None:
        super().reset()
        self.prefixes: list[tuple[int, ...]] = []

    def _allowed(self, prefix: tuple[int, ...]) -> tuple[bool, ...]:
        row = self._memo.get(prefix)
        if row is None:
            allowed = self.language.allowed_next(prefix)
            row = tuple(i in allowed for i in range(len(self.symbol_of))) + (END in allowed,)
            if not any(row):  # an inexact language: close rather than sample from nothing
                row = row[:-1] + (True,)
            self._memo[prefix] = row
        return row

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        first = self._step(input_ids)
        if first:
            self.prefixes = [self._seed_prefix(r) for r in input_ids[:, self.n_open:].tolist()]
        else:
            for r, (tok, phase) in enumerate(zip(input_ids[:, -1].tolist(), self.phase.tolist())):
                sym = self.symbol_of.get(tok)
                if sym is not None and phase == 0:
                    self.prefixes[r] = self.prefixes[r] + (sym,)
        allow = torch.tensor([self._allowed(p) for p in self.prefixes], dtype=torch.bool, device=scores.device)
        return self._constrain(scores, allow)

    def _seed_prefix(self, tokens: list[int]) -> tuple[int, ...]:
        try:
            return tuple(self.symbol_of[t] for t in tokens)
        except KeyError:
            raise ValueError("grammar decoding: the prompt after the opening tag must be symbols only") from None


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


def build_processors(dec, *, symbol_ids: Sequence[int], close_ids: Sequence[int], n_open: int,
                     language=None) -> tuple[LogitsProcessorList, LogProbRecorder]:
    """(LogitsProcessorList in our order, its log-prob recorder). When sampling, the list ends
    with InverseCdfSampler and generate itself runs greedy (argmax)."""
    check_decoding(dec)
    recorder = LogProbRecorder()
    procs = LogitsProcessorList([recorder])
    if dec.constraint == "alphabet":
        procs.append(AlphabetLogitsProcessor(symbol_ids, close_ids))
    elif dec.constraint == "grammar":
        if language is None:
            raise ValueError("decoding.constraint=grammar needs the language")
        procs.append(GrammarLogitsProcessor(language, symbol_ids, close_ids, n_open))
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


def generate_kwargs(dec, *, symbol_ids: Sequence[int], close_ids: Sequence[int], n_open: int,
                    max_new_tokens: int, pad_token_id: int, eos_token_id: int | None,
                    language=None) -> tuple[dict, LogProbRecorder]:
    """Keyword arguments for `model.generate` (KV cache on) and the log-prob recorder."""
    procs, recorder = build_processors(dec, symbol_ids=symbol_ids, close_ids=close_ids, n_open=n_open,
                                       language=language)
    # generate runs greedy (our sampler is a processor); with do_sample=False it adds no
    # warpers of its own (so no sampling settings here: they would only draw a warning).
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, use_cache=True,
                              pad_token_id=pad_token_id, eos_token_id=eos_token_id)
    kwargs = {"generation_config": config, "logits_processor": procs,
              "stopping_criteria": StoppingCriteriaList([StopOnSequence(close_ids)])}
    return kwargs, recorder
