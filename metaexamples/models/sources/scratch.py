"""source: scratch: an OLMo (OlmoConfig(**model.arch)) from random weights, with a tokenizer
from the offline SmolLM2 GGUF (`model.tokenizer: smollm2`), a local folder or the hub."""

from __future__ import annotations

from pathlib import Path

from metaexamples.errors import ConfigError, check_key
from metaexamples.models.hf_files import (SMOLLM2_FILE, SMOLLM2_PACKAGE, cached_gguf_tokenizer, from_hub,
                                          local_tokenizer)
from metaexamples.models.sources import ModelSource


class Scratch(ModelSource):
    name = "scratch"

    @classmethod
    def check(cls, model_cfg) -> None:
        check_arch(model_cfg.arch)

    @classmethod
    def load_tokenizer(cls, model_cfg, cache_root: Path):
        from transformers import AutoTokenizer

        spec = model_cfg.get("tokenizer") or "smollm2"
        if spec == "smollm2":
            return cached_gguf_tokenizer(SMOLLM2_PACKAGE, SMOLLM2_FILE, cache_root)
        return local_tokenizer(spec) if Path(spec).exists() else from_hub(spec, AutoTokenizer)

    @classmethod
    def load_model(cls, model_cfg, tokenizer, cache_root: Path, seed: int):
        import torch
        from omegaconf import OmegaConf
        from transformers import AutoModelForCausalLM, OlmoConfig

        arch = OmegaConf.to_container(model_cfg.arch, resolve=True) if OmegaConf.is_config(model_cfg.arch) \
            else dict(model_cfg.arch or {})
        try:
            config = OlmoConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                                else tokenizer.eos_token_id, **arch)
        except TypeError as exc:
            raise ConfigError(f"model.arch: {exc}") from None
        # Same seed, same initial weights, whatever ran before in this process.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return AutoModelForCausalLM.from_config(config)


def check_arch(arch) -> None:
    """model.arch (OlmoConfig kwargs of a model from scratch): sizes positive, heads dividing
    the hidden size (OlmoConfig accepts hidden_size=65 with 4 heads and fails, or worse, later)."""
    sizes = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
             "max_position_embeddings")
    for key in sizes:
        value = arch.get(key)
        if value is not None:
            check_key(isinstance(value, int) and not isinstance(value, bool) and value > 0, f"model.arch.{key}",
                      f"must be a positive integer, got {value!r}")
    hidden, heads = arch.get("hidden_size"), arch.get("num_attention_heads")
    if hidden is not None and heads is not None:
        check_key(hidden % heads == 0, "model.arch.hidden_size",
                  f"({hidden}) must be a multiple of model.arch.num_attention_heads ({heads})")
    kv = arch.get("num_key_value_heads")
    if kv is not None and heads is not None:
        check_key(heads % kv == 0, "model.arch.num_key_value_heads",
                  f"({kv}) must divide model.arch.num_attention_heads ({heads})")
