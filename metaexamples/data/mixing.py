"""The packed training stream: canonical documents and synthetic items mixed at
`data.synthetic_mix_ratio` (share of tokens), EOS after every document and item, cut into
blocks of `data.block_size` tokens.

A synthetic item never straddles two blocks: when one does not fit in what is left of the
current block, the following canonical text fills the block and the item opens the next one
(only with no canonical text left is the rest of the block padded with EOS).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from metaexamples.errors import ConfigError


@dataclass
class SFTData:
    """What supervised fine-tuning reads: int token blocks [n, block_size] and, optionally,
    labels of the same shape (-100 = not scored, e.g. the prompt of a prompt/answer pair)."""

    blocks: Any
    labels: Any = None



def canonical_needed(synthetic_tokens: int, ratio: float) -> int:
    """Canonical tokens that make `synthetic_tokens` a `ratio` share of the stream
    (ratio 0: a canonical-only control stream of the same size)."""
    if ratio <= 0:
        return synthetic_tokens
    return round(synthetic_tokens * (1 - ratio) / ratio)


def take_tokens(docs: list[np.ndarray], n: int, repeat: bool = True) -> list[np.ndarray]:
    """The first n tokens of the documents, repeated in order if they hold fewer than n
    (or all of them, once, if not `repeat`)."""
    out, have = [], 0
    while have < n and docs and (repeat or not out):
        for doc in docs:
            if have >= n:
                break
            piece = doc[: n - have]
            out.append(piece)
            have += len(piece)
    return out


def interleave(docs: list[np.ndarray], items: list[np.ndarray], rng: random.Random) -> list[tuple[bool, np.ndarray]]:
    """Items placed at random document boundaries, documents kept in order."""
    gaps = sorted(rng.randrange(len(docs) + 1) for _ in items)
    segments, g = [], 0
    for d, doc in enumerate(docs + [None]):
        while g < len(gaps) and gaps[g] == d:
            segments.append((True, items[g]))
            g += 1
        if doc is not None:
            segments.append((False, doc))
    return segments


def pack(segments: list[tuple[bool, np.ndarray]], block_size: int, eos_id: int) -> np.ndarray:
    """int32 [n_blocks, block_size]; canonical text may be split, items never are."""
    chunks: list[np.ndarray] = []
    pos = 0  # tokens written so far
    pending: deque[np.ndarray] = deque()  # items waiting for the next block

    def emit(arr: np.ndarray) -> None:
        nonlocal pos
        chunks.append(arr)
        pos += len(arr)

    def pad_block() -> None:
        room = (-pos) % block_size
        if room:
            emit(np.full(room, eos_id, dtype=np.int32))

    for is_item, arr in segments:
        if is_item:
            if len(arr) > block_size:
                raise ConfigError(f"data.block_size: ({block_size}) is shorter than a synthetic item ({len(arr)} tokens)")
            if not pending and len(arr) <= block_size - pos % block_size:
                emit(arr)
            else:
                pending.append(arr)
            continue
        while len(arr):
            while pending and len(pending[0]) <= block_size - pos % block_size:
                emit(pending.popleft())
            room = block_size - pos % block_size
            emit(arr[:room])
            arr = arr[room:]
    while pending:
        if len(pending[0]) > block_size - pos % block_size:
            pad_block()
        emit(pending.popleft())
    pad_block()
    if not chunks:
        return np.zeros((0, block_size), dtype=np.int32)
    return np.concatenate(chunks).astype(np.int32, copy=False).reshape(-1, block_size)


def build_stream(docs: list[np.ndarray], item_ids: list[list[int]], ratio: float, block_size: int,
                 eos_id: int, rng: random.Random, repeat: bool = True) -> tuple[np.ndarray, dict]:
    """Blocks for the items (EOS appended to each) plus the canonical text the ratio asks for."""
    items = [np.asarray([*ids, eos_id], dtype=np.int32) for ids in item_ids] if ratio > 0 else []
    synthetic = sum(len(a) for a in items)
    want = canonical_needed(synthetic or sum(len(i) + 1 for i in item_ids), ratio) if ratio < 1 else 0
    canonical = take_tokens(docs, want, repeat)
    blocks = pack(interleave(canonical, items, rng), block_size, eos_id)
    n_canon = sum(len(a) for a in canonical)
    stats = {"blocks": int(blocks.shape[0]), "tokens": int(blocks.size), "synthetic_tokens": synthetic,
             "canonical_tokens": n_canon, "padding_tokens": int(blocks.size - synthetic - n_canon),
             "synthetic_share": round(synthetic / max(1, synthetic + n_canon), 4)}
    return blocks, stats


def pack_examples(examples: list[tuple[list[int], list[int]]], block_size: int, pad_id: int,
                  key: str = "task.block_size") -> tuple[np.ndarray, np.ndarray]:
    """Prompt/target examples (input ids, labels with -100 where not scored) packed greedily,
    in order, into int32 blocks [n, block_size] with their labels; an example is never split,
    and the rest of a block is padding (label -100)."""
    blocks: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    ids_row, lab_row = [], []

    def flush() -> None:
        if ids_row:
            room = block_size - len(ids_row)
            blocks.append(np.array(ids_row + [pad_id] * room, dtype=np.int32))
            labels.append(np.array(lab_row + [-100] * room, dtype=np.int32))
            ids_row.clear()
            lab_row.clear()

    for ids, labs in examples:
        if len(ids) > block_size:
            raise ConfigError(f"{key}: ({block_size}) is shorter than an example ({len(ids)} tokens)")
        if len(ids_row) + len(ids) > block_size:
            flush()
        ids_row.extend(ids)
        lab_row.extend(labs)
    flush()
    empty = np.zeros((0, block_size), dtype=np.int32)
    return (np.stack(blocks), np.stack(labels)) if blocks else (empty, empty.copy())


def completion_examples(pairs: list[tuple[list[int], list[int]]], block_size: int, tokenizer,
                        key: str = "task.block_size"):
    """(prompt ids, completion ids) pairs -> SFTData: prompt + completion (+ EOS when the
    completion does not end with it) packed into blocks, only the completion scored."""
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    examples = []
    for prompt, completion in pairs:
        completion = list(completion) if completion and completion[-1] == eos else list(completion) + [eos]
        examples.append((list(prompt) + completion, [-100] * len(prompt) + completion))
    blocks, labels = pack_examples(examples, block_size, pad, key)
    return SFTData(blocks=blocks, labels=labels)
