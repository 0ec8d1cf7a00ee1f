"""The training scaffold as a new method uses it (docs/extending.md, `method=dpo`): its own
batches (BlockBatches' addressing) and an objective that returns its own figures go through the
one loop; the figures are logged, a run cut back to a checkpoint resumes onto the same numbers,
and another config is refused in one line. Plus the addressing shared with task=numeric and the
polychromic report's arms as values."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from metaexamples.errors import ConfigError
from metaexamples.io import read_jsonl
from metaexamples.methods.arms import BASELINE, Arm, labelled
from metaexamples.models import load_model
from metaexamples.tasks.numeric.training import NumericBatches
from metaexamples.tracking import Tracker
from metaexamples.training import BlockBatches, train_loop

WIDTH = 24


class PairBatches(BlockBatches):
    """(chosen, rejected) token rows, addressed like every training set."""

    def __init__(self, chosen: np.ndarray, rejected: np.ndarray, batch_size: int, seed: int) -> None:
        super().__init__(chosen, batch_size, 1, 1, seed)
        self.rejected = torch.from_numpy(rejected.astype(np.int64))

    def get(self, step: int, micro: int, rank: int):
        index = self.index(step, micro, rank)
        return self.blocks[index], self.rejected[index]


class Preference(nn.Module):
    """A DPO-style objective without a reference model: -log sigmoid(beta * (log p(chosen) -
    log p(rejected))), returning the mean margin as a figure of its own."""

    def __init__(self, model: nn.Module, beta: float = 0.5) -> None:
        super().__init__()
        self.model, self.beta = model, beta

    def _logp(self, ids: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=ids).logits[:, :-1].float()
        return torch.log_softmax(logits, -1).gather(2, ids[:, 1:, None]).squeeze(2).sum(1)

    def forward(self, chosen: torch.Tensor, rejected: torch.Tensor):
        margin = self.beta * (self._logp(chosen) - self._logp(rejected))
        return -F.logsigmoid(margin).mean(), {"margin": margin.mean().detach()}


@pytest.fixture(scope="module")
def setting(compose_cfg, tokenizer):
    cfg = compose_cfg(["experiment=smoke", "model=tiny"])
    t = OmegaConf.merge(cfg.train, {"max_steps": 4, "save_steps": 2, "log_steps": 1, "keep_checkpoints": 5,
                                    "batch_size": 2, "grad_accum": 1, "warmup_steps": 1, "resume": True,
                                    "lr": 3e-3, "num_threads": 1})
    rng = np.random.default_rng(0)
    chosen = rng.integers(100, 200, size=(6, WIDTH))  # low token ids preferred over high ones
    rejected = rng.integers(1000, 1100, size=(6, WIDTH))
    return cfg, t, chosen, rejected


def _train(setting, tokenizer, run_dir, t=None) -> dict:
    cfg, t_default, chosen, rejected = setting
    model = load_model(cfg.model, tokenizer, seed=0)
    batches = PairBatches(chosen, rejected, 2, seed=0)
    return train_loop(t if t is not None else t_default, model, tokenizer, batches, Preference, run_dir, Tracker(),
                      job={"method": {"name": "dpo"}})


def _curve(run_dir) -> list[dict]:
    return [{k: v for k, v in r.items() if "per_s" not in k} for r in read_jsonl(run_dir / "train" / "metrics.jsonl")]


def test_a_new_objective_logs_its_figures_and_resumes_onto_the_same_numbers(setting, tokenizer, tmp_path):
    whole = _train(setting, tokenizer, tmp_path / "whole")
    rows = _curve(tmp_path / "whole")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all({"train/loss", "train/margin", "train/lr"} <= set(r) for r in rows)
    assert rows[-1]["train/margin"] > rows[0]["train/margin"]  # it learns the preference
    assert whole["steps"] == 4 and whole["resumed_from"] is None and (tmp_path / "whole" / "model").is_dir()
    assert not any(k.startswith("eval_") for k in whole)  # no monitor, no task's words

    # killed after the checkpoint at step 2 (its later rows logged, no model exported yet)
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "whole", cut)
    shutil.rmtree(cut / "checkpoints" / "checkpoint-000004")
    shutil.rmtree(cut / "model")
    resumed = _train(setting, tokenizer, cut)
    assert resumed["resumed_from"] == 2
    assert _curve(cut) == rows  # the same numbers, bit for bit, logged once
    assert resumed["final_loss"] == whole["final_loss"]


def test_resuming_under_another_config_is_one_line(setting, tokenizer, tmp_path):
    _, t, _, _ = setting
    _train(setting, tokenizer, tmp_path, t=OmegaConf.merge(t, {"max_steps": 2}))
    with pytest.raises(ConfigError, match=r"^train\.resume: .*train\.lr: 0\.003 -> 0\.001"):
        _train(setting, tokenizer, tmp_path, t=OmegaConf.merge(t, {"max_steps": 2, "lr": 1e-3}))


def test_numeric_batches_use_the_shared_addressing():
    """NumericBatches serves other tensors, through BlockBatches' own index (no copy of it)."""
    assert "index" not in vars(NumericBatches)
    ids = torch.arange(7 * 5).reshape(7, 5)
    tensors = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    numeric = NumericBatches(tensors, batch_size=3, grad_accum=2, world=2, seed=4)
    blocks = BlockBatches(ids.numpy(), batch_size=3, grad_accum=2, world=2, seed=4)
    for step, micro, rank in [(0, 0, 0), (0, 1, 1), (3, 0, 1), (9, 1, 0)]:
        assert torch.equal(numeric.get(step, micro, rank)[0], blocks.get(step, micro, rank))


def test_polychromic_arms_are_values_with_their_label_and_order():
    rows = [{"lam": 0.5, "form": "additive", "diversity": "edit"}, {"lam": 1, "form": "product", "diversity": "edit"},
            {"lam": 0.0, "form": "additive", "diversity": "edit"}, {"lam": 0, "form": "product", "diversity": "distinct"},
            {"lam": 2.0, "form": "product", "diversity": "distinct"}]
    arms = [Arm.polychromic(r) for r in rows]
    assert arms[2] == arms[3] and arms[2].label == BASELINE  # lam = 0 pools every form and diversity
    assert arms[0].label == "additive lam=0.5 edit" and arms[1].label == "product lam=1 edit"
    by_label = labelled(arms)
    assert sorted(by_label, key=lambda label: by_label[label].order) == [
        BASELINE, "product lam=2 distinct", "product lam=1 edit", "additive lam=0.5 edit"]
    ei = Arm.of({"method": "expert_iteration", "train": {"distinct": True}})
    assert ei.label == "EI diverse" and ei.order < arms[2].order  # expert iteration's arms come first
    assert Arm.polychromic({}).label == "?"
