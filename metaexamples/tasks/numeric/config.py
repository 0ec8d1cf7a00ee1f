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
    # What the problems are drawn from (null = the default: metaexamples/tasks/numeric/data.py
    # SPEC_DEFAULTS). arithmetic: operand range of train/test_id, the operations, 1..max_ops
    # operations per expression, operand range of test_ood_magnitude (null = the preset's) and
    # the operation counts of test_ood_length. units: the dimensions, and whether can_add
    # questions are asked at all.
    operands: Optional[List[int]] = None  # [low, high], default [0, 999]
    operations: Optional[List[str]] = None  # subset of [+, -, *]
    max_ops: Optional[int] = None  # default 4
    ood_magnitude: Optional[List[int]] = None  # [low, high]; null = preset's ([1e4, 1e5] small, [1e6, 1e9] full)
    ood_length: Optional[List[int]] = None  # [low, high] operations, default [5, 6]
    unit_types: Optional[List[str]] = None  # subset of length, mass, time, temperature, velocity
    include_can_add: Optional[bool] = None  # default true
    # extra questions to answer and score as split `custom` ("12 + 7 * 3", "3.5 km to mi", "3 m + 2 s")
    questions: List[str] = field(default_factory=list)
