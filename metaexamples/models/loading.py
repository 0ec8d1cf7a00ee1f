"""Model and tokenizer loading: `model.source` names a source in the registry
(metaexamples/models/sources: scratch, gguf, hub, path, numeric); a `model.path` replaces any
causal-LM source with that local checkpoint. A tokenizer is loaded once per process for the
same files (the pipeline, the method and the evaluation all ask for it)."""

from __future__ import annotations

from pathlib import Path

from metaexamples.models.sources import available, source_class
from metaexamples.paths import cache_dir as default_cache_dir

SOURCES = tuple(available())


def _source(model_cfg):
    """The source that loads this config: model.path wins over any causal-LM source."""
    source = source_class(str(model_cfg.source))
    return source_class("path") if model_cfg.get("path") and source.kind == "causal_lm" else source


def model_kind(model_cfg) -> str:
    """What kind of model the config gives ("causal_lm" or "numeric"), from its source."""
    source = str(model_cfg.get("source"))
    return source_class(source).kind if source in SOURCES else "causal_lm"


def check_model_config(model_cfg) -> None:
    """The source's own checks of `model`, before any stage runs."""
    _source(model_cfg).check(model_cfg)


def is_pretrained(model_cfg) -> bool:
    """Whether the configured model is trained already (evaluated as it is, without training)."""
    return source_class(str(model_cfg.source)).pretrained


def evaluated_weights(model_cfg) -> dict:
    """What results.json records as the evaluated weights: any model.path's folder and the
    sha256 of each weights file in it, else what the source reads (a GGUF file, a hub id)."""
    return (source_class("path") if model_cfg.get("path") else source_class(str(model_cfg.source))).weights(model_cfg)


def load_tokenizer(model_cfg, cache_root: Path | None = None):
    """The tokenizer of the configured model."""
    cache_root = Path(cache_root) if cache_root is not None else default_cache_dir()
    return _source(model_cfg).load_tokenizer(model_cfg, cache_root)


def load_model(model_cfg, tokenizer, cache_root: Path | None = None, seed: int = 0):
    """The model of the configured source, in fp32 (mixed precision is the trainer's job)."""
    cache_root = Path(cache_root) if cache_root is not None else default_cache_dir()
    return _source(model_cfg).load_model(model_cfg, tokenizer, cache_root, seed)
