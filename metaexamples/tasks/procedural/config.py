"""Schema of task=procedural (conf/task/procedural.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from metaexamples.schemas import TaskConfig


@dataclass
class ProceduralConfig(TaskConfig):
    kind: str = "all"  # arithmetic | rpn | brackets | all (the three mixed)
    answer: str = "direct"  # direct (the answer) | program (a Python solve(x), run in the sandbox)
    difficulty: List[int] = field(default_factory=lambda: [1, 3])  # [lo, hi] of train/val/test
    ood_difficulty: List[int] = field(default_factory=lambda: [4, 5])  # [lo, hi] above difficulty
    n_train: int = 2000
    n_val: int = 100
    n_test: int = 100
    n_ood: int = 100
    prompt_format: str = "auto"  # auto (chat template for model.chat models) | chat | plain
    block_size: int = 512  # warm-start SFT: prompt+target pairs packed into blocks (an arithmetic program: ~330 tokens)
    # evaluation (stage eval_verify)
    eval_splits: List[str] = field(default_factory=lambda: ["test", "ood"])
    n_samples: int = 10  # samples per problem (pass@k needs n >= k)
    pass_k: List[int] = field(default_factory=lambda: [1, 5, 10])
    max_new_tokens: Optional[int] = None  # null: 24 for direct answers, 192 for programs
    show_failures: int = 3  # failed completions kept per verdict kind in results.json
    # the sandbox for model-written programs (metaexamples/sandbox)
    sandbox: str = "auto"  # auto (bubblewrap where it works, else process) | bubblewrap | process
    timeout_s: float = 2.0
    memory_mb: int = 256
    max_output_bytes: int = 65536
    workers: int = 0  # sandbox worker processes; 0 = one per core
