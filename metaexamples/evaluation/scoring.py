"""Batched per-string log-likelihood under a causal LM.

What is scored: each item is `prompt + body + suffix` (opening tag, the string's symbol
tokens, closing tag). The scored tokens are the body's tokens and the suffix's tokens, each
predicted from everything before it; the prompt's tokens are context only. So

    nll            = - sum over scored tokens of log p(token | prefix)   (nats)
    n_tokens       = len(body) + len(suffix)
    ppl            = exp(nll / n_tokens)           (per-token perplexity, as the reference)
    nll_per_symbol = nll / max(len(body), 1)        (symbols are single tokens by construction,
                                                     so len(body) is the number of symbols)

Where the time goes, and what we do about it. Every exact method pays, per scored token, a
forward position of the transformer body and the output layer's normaliser (log-sum-exp over
a 49k vocabulary); the body dominates on real models, the normaliser on `tiny`. Both depend
only on the prefix, and strings over a small alphabet share many prefixes (all share the
opening tag, most their first symbols). So when the logits are exactly `hidden @ W.T` (a
plain linear head) and the attention takes a 4D mask (sdpa, eager):
- the distinct prefixes form a tree (prefix_tree.py) and each runs through the body once,
  with tree attention (a node sees itself and its ancestors, at its depth as position):
  ~45% fewer body positions than one row per string on the default test set, and no padding
  rows; leaves (every string's last token) predict nothing and are not run;
- log p(token | prefix) = hidden . W[token] - logsumexp(hidden @ W.T): one dot product per
  scored token, and one normaliser per distinct prefix, computed in cache-sized blocks
  without ever building the [rows, vocabulary] logits.
Otherwise (soft-capped logits, a biased head, flash attention, ...) strings are batched
(longest first, right-padded, padding masked) through the model's own logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from metaexamples.evaluation import prefix_tree
from metaexamples.models.head import plain_linear_head

CPU_BLOCK = (1024, 1024)  # rows x vocabulary entries of logits per block on CPU (4 MB)
# Tree nodes per chunk. Tree attention is dense over a chunk (cost ~ chunk^2): 256 keeps it
# a few % of the body's cost on SmolLM2 while each chunk still shares most of its prefixes.
CHUNK_NODES = 256
TREE_ATTENTION = ("sdpa", "eager")  # implementations that take a custom 4D mask as is


def _device(model) -> torch.device:
    return next(model.parameters()).device


def score_strings(model, prompt_ids: list[int], bodies: list[list[int]], suffix_ids: list[int],
                  batch_size: int = 64) -> list[dict]:
    """Score every body (with the suffix) given the prompt; results in input order.
    `batch_size` strings' worth of tokens go through the model per forward."""
    prompt, suffix = list(prompt_ids), list(suffix_ids)
    if not prompt:
        raise ValueError("score_strings: prompt_ids must be non-empty (the first scored token needs a context)")
    seqs = [prompt + list(body) + suffix for body in bodies]
    decoder, weight = plain_linear_head(model)
    attention = getattr(getattr(model, "config", None), "_attn_implementation", None)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if weight is not None and attention in TREE_ATTENTION:
                additive = None if attention == "sdpa" else next(decoder.parameters()).dtype
                nll = _tree_nll(decoder, weight, seqs, len(prompt), batch_size, additive)
            else:
                nll = _batched_logits_nll(model, seqs, len(prompt), batch_size)
    finally:
        model.train(was_training)
    results = []
    for body, total in zip(bodies, nll.tolist()):
        n_tokens = len(body) + len(suffix)
        results.append({
            "nll": total,
            "n_tokens": n_tokens,
            "ppl": math.exp(total / n_tokens) if n_tokens else float("nan"),
            "nll_per_symbol": total / max(len(body), 1),
        })
    return results


def tree_plan(seqs: list[list[int]], batch_size: int) -> tuple[prefix_tree.PrefixTree, list[list]]:
    """The prefix tree of `seqs` and its chunks grouped into forwards of about `batch_size`
    strings' worth of tokens. A node runs if it has children (its hidden state predicts them);
    that set is closed under parents, as preorder chunks need. Leaves never run."""
    tree = prefix_tree.build_tree(seqs)
    order = prefix_tree.preorder(tree, [bool(c) for c in tree.children])
    chunks = prefix_tree.chunks(tree, order, CHUNK_NODES)
    mean_len = sum(map(len, seqs)) / max(len(seqs), 1)
    per_forward = max(1, round(batch_size * mean_len / CHUNK_NODES))
    return tree, [chunks[i:i + per_forward] for i in range(0, len(chunks), per_forward)]


