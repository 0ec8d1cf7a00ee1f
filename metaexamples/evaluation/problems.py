"""What a task with a verifier hands the shared machinery: a problem (prompt ids, expected
answer, metadata), how its completions are sampled, a verdict on one completion, and the
comparable output of a sample (for novelty and set diversity). Plain types, so the sampler,
rollouts and set evaluation use them without importing the tasks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence


@dataclass
class Verdict:
    """One completion judged: reward in [0, 1], a named kind ("correct", "rule", ...), and
    what was read out of the completion (an answer, a symbol string), for the samples file."""

    reward: float
    kind: str
    extracted: Any = None


@dataclass
class Problem:
    """One problem: the prompt as token ids, the expected answer (None where any valid output
    counts, as for grammar generation), and metadata (kind, difficulty, ...)."""

    id: str
    prompt_ids: list[int]
    answer: Any = None
    meta: dict = field(default_factory=dict)


@dataclass
class SamplingSpec:
    """How a task's completions are generated: a stop sequence besides EOS, a factory of the
    constraint processor for decoding.constraint (or None), and the new-token budget."""

    stop_ids: list[int]
    constraint: Any
    max_new_tokens: int


def output_key(extracted: Any, tokens: Sequence[int]) -> tuple:
    """The comparable output of a sample: ("x", extracted) or ("raw", completion tokens)."""
    if extracted is None:
        return ("raw", tuple(tokens))
    if isinstance(extracted, (list, tuple)):
        return ("x", tuple(extracted))
    return ("x", extracted if isinstance(extracted, Hashable) else repr(extracted))
