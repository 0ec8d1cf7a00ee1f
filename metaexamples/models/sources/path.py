"""source: path: any local Hugging Face checkpoint folder (`model.path`), ours included. A
`model.path` given with any other causal-LM source loads through here too."""

from __future__ import annotations

from pathlib import Path

from metaexamples.errors import ConfigError
from metaexamples.models.hf_files import from_local, local_tokenizer
from metaexamples.models.sources import ModelSource


class LocalPath(ModelSource):
    name = "path"

    @classmethod
    def load_tokenizer(cls, model_cfg, cache_root: Path):
        if not model_cfg.get("path"):
            raise ConfigError("model.path: required for model=local (model.path=<checkpoint folder>)")
        return local_tokenizer(model_cfg.path)

    @classmethod
    def load_model(cls, model_cfg, tokenizer, cache_root: Path, seed: int):
        from transformers import AutoModelForCausalLM

        if not model_cfg.get("path"):
            raise ConfigError("model.path: required for model=local (model.path=<checkpoint folder>)")
        return from_local(model_cfg.path, AutoModelForCausalLM, "model")
