"""method.curriculum=accuracy: expert iteration and polychromic RL train on one difficulty level
at a time and move up when held-out accuracy at it reaches the threshold; the level per
iteration/update is logged and plotted. Driven by real reward functions of task=prompts (one
that always passes, one that never does), so the level's moves are known in advance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metaexamples.config import validate
from metaexamples.errors import ConfigError
from metaexamples.io import read_jsonl
from metaexamples.methods.curriculum import Curriculum
from metaexamples.tasks import make_task

REWARDS = '''
def always(completion, row):
    return 1.0


def never(completion, row):
    return 0.0
'''
FAST = ["model=tiny", "train.max_steps=2", "train.batch_size=2", "train.warmup_steps=0", "train.num_threads=1",
        "eval.gen_batch_size=16", "logger=none", "task.max_new_tokens=3", "task.block_size=64",
        "method.curriculum=accuracy", "method.curriculum_threshold=1.0", "method.curriculum_problems=2",
        "method.curriculum_samples=2", "stages=[data,train]"]
EI = ["method=expert_iteration", "method.iterations=2", "method.k=2", "method.m=1", "method.steps=1", "method.problems=3",
      "method.eval_splits=[heldout]", "method.eval_problems=2", "method.eval_samples=2", "method.eval_ks=[1]",
      "method.block_size=64"]
POLY = ["method=polychromic", "method.n_samples=4", "method.set_size=2", "method.prompts_per_update=2",
        "method.minibatch_size=8", "method.ppo_epochs=1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("curriculum")
    rows = [{"prompt": f"Add {a} and {b}.", "answer": str(a + b), "level": lv, "split": split}
            for lv in (0, 1, 2) for split, n in (("train", 4), ("val", 3)) for a, b in [(lv * 10 + i, i) for i in range(n)]]
    (folder / "levels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "level_rewards.py").write_text(REWARDS)
    return folder


def _run(compose_cfg, files, tmp_path, reward: str, *overrides) -> Path:
    from metaexamples.pipeline import run_stages
    from metaexamples.results import Results
    from metaexamples.tracking import Tracker

    cfg = compose_cfg(["task=prompts", f"task.path={files / 'levels.jsonl'}", "task.split_key=split",
                       "task.level_key=level", f"task.reward={files / 'level_rewards.py'}:{reward}", *FAST, *overrides],
                      cache_dir=files / "cache")
    validate(cfg)
    run_stages(cfg, tmp_path, Tracker(), Results(tmp_path, {"task": "prompts"}))
    return tmp_path


def _levels_of(files: Path) -> dict[str, int]:
    return {f"line-{n}": json.loads(line)["level"]
            for n, line in enumerate((files / "levels.jsonl").read_text().splitlines(), 1)}


@pytest.mark.slow
def test_expert_iteration_moves_up_a_level_when_held_out_accuracy_passes(compose_cfg, files, tmp_path):
    run = _run(compose_cfg, files, tmp_path, "always", *EI)
    rows = read_jsonl(run / "iterations.jsonl")
    assert [r.get("curriculum/level") for r in rows] == [None, 0, 1]
    assert [r.get("curriculum/next_level") for r in rows[1:]] == [1, 2]
    assert all(r["curriculum/accuracy"] == 1.0 for r in rows[1:])
    level = _levels_of(files)
    for it, expected in ((1, 0), (2, 1)):  # what each iteration trained on: its level's problems only
        assert {level[r["id"]] for r in read_jsonl(run / f"iter_{it}" / "selected.jsonl")} == {expected}
    saved = json.loads((run / "curriculum.json").read_text())
    assert saved["levels"] == [0, 1, 2] and [h["level"] for h in saved["history"]] == [0, 1]
    assert (run / "curriculum.png").stat().st_size > 0


def test_the_level_stays_while_the_threshold_is_not_reached(compose_cfg, files, tmp_path):
    rows = read_jsonl(_run(compose_cfg, files, tmp_path, "never", *EI) / "iterations.jsonl")
    assert [r.get("curriculum/level") for r in rows[1:]] == [0, 0]
    assert [r.get("curriculum/accuracy") for r in rows[1:]] == [0.0, 0.0]


def test_polychromic_samples_only_the_current_level_and_logs_it(compose_cfg, files, tmp_path):
    run = _run(compose_cfg, files, tmp_path, "always", *POLY)
    metrics = read_jsonl(run / "train" / "metrics.jsonl")
    assert [r["curriculum/level"] for r in metrics] == [0, 1]
    level = _levels_of(files)
    by_update = {}
    for r in read_jsonl(run / "train" / "rollouts.jsonl"):
        by_update.setdefault(r["update"], set()).add(level[r["id"]])
    assert by_update == {1: {0}, 2: {1}}


def test_procedural_problems_give_the_levels(compose_cfg, tokenizer, tmp_path):
    cfg = compose_cfg(["task=procedural", "experiment=smoke", "model=tiny", "method=expert_iteration",
                       "method.curriculum=accuracy", "task.difficulty=[1,3]"], cache_dir=tmp_path)
    task = make_task(cfg, tokenizer, tmp_path)
    task.prepare_data()
    c = Curriculum(cfg, task)
    assert c.levels == [1, 2, 3] and c.level == 1
    assert {p.meta["difficulty"] for p in c.train_problems(None)} == {1}


def test_a_task_without_levels_is_refused(compose_cfg, tokenizer, files):
    cfg = compose_cfg(["task=prompts", f"task.path={files / 'levels.jsonl'}", "task.split_key=split",
                       f"task.reward={files / 'level_rewards.py'}:always", *FAST, *EI], cache_dir=files / "cache")
    task = make_task(cfg, tokenizer, files / "cache")
    task.prepare_data()
    with pytest.raises(ConfigError, match="method.curriculum: task=prompts's training problems have no integer"):
        Curriculum(cfg, task)


@pytest.mark.parametrize("override, message", [
    ("method.curriculum=fast", "method.curriculum: unknown 'fast'; available: none, accuracy"),
    ("method.curriculum_threshold=0", "method.curriculum_threshold: must be in (0, 1], got 0.0"),
    ("method.curriculum_problems=0", "method.curriculum_problems: must be positive, got 0"),
])
def test_bad_curriculum_keys_are_one_line(compose_cfg, files, override, message):
    cfg = compose_cfg(["task=prompts", f"task.path={files / 'levels.jsonl'}", "task.split_key=split",
                       f"task.reward={files / 'level_rewards.py'}:always", *FAST, *EI, override])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value) == message
