"""The numeric models of task=numeric: a character-level token-only transformer and a
FluxEM-like hybrid that feeds each number as one vector (see `token_only` and `hybrid`).

Uniform interface (what the training loop and evaluation call):

- `build_numeric_model(name, arch, seed) -> model` (`model.numeric_tokenizer` attached)
- `collate(model, problems) -> dict of tensors` (a teacher-forcing training batch)
- `training_loss(model, batch) -> scalar tensor`
- `predict(model, problems, batch_size) -> [{"prediction", "prediction_text", "unit"}]`

Both are `PreTrainedModel`s registered with the Auto classes (`AutoConfig`; the token-only one
with `AutoModelForCausalLM`, the hybrid with `AutoModel`), so `save_pretrained(folder)` then
`load_numeric_model(folder)` (or the Auto classes) gives the same model; the character
tokenizer is written beside it (`numeric_tokenizer.json`) and rebuilt from the config.
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from metaexamples.errors import ConfigError
from metaexamples.models.numeric import hybrid, token_only
from metaexamples.models.numeric.config import (ANSWER_ORDERS, ENCODERS, READOUTS, NumericHybridConfig,
                                                NumericTokenOnlyConfig)
from metaexamples.models.numeric.hybrid import NumericHybridModel
from metaexamples.models.numeric.numbers import find_number_spans, number_features
from metaexamples.models.numeric.tokenizer import CharTokenizer
from metaexamples.models.numeric.token_only import NumericTokenOnlyForCausalLM

AutoConfig.register("numeric_token_only", NumericTokenOnlyConfig, exist_ok=True)
AutoConfig.register("numeric_hybrid", NumericHybridConfig, exist_ok=True)
AutoModelForCausalLM.register(NumericTokenOnlyConfig, NumericTokenOnlyForCausalLM, exist_ok=True)
AutoModel.register(NumericHybridConfig, NumericHybridModel, exist_ok=True)

MODEL_NAMES = ("numeric_token_only", "numeric_hybrid")

# Defaults: ~0.8M parameters (hidden 128, 4 layers, 4 heads, MLP 384).
DEFAULT_ARCH = {"hidden_size": 128, "num_layers": 4, "num_heads": 4, "intermediate_size": 384,
                "max_position_embeddings": 256}
TOKEN_ONLY_ARCH = {"max_answer_len": 64, "answer_order": "normal", "digit_positions": False}
HYBRID_ARCH = {"readout": "regression", "encoder": "features"}
CHOICES = {"readout": READOUTS, "encoder": ENCODERS, "answer_order": ANSWER_ORDERS}


def _check_arch(name: str, arch: dict | None) -> dict:
    allowed = {**DEFAULT_ARCH, "dropout": 0.0, **(TOKEN_ONLY_ARCH if name == "numeric_token_only" else HYBRID_ARCH)}
    merged = dict(allowed)
    for key, value in dict(arch or {}).items():
        if key not in allowed:
            raise ConfigError(f"model.arch.{key}: unknown key for model={name} (known: {', '.join(sorted(allowed))})")
        merged[key] = value
    for key, value in merged.items():
        if key in CHOICES:
            if value not in CHOICES[key]:
                raise ConfigError(f"model.arch.{key}: unknown {key} {value!r} (choose one of {', '.join(CHOICES[key])})")
        elif key == "dropout":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"model.arch.dropout: must be a number in [0, 1), got {value!r}")
        elif key == "digit_positions":
            if not isinstance(value, bool):
                raise ConfigError(f"model.arch.digit_positions: must be true or false, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"model.arch.{key}: must be a positive integer, got {value!r}")
    if merged.get("readout") == "fluxem" and merged.get("encoder") != "fluxem":
        raise ConfigError("model.arch.readout: the fluxem readout composes the operands' fluxem embeddings; it needs "
                          "model.arch.encoder=fluxem (model=numeric_fluxem)")
    if merged["hidden_size"] % merged["num_heads"] or (merged["hidden_size"] // merged["num_heads"]) % 2:
        raise ConfigError(f"model.arch.num_heads: hidden_size {merged['hidden_size']} must split into "
                          f"{merged['num_heads']} heads of even size")
    return merged


def build_numeric_model(name: str, arch: dict | None, seed: int):
    """A freshly initialised numeric model (`model=numeric_token_only|numeric_hybrid`), seeded.

    arch keys: hidden_size, num_layers, num_heads, intermediate_size, max_position_embeddings;
    dropout (input embeddings and attention); token-only: max_answer_len, answer_order (normal |
    reversed), digit_positions (Abacus digit-place embeddings); hybrid: encoder ("features" |
    "fluxem") and readout ("regression", the default: a learned numeric head; "log_linear": that
    regression anchored on the operands' log magnitudes; "algebraic": a structured readout that
    leaves the arithmetic to exact computation; "fluxem": the same structure, the values
    composed and decoded by fluxem)."""
    if name not in MODEL_NAMES:
        raise ConfigError(f"model: unknown numeric model {name!r} (choose one of {', '.join(MODEL_NAMES)})")
    a = _check_arch(name, arch)
    common = dict(hidden_size=a["hidden_size"], num_hidden_layers=a["num_layers"],
                  num_attention_heads=a["num_heads"], num_key_value_heads=a["num_heads"],
                  intermediate_size=a["intermediate_size"], max_position_embeddings=a["max_position_embeddings"],
                  tie_word_embeddings=False, dropout=float(a["dropout"]), attention_dropout=float(a["dropout"]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if name == "numeric_token_only":
            model = NumericTokenOnlyForCausalLM(NumericTokenOnlyConfig(
                **common, max_answer_len=a["max_answer_len"], answer_order=a["answer_order"],
                digit_positions=a["digit_positions"]))
        else:
            model = NumericHybridModel(NumericHybridConfig(**common, readout=a["readout"], encoder=a["encoder"]))
    return model


def _impl(model):
    if isinstance(model, NumericTokenOnlyForCausalLM):
        return token_only
    if isinstance(model, NumericHybridModel):
        return hybrid
    raise TypeError(f"not a numeric model: {type(model).__name__}")


def collate(model, problems: list[dict]) -> dict:
    """Teacher-forcing batch (CPU tensors) for `training_loss`."""
    return _impl(model).collate(model, problems)


def training_loss(model, batch: dict) -> torch.Tensor:
    """Token-only: next-token CE on the answer; hybrid: CE on its heads + numeric loss."""
    device = next(model.parameters()).device
    return _impl(model).training_loss(model, {k: v.to(device) for k, v in batch.items()})


def predict(model, problems: list[dict], batch_size: int = 64) -> list[dict]:
    """Batched, no-gradient answers: [{"prediction": float|bool|None, "prediction_text", "unit"}]."""
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"eval.batch_size: must be a positive integer, got {batch_size!r}")
    return _impl(model).predict(model, problems, batch_size)


def load_numeric_model(folder):
    """Load either numeric model from a `save_pretrained` folder (dispatch on config.model_type)."""
    config = AutoConfig.from_pretrained(folder)
    if isinstance(config, NumericTokenOnlyConfig):
        return NumericTokenOnlyForCausalLM.from_pretrained(folder)
    if isinstance(config, NumericHybridConfig):
        return NumericHybridModel.from_pretrained(folder)
    raise ConfigError(f"model.path: {folder} is not a numeric model (model_type {config.model_type!r})")


__all__ = [
    "build_numeric_model", "collate", "training_loss", "predict", "load_numeric_model",
    "NumericTokenOnlyConfig", "NumericTokenOnlyForCausalLM", "NumericHybridConfig", "NumericHybridModel",
    "CharTokenizer", "find_number_spans", "number_features", "MODEL_NAMES",
]
