"""Batched per-string log-likelihood under a causal LM.

What is scored: each item is `prompt + body + suffix` (opening tag, the string's symbol
tokens, closing tag). The scored tokens are the body's tokens and the suffix's tokens, each
predicted from everything before it; the prompt's tokens are context only. So

    nll            = - sum over scored tokens of log p(token | prefix)   (nats)
    n_tokens       = len(body) + len(suffix)
    ppl            = exp(nll / n_tokens)           (per-token perplexity, as the reference)
    nll_per_symbol = nll / max(len(body), 1)        (symbols are single tokens by construction,
                                                     so len(body) is the number of symbols)

Batching: items are sorted by length (longest first, so memory peaks on the first batch) and
right-padded; padded positions are masked out of attention and out of the loss. With right
padding, real tokens keep positions 0..n-1, exactly as when scored alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _device(model) -> torch.device:
    return next(model.parameters()).device


def score_strings(model, prompt_ids: list[int], bodies: list[list[int]], suffix_ids: list[int],
                  batch_size: int = 64) -> list[dict]:
    """Score every body (with the suffix) given the prompt; results in input order."""
    prompt, suffix = list(prompt_ids), list(suffix_ids)
    if not prompt:
        raise ValueError("score_strings: prompt_ids must be non-empty (the first scored token needs a context)")
    order = sorted(range(len(bodies)), key=lambda i: -len(bodies[i]))
    results: list[dict | None] = [None] * len(bodies)
    device = _device(model)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                seqs = [prompt + list(bodies[i]) + suffix for i in idx]
                nll = _batch_nll(model, seqs, len(prompt), device)
                for k, i in enumerate(idx):
                    n_tokens = len(bodies[i]) + len(suffix)
                    total = float(nll[k])
                    results[i] = {
                        "nll": total,
                        "n_tokens": n_tokens,
                        "ppl": math.exp(total / n_tokens) if n_tokens else float("nan"),
                        "nll_per_symbol": total / max(len(bodies[i]), 1),
                    }
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]


def _batch_nll(model, seqs: list[list[int]], n_prompt: int, device) -> torch.Tensor:
    """Summed NLL of tokens n_prompt.. of each (right-padded) sequence: float64 [batch]."""
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)  # pad id is irrelevant: masked
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s)
        mask[r, :len(s)] = 1
    ids, mask = ids.to(device), mask.to(device)
    # Position t predicts token t+1: keep the positions that predict a scored (non-pad) token.
    scored = mask[:, n_prompt:].bool()
    targets = ids[:, n_prompt:][scored]
    rows = torch.arange(len(seqs), device=device)[:, None].expand_as(scored)[scored]
    hidden, head = _hidden_and_head(model, ids, mask)
    if head is None:  # the model's own logits (any transform it applies stays in)
        logits = hidden[:, n_prompt - 1:-1][scored]
        token_nll = _chunked_nll(logits, targets, lambda x: x)
    else:
        token_nll = _chunked_nll(hidden[:, n_prompt - 1:-1][scored], targets, head)
    out = torch.zeros(len(seqs), dtype=torch.float64, device=device)
    return out.index_add_(0, rows, token_nll.double()).cpu()


def _hidden_and_head(model, ids, mask):
    """(final hidden states, output projection) when logits are exactly head(hidden), else
    (logits, None). Projecting only the scored positions, in cache-sized chunks, is what
    makes scoring fast: with a 49k vocabulary the output layer and its softmax dominate."""
    cfg = getattr(model, "config", None)
    plain_head = not any(getattr(cfg, k, None) for k in ("final_logit_softcapping", "logit_scale"))
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if plain_head and decoder is not None and head is not None and decoder is not model:
        return decoder(input_ids=ids, attention_mask=mask).last_hidden_state, head
    return model(input_ids=ids, attention_mask=mask).logits, None


def _chunked_nll(x: torch.Tensor, targets: torch.Tensor, project) -> torch.Tensor:
    """-log softmax(project(x))[target] per row, in row chunks of ~16 MB of float32 logits
    on CPU (log-softmax over a block that stays in cache is ~3x faster than over one big one)."""
    vocab_guess = 50_000
    chunk = max(1, (2**22 if x.device.type == "cpu" else 2**28) // vocab_guess)
    out = []
    for i in range(0, x.shape[0], chunk):
        logits = project(x[i:i + chunk]).float()
        out.append(F.cross_entropy(logits, targets[i:i + chunk], reduction="none"))
    return torch.cat(out) if out else x.new_zeros(0, dtype=torch.float32)