def _tree_nll(decoder, weight: torch.Tensor, seqs: list[list[int]], n_prompt: int, batch_size: int,
              additive: torch.dtype | None) -> torch.Tensor:
    """Summed NLL of tokens n_prompt.. of each sequence, float64 [len(seqs)], one body
    position and one normaliser per distinct prefix (`additive`: see forward_inputs)."""
    device = weight.device
    tree, groups = tree_plan(seqs, batch_size)
    logp = torch.zeros(len(tree.token), dtype=torch.float64)  # log p(node's token | parent's prefix)
    for group in groups:
        inputs = {k: v.to(device) for k, v in prefix_tree.forward_inputs(tree, group, additive).items()}
        hidden = decoder(**inputs, use_cache=False).last_hidden_state
        # The run's nodes (not the prepended ancestors, not padding) that predict scored tokens.
        rows, parents = [], []
        for b, chunk in enumerate(group):
            for i in range(chunk.n_context, len(chunk.nodes)):
                node = chunk.nodes[i]
                if tree.depth[node] >= n_prompt - 1:
                    rows.append(b * hidden.shape[1] + i)
                    parents.append(node)
        if not rows:
            continue
        x = hidden.reshape(-1, hidden.shape[-1])[torch.tensor(rows, device=device)]
        lse = logsumexp_of_head(x, weight)
        edge_row = [r for r, p in enumerate(parents) for _ in tree.children[p]]
        edge_child = [c for p in parents for c in tree.children[p]]
        at = torch.tensor(edge_row, device=device)
        targets = torch.tensor([tree.token[c] for c in edge_child], device=device)
        target_logit = (x[at].float() * weight[targets].float()).sum(-1)
        logp[torch.tensor(edge_child)] = (target_logit - lse[at]).double().cpu()
    scored = [(s, node) for s, path in enumerate(tree.paths) for node in path[n_prompt:]]
    seq_of = torch.tensor([s for s, _ in scored], dtype=torch.long)
    node_of = torch.tensor([n for _, n in scored], dtype=torch.long)
    return torch.zeros(len(seqs), dtype=torch.float64).index_add_(0, seq_of, -logp[node_of])


def _batched_logits_nll(model, seqs: list[list[int]], n_prompt: int, batch_size: int) -> torch.Tensor:
    """Summed NLL of tokens n_prompt.. of each sequence from the model's own logits: batches
    sorted longest first (memory peaks on the first), right-padded (real tokens keep positions
    0..n-1, as when scored alone), padding masked out of attention and loss."""
    device = _device(model)
    out = torch.zeros(len(seqs), dtype=torch.float64)
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(seqs[i]) for i in idx)
        ids = torch.zeros(len(idx), width, dtype=torch.long)  # pad id is irrelevant: masked
        mask = torch.zeros(len(idx), width, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
            mask[r, :len(seqs[i])] = 1
        ids, mask = ids.to(device), mask.to(device)
        # Position t predicts token t+1: keep the positions that predict a scored (non-pad) token.
        scored = mask[:, n_prompt:].bool()
        targets = ids[:, n_prompt:][scored]
        rows = torch.arange(len(idx), device=device)[:, None].expand_as(scored)[scored]
        logits = model(input_ids=ids, attention_mask=mask).logits[:, n_prompt - 1:-1][scored]
        token_nll = torch.cat([F.cross_entropy(logits[i:i + 64].float(), targets[i:i + 64], reduction="none")
                               for i in range(0, len(targets), 64)]) if len(targets) else logits.new_zeros(0)
        batch = torch.zeros(len(idx), dtype=torch.float64, device=device).index_add_(0, rows, token_nll.double())
        out[torch.tensor(idx)] = batch.cpu()
    return out


def logsumexp_of_head(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """logsumexp(x @ weight.T, dim=-1) in float32, without the full [rows, vocab] logits.

    On CPU in blocks of CPU_BLOCK (4 MB of logits, cache-resident; ~1.5x faster than one
    log-softmax over whole rows). Each block is summed as exp(logit) with no max-subtraction
    pass (20% less time): exact for logits within float32's exp range; rows outside it (an
    overflow, or a sum too small to be accurate) are redone with torch.logsumexp."""
    vocab = weight.shape[0]
    rows, cols = CPU_BLOCK if x.device.type == "cpu" else (max(1, 2**28 // vocab), vocab)
    # One reused block buffer: a fresh 4 MB tensor per block costs its page faults every time
    # (4% of this function on `tiny`, 1 thread). Half precision is widened before exp, as before.
    buffer = torch.empty(min(rows, x.shape[0]) * cols, dtype=x.dtype, device=x.device) \
        if x.dtype == torch.float32 else None
    out = []
    for i in range(0, x.shape[0], rows):
        xs = x[i:i + rows]
        total = torch.zeros(len(xs), dtype=torch.float32, device=x.device)
        for j in range(0, vocab, cols):
            w = weight[j:j + cols]
            if buffer is not None:
                block = torch.mm(xs, w.T, out=buffer[:len(xs) * len(w)].view(len(xs), len(w))).exp_()
            else:
                block = (xs @ w.T).float().exp_()
            total += block.sum(dim=-1)
        lse = total.log()
        bad = ~torch.isfinite(lse) | (lse < -60)
        if bad.any():
            lse[bad] = torch.logsumexp((xs[bad] @ weight.T).float(), dim=-1)
        out.append(lse)
    return torch.cat(out) if out else x.new_zeros(0, dtype=torch.float32)
