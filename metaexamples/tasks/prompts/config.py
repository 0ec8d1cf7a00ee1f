"""Schema of task=prompts (conf/task/prompts.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from metaexamples.tasks.prompts.qa import QAConfig


@dataclass
class PromptsConfig(QAConfig):
    path: Optional[str] = None  # the JSONL file of rows
    reward: Optional[str] = None  # module:function or file.py:function, fn(completion, row) -> [0, 1] or a verdict
    prompt_key: str = "prompt"  # the row's prompt (the user message)
    answer_key: str = "answer"  # the row's reference answer, if any (SFT's target)
    split_key: Optional[str] = None  # a field holding each row's split (train/val/test/ood); null = fractions
    fractions: Dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1})  # test gets the rest
    group_key: Optional[str] = None  # a field the results are broken down by
    level_key: Optional[str] = None  # an integer field: the row's difficulty (method.curriculum reads it)
    system_prompt: Optional[str] = None  # a system message (chat) / first paragraph (plain) before each prompt
    stop: Optional[str] = None  # text that ends a completion besides EOS
    eval_splits: List[str] = field(default_factory=lambda: ["test"])
