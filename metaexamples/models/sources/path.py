"""source: path: any local Hugging Face checkpoint folder (`model.path`), ours included. A
`model.path` given with any other causal-LM source loads through here too."""

from __future__ import annotations

from pathlib import Path

from metaexamples.data.cache import cached_sha256
from metaexamples.errors import ConfigError
from metaexamples.models.hf_files import from_local, local_tokenizer
from metaexamples.models.sources import ModelSource


WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.gguf")


class LocalPath(ModelSource):
    name = "path"

    @classmethod
    def weights(cls, model_cfg) -> dict:
        folder = Path(model_cfg.path)
        files = sorted({p for pattern in WEIGHT_FILES for p in folder.glob(pattern) if p.is_file()})
        return {"source": "path", "path": str(folder.resolve()),
                "sha256": {p.name: cached_sha256(p, p.stat()) for p in files}}

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
