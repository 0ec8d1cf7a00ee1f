"""Configs of the two numeric models. Both extend `LlamaConfig` (the backbone is a small Llama)
with what makes the saved folder self-contained: the character vocabulary and, for the hybrid,
the unit vocabulary and the readout."""

from __future__ import annotations

from transformers import LlamaConfig

from metaexamples.models.numeric.fluxem_codec import DIM
from metaexamples.models.numeric.text import UNIT_NAMES
from metaexamples.models.numeric.tokenizer import DEFAULT_CHARS, SPECIALS

READOUTS = ("regression", "log_linear", "algebraic", "fluxem")
ENCODERS = ("features", "fluxem")  # the hybrid's number encoder: learned MLP on 6 features | fixed fluxem 128-d
ANSWER_ORDERS = ("normal", "reversed")  # token-only: answer digits most- or least-significant first


def default_units() -> list[str]:
    return list(UNIT_NAMES)


class NumericTokenOnlyConfig(LlamaConfig):
    """Character-level causal LM: reads "<bos>question=" and writes the answer text + <eos>."""

    model_type = "numeric_token_only"
    chars: list | None = None
    max_answer_len: int = 64
    answer_order: str = "normal"  # "reversed": the answer's number written least-significant digit first
    digit_positions: bool = False  # Abacus: each digit also gets an embedding of its place in its number
    max_digits: int = 32  # digit places with their own embedding (further ones share the last)
    dropout: float = 0.0  # on the input embeddings (attention_dropout too)

    def __post_init__(self, **kwargs):
        if self.chars is None:
            self.chars = list(DEFAULT_CHARS)
        self.vocab_size = len(SPECIALS) + len(self.chars)
        self.pad_token_id, self.bos_token_id, self.eos_token_id = 0, 1, 2
        super().__post_init__(**kwargs)


class NumericHybridConfig(LlamaConfig):
    """Same backbone and characters; each numeric span is one position fed by a numeric encoder.

    readout: "regression" (default: sign classes + log10|answer| regression from the final
    position, a learned numeric head), "log_linear" (the same regression with log10|answer| =
    beta + sum_i alpha_i log10|x_i|, alpha and beta learned) or "algebraic" (per-number role
    classification, then the answer computed exactly from the parsed spans and a fitted unit
    table: a structured readout, not a learned numeric head)."""

    model_type = "numeric_hybrid"
    chars: list | None = None
    units: list | None = None
    readout: str = "regression"
    encoder: str = "features"  # "fluxem": numbers and units enter as fluxem's fixed 128-d embeddings
    dropout: float = 0.0  # on the input embeddings (attention_dropout too)
    num_features: int = 6
    latent_dimensions: int = 8  # latent unit kinds for the can_add comparison

    def __post_init__(self, **kwargs):
        if self.encoder == "fluxem":
            self.num_features = DIM
        if self.chars is None:
            self.chars = list(DEFAULT_CHARS)
        if self.units is None:
            self.units = default_units()
        self.vocab_size = len(SPECIALS) + len(self.chars)
        self.pad_token_id, self.bos_token_id, self.eos_token_id = 0, 1, 2
        super().__post_init__(**kwargs)
