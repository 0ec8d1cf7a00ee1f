"""source: hub: `from_pretrained(model.hf_id)` from the Hugging Face hub (OLMo-1B); offline,
only the hub's local cache is tried."""

from __future__ import annotations

from pathlib import Path

from metaexamples.models.hf_files import from_hub
from metaexamples.models.sources import ModelSource


class Hub(ModelSource):
    name = "hub"
    pretrained = True

    @classmethod
    def load_tokenizer(cls, model_cfg, cache_root: Path):
        from transformers import AutoTokenizer

        return from_hub(model_cfg.hf_id, AutoTokenizer)

    @classmethod
    def load_model(cls, model_cfg, tokenizer, cache_root: Path, seed: int):
        from transformers import AutoModelForCausalLM

        return from_hub(model_cfg.hf_id, AutoModelForCausalLM)
