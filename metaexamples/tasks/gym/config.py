"""Schema of task=gym (conf/task/gym.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from metaexamples.tasks.prompts.qa import QAConfig


@dataclass
class GymConfig(QAConfig):
    dataset: str = "basic_arithmetic"  # any Reasoning Gym dataset
    # a weighted mixture {name: weight} (Reasoning Gym's composite dataset), replacing dataset; untyped
    # so that task.datasets={a: 1.0, b: 0.5} replaces it whole (a typed dict refuses new keys)
    datasets: Any = None
    config: Any = None  # the dataset's keys {key: value}; a mixture: {name: {key: value}}
    # difficulty: Reasoning Gym curriculum levels [lo, hi] of train/val/test; null = task.config as given
    levels: Optional[List[int]] = field(default_factory=lambda: [0, 1])
    ood_levels: Optional[List[int]] = None  # [lo, hi] above levels; null = the level above levels
    system_prompt: str = "direct"  # a name in reasoning_gym.utils.SYSTEM_PROMPTS (all ask for <answer> tags)
    n_train: int = 1000
    n_val: int = 100
    n_test: int = 100
    n_ood: int = 100
    max_new_tokens: int = 32
