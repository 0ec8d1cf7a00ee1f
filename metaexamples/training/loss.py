"""Causal-LM loss without materialising the full logits.

With a 49k-token vocabulary the output layer dominates a small model's step: a batch of
2,048 tokens has 100M logits (400 MB in fp32), allocated, page-faulted and freed every step.
`chunked_lm_loss` computes mean cross-entropy of head(hidden) over row chunks that stay
small, and computes the gradients for hidden and head weight chunk by chunk in the same
pass (the backward then only hands them out). Same value and gradients as
`F.cross_entropy(hidden @ weight.T, targets)`, up to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn

from metaexamples.models.head import plain_linear_head

IGNORE = -100


def _chunk_rows(vocab: int, device: torch.device) -> int:
    # ~8 MB of fp32 logits per chunk on CPU (cache-friendly, reused by malloc); 1 GB on GPU.
    budget = 2**21 if device.type == "cpu" else 2**28
    return max(1, budget // vocab)


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, rows, with_grad):
        n = hidden.shape[0]
        count = (targets != IGNORE).sum().clamp(min=1)
        # Gradients are computed here, in the forward pass, so only when autograd will ask for
        # them (not under no_grad, e.g. the in-training evaluation).
        grad_h = torch.empty_like(hidden) if with_grad and hidden.requires_grad else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) \
            if with_grad and weight.requires_grad else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for i in range(0, n, rows):
            h, t = hidden[i:i + rows], targets[i:i + rows]
            logits = (h @ weight.t()).float()
            keep = t != IGNORE
            t = t.clamp(min=0)
            # One exp pass serves both the loss (log-sum-exp) and the gradient (softmax).
            top = logits.amax(dim=-1, keepdim=True)
            picked = logits.gather(1, t[:, None]).squeeze(1)
            probs = logits.sub_(top).exp_()
            sums = probs.sum(dim=-1)
            total += ((sums.log() + top.squeeze(1) - picked) * keep).sum()
            if grad_h is not None or grad_w is not None:
                probs.div_(sums[:, None])  # softmax
                probs[torch.arange(len(t), device=t.device), t] -= 1.0
                probs.mul_((keep / count)[:, None])
                g = probs.to(h.dtype)
                if grad_h is not None:
                    grad_h[i:i + rows] = g @ weight.to(h.dtype)
                if grad_w is not None and h.dtype == grad_w.dtype:
                    grad_w.addmm_(g.t(), h)  # in place: no [vocab x d] temporary per chunk
                elif grad_w is not None:
                    grad_w.add_((g.t() @ h).float())
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return total / count

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        gh = grad_h * grad_out.to(grad_h.dtype) if grad_h is not None else None
        gw = (grad_w * grad_out).to(ctx.weight_dtype) if grad_w is not None else None
        return gh, gw, None, None, None


def chunked_lm_loss(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (hidden @ weight.T) against targets; hidden [N, d], targets [N]."""
    return _ChunkedLinearCrossEntropy.apply(hidden, weight, targets, _chunk_rows(weight.shape[0], hidden.device),
                                            torch.is_grad_enabled())


class CausalLMLoss(nn.Module):
    """The SFT objective. Wraps a Hugging Face causal LM: forward(input_ids, labels=None) ->
    mean next-token loss over the block's scored positions.

    Uses the chunked loss when the model's logits are exactly lm_head(final hidden state)
    (OLMo, Llama, SmolLM2...); otherwise the model's own loss. The wrapper is what accelerate
    prepares (DDP/FSDP), so the forward pass goes through the distributed wrapper.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        # FSDP's transformer-based wrap looks for the decoder-layer classes on the prepared module.
        self._no_split_modules = getattr(model, "_no_split_modules", None)
        self.chunked = plain_linear_head(model)[0] is not None

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """labels: None = every next token is scored; else -100 marks positions not scored
        (e.g. the prompt of a prompt/answer pair)."""
        labels = input_ids if labels is None else labels
        if not self.chunked:
            return self.model(input_ids=input_ids, labels=labels).loss
        hidden = self.model.get_decoder()(input_ids=input_ids).last_hidden_state
        weight = self.model.get_output_embeddings().weight
        return chunked_lm_loss(hidden[:, :-1].reshape(-1, hidden.shape[-1]), weight, labels[:, 1:].reshape(-1))
