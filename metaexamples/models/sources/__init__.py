"""Model sources (`model.source`): where a model and its tokenizer come from, one module each,
found by the registry like tasks and methods. A new source is one module here with a
`ModelSource` subclass that sets `name`, plus the model YAMLs that use it.

A source gives the tokenizer and the model of a `model` config, and the *kind* of model it
gives: "causal_lm" (Hugging Face causal LMs, which `model.path` can always replace with a
local checkpoint) or "numeric" (task=numeric's own models). A task declares the kinds it
takes (`Task.model_kinds`); config.validate compares the two without naming any task.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from metaexamples.registry import Registry


class ModelSource:
    name: ClassVar[str] = ""
    kind: ClassVar[str] = "causal_lm"
    pretrained: ClassVar[bool] = False  # its model is trained already: evaluated as it is, no train stage needed

    @classmethod
    def check(cls, model_cfg) -> None:
        """Before any stage runs: refuse, in one line naming the key, settings this source
        cannot build a model from."""

    @classmethod
    def weights(cls, model_cfg) -> dict:
        """What results.json records as the evaluated weights: the source, where the weights
        come from and the sha256 of each weights file (none where nothing local is read)."""
        return {"source": cls.name, "path": model_cfg.get("hf_id"), "sha256": {}}

    @classmethod
    def load_tokenizer(cls, model_cfg, cache_root: Path):
        raise NotImplementedError

    @classmethod
    def load_model(cls, model_cfg, tokenizer, cache_root: Path, seed: int):
        """The model in fp32 (mixed precision is the trainer's job), initialised from `seed`
        where it is built rather than loaded."""
        raise NotImplementedError


REGISTRY = Registry(ModelSource, __name__, "model.source", "model source")


def source_class(name: str) -> type[ModelSource]:
    return REGISTRY.get(name)


def available() -> list[str]:
    return REGISTRY.available()


__all__ = ["ModelSource", "available", "source_class"]
