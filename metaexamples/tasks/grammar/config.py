"""Schemas of the grammar task's keys (task.*: how it prompts, samples and evaluates
generation) and of its own config groups: grammar, condition, data, corpus (stored as
schema/<group>/base; conf/task/grammar.yaml puts them in the defaults list)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from metaexamples.schemas import TaskConfig

# The built-in conditions in report order (others sort after them, by name).
CONDITION_ORDER = {"examples": 0, "meta_1pct": 1, "meta_5pct": 2, "meta_10pct": 3}


@dataclass
class GrammarTaskConfig(TaskConfig):
    seed_symbols: int = 0  # prompt = opening tag + first k symbols of a training string
    max_new_tokens: Optional[int] = None  # sampling budget; null = grammar.max_len + closing tag + margin
    n_samples: int = 1000  # eval_gen: samples drawn (and at most this many per length bucket)
    calibration_buckets: int = 5  # eval_gen: log-probability bins of the calibration figure


@dataclass
class GrammarConfig:
    # The label: run name, results.json `grammar`, the data cache folder, sweep report rows.
    # It is the preset's file name (a preset extending another sets its own; the run checks).
    name: str = MISSING
    language: str = MISSING  # registry key of the recognizer class: g1, g2, g3, dyck, copy, anbncn
    tag: str = MISSING  # items are wrapped as <tag> ... </tag>
    min_len: int = 2
    max_len: int = 16
    # "uniform" over allowed lengths, or a {length: weight} map.
    length_dist: Any = "uniform"
    rule: str = ""  # one-line statement of the rule, used by `rule` metaexamples
    params: Dict[str, Any] = field(default_factory=dict)
    # Length generalization: [[lo, hi], ...] inclusive length buckets beyond max_len, in
    # increasing order; each gets a test_long split (data.n_test_long valid + as many invalid).
    eval_lengths: List[Any] = field(default_factory=list)


@dataclass
class ConditionConfig:
    name: str = MISSING
    meta_fraction: float = 0.0  # share of synthetic items that are metaexamples
    meta_kinds: Dict[str, float] = field(
        default_factory=lambda: {"judgment": 0.4, "contrast": 0.4, "rule": 0.2}
    )


@dataclass
class DataConfig:
    num_symbols: int = 5
    num_foreign: int = 3  # extra qualifying tokens outside the alphabet (foreign-symbol negatives)
    prefer_non_ascii: bool = True
    ascii_fallback: bool = True
    n_train_items: int = 20000  # synthetic items (examples + metaexamples) in the stream
    n_eval: int = 500  # eval split: valid + invalid each
    n_test: int = 1000  # test_valid and test_invalid each
    n_test_long: int = 200  # per grammar.eval_lengths bucket: valid and invalid each
    random_negative_fraction: float = 0.2  # share of negatives drawn at random, not edited
    synthetic_mix_ratio: float = 0.1  # share of stream tokens that are synthetic
    block_size: int = 128  # packed training block length in tokens


@dataclass
class CorpusConfig:
    name: str = MISSING  # builtin | text_files | hf
    glob: Optional[str] = None  # text_files
    dataset: Optional[str] = None  # hf
    config: Optional[str] = None  # hf
    split: str = "train"  # hf
    text_field: str = "text"  # hf
    max_docs: Optional[int] = None
