"""The grammar task's constrained decoding presets, as `LogitsProcessor`s.

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
from transformers import LogitsProcessor

from metaexamples.evaluation.decoding import _SparseBuffer
from metaexamples.tasks.grammar.languages.base import END

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


def make_constraint(name: str, *, language, symbol_ids: Sequence[int], close_ids: Sequence[int],
                    n_open: int) -> LogitsProcessor | None:
    """The processor for decoding.constraint (None for `none`)."""
    if name == "alphabet":
        return AlphabetLogitsProcessor(symbol_ids, close_ids)
    if name == "grammar":
        return GrammarLogitsProcessor(language, symbol_ids, close_ids, n_open)
    return None
