"""Diversity of a set of samples (shared metrics, any task, any method).

Units: a sample is its completion's tokens with the task's stop sequence and EOS removed (for a
grammar, the symbols generated after the seed symbols, one token each). All three metrics
below read tokens, so they mean the same on every task and tokenizer.

- Distinct-n: pooled unique n-grams / all n-grams, over a group of samples (the samples of one
  prompt, or all samples of a run: "corpus"). A sample shorter than n adds no n-gram; a group
  with no n-gram at all has Distinct-n None.
- Self-BLEU: for each sample, sacrebleu's sentence BLEU (4-gram, `exp` smoothing, effective
  order) of that sample as hypothesis against the other samples of its prompt as references
  (the hypothesis is excluded from its own references), on a 0-1 scale; a prompt's Self-BLEU is
  the mean over its samples. Tokens are written as space-separated ids and sacrebleu's own
  tokenizer is off (tokenize="none"), so n-grams are token n-grams. Higher = more alike.
- Semantic diversity: the model's own representation of each sample, the final hidden state
  mean-pooled over the completion's tokens (prompt excluded: it is shared), then the mean
  pairwise cosine distance 1 - cos(u_i, u_j) over the i != j pairs of a prompt's samples.
  Computed as 1 - (|sum u|^2 - n) / (n(n-1)) with unit vectors u, so memory is O(n * hidden)
  for any n, and the forward passes run in batches of `batch_size` samples.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def ngrams(tokens: Sequence[int], n: int) -> list[tuple]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(samples: Sequence[Sequence[int]], n: int) -> float | None:
    """Pooled unique n-grams / all n-grams over `samples` (None if there is no n-gram)."""
    grams = [g for s in samples for g in ngrams(list(s), n)]
    return len(set(grams)) / len(grams) if grams else None


def self_bleu(samples: Sequence[Sequence[int]]) -> float | None:
    """Mean over samples of sentence BLEU (0-1) against the group's other samples; None for
    fewer than two samples."""
    from sacrebleu.metrics import BLEU

    if len(samples) < 2:
        return None
    bleu = BLEU(tokenize="none", effective_order=True)
    texts = [" ".join(map(str, s)) for s in samples]
    scores = []
    for i, hyp in enumerate(texts):
        refs = texts[:i] + texts[i + 1:]
        scores.append(bleu.sentence_score(hyp, refs).score / 100.0 if hyp else 0.0)
    return float(np.mean(scores))


def mean_pairwise_cosine_distance(vectors: np.ndarray) -> float | None:
    """Mean of 1 - cos(v_i, v_j) over ordered pairs i != j, in O(n * d) memory."""
    v = np.asarray(vectors, dtype=np.float64)
    n = len(v)
    if n < 2:
        return None
    u = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    total = u.sum(axis=0)
    mean_cos = (float(total @ total) - float((u * u).sum())) / (n * (n - 1))
    return 1.0 - mean_cos


def completion_embeddings(model, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                          batch_size: int, pad_id: int) -> np.ndarray:
    """[N, hidden] float32: the final hidden state mean-pooled over each completion's tokens
    (an empty completion: the prompt's last token), in batches of batch_size right-padded rows.
    The model's own decoder (no LM head)."""
    import torch

    device = next(model.parameters()).device
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    out = []
    model.eval()
    for start in range(0, len(prompts), batch_size):
        rows = [list(p) + list(c) for p, c in zip(prompts[start:start + batch_size],
                                                  completions[start:start + batch_size])]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        pool = torch.zeros((len(rows), width))
        for i, (r, p, c) in enumerate(zip(rows, prompts[start:], completions[start:])):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
            pool[i, len(p):len(r)] = 1.0
            if len(c) == 0:  # nothing generated: pool the prompt's last token
                pool[i, len(p) - 1] = 1.0
        with torch.inference_mode():
            hidden = decoder(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state.float()
        pool = pool.to(device)
        out.append(((hidden * pool[..., None]).sum(1) / pool.sum(1, keepdim=True)).cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), dtype=np.float32)


__all__ = ["completion_embeddings", "distinct_n", "mean_pairwise_cosine_distance", "ngrams", "self_bleu"]
