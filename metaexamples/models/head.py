"""What the scorer and the training loss need to know about a model's output layer."""

from __future__ import annotations

import torch


def plain_linear_head(model):
    """(decoder, head weight) when the model's logits are exactly decoder(...) @ weight.T
    (OLMo, Llama, SmolLM2, ...), else (None, None): soft-capped or scaled logits, a biased
    head, or no separate decoder. Callers then fall back to the model's own logits."""
    cfg = getattr(model, "config", None)
    if any(getattr(cfg, k, None) for k in ("final_logit_softcapping", "logit_scale")):
        return None, None
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if decoder is None or decoder is model or not isinstance(head, torch.nn.Linear) or head.bias is not None:
        return None, None
    return decoder, head.weight
