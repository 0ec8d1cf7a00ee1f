"""Model and tokenizer loading: tiny (from scratch), GGUF (offline SmolLM2), hub, local path."""

from metaexamples.models.loading import load_model, load_tokenizer

__all__ = ["load_model", "load_tokenizer"]
