"""Schema of task=numeric (conf/task/numeric.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from metaexamples.schemas import TaskConfig


@dataclass
class NumericSizes:
    """Split sizes overriding the preset's (null = the preset's): task.sizes.train=500."""

    train: Optional[int] = None
    test: Optional[int] = None  # every test split (a split's own key below wins)
    test_id: Optional[int] = None
    test_ood_magnitude: Optional[int] = None
    test_ood_length: Optional[int] = None  # arithmetic only
    test_ood_types: Optional[int] = None  # units only


@dataclass
class NumericConfig(TaskConfig):
    dataset: str = "arithmetic"  # arithmetic (+ - * expressions) | units (pint conversions and can_add)
    preset: str = "small"  # small (1,000 train, 200 per test split) | full (10,000 / 1,000)
    # split sizes overriding the preset's, e.g. task.sizes.train=200 (conf/task_preset/numeric_smoke.yaml)
    sizes: NumericSizes = field(default_factory=NumericSizes)
    # evaluation (stage eval_numeric): the test splits to score (null = all of the dataset's)
    eval_splits: Optional[List[str]] = None
    # extra questions to answer and score as split `custom` ("12 + 7 * 3", "3.5 km to mi", "3 m + 2 s")
    questions: List[str] = field(default_factory=list)
