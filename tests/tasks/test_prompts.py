"""task=prompts: a JSONL file and a reward function. Splits by a field and by seeded fractions,
what a reward may return (a number, a verdict, a pair), a reward that raises or returns garbage
on some rows (that row's verdict, not a crashed run), and one-line bad input before any stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metaexamples.config import validate
from metaexamples.errors import ConfigError
from metaexamples.tasks import Verdict, make_task
from metaexamples.tasks.prompts import as_verdict
from cli_runs import run_cli

REWARDS = '''
def exact(completion, row):
    """1 for the reference answer first, 0.5 for it anywhere, else 0."""
    words = completion.split()
    if words and words[0] == row["answer"]:
        return 1.0
    return 0.5 if row["answer"] in completion else 0.0


def flaky(completion, row):
    """Raises on rows whose answer has a 7, returns a list on those with a 3, else 1."""
    if "7" in row["answer"]:
        raise ValueError("boom")
    if "3" in row["answer"]:
        return ["not", "a", "number"]
    return 1.0
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("prompts")
    rows = [{"prompt": f"What is {a} + {b}?", "answer": str(a + b), "split": "train" if a < 7 else "test",
             "level": int(a + b > 9)} for a in range(10) for b in range(4)]
    (folder / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "sum_rewards.py").write_text(REWARDS)
    (folder / "dup_ids.jsonl").write_text("".join(json.dumps({"id": i, "prompt": "p"}) + "\n" for i in "aba"))
    (folder / "no_prompt.jsonl").write_text(json.dumps({"prompt": "ok"}) + "\n" + json.dumps({"question": "x"}) + "\n")
    return folder


def _cfg(compose_cfg, files, *overrides):
    return compose_cfg(["task=prompts", "model=tiny", f"task.path={files / 'sums.jsonl'}",
                        f"task.reward={files / 'sum_rewards.py'}:exact", *overrides], cache_dir=files / "cache")


def test_splits_by_field_and_by_seeded_fractions(compose_cfg, tokenizer, files):
    by_field = make_task(_cfg(compose_cfg, files, "task.split_key=split"), tokenizer, files / "cache")
    validate(by_field.cfg)
    by_field.prepare_data()
    assert len(by_field.rows("train")) == 28 and len(by_field.rows("test")) == 12 and not by_field.rows("val")
    assert all(r["row"]["split"] == "test" for r in by_field.rows("test"))
    by_share = make_task(_cfg(compose_cfg, files, "task.fractions={train: 0.5, val: 0.25}"), tokenizer, files / "cache")
    by_share.prepare_data()
    counts = [len(by_share.rows(s)) for s in ("train", "val", "test")]
    assert counts == [20, 10, 10]
    ids = [{r["id"] for r in by_share.rows(s)} for s in ("train", "val", "test")]
    assert len(set().union(*ids)) == 40  # disjoint, every row once
    again = make_task(_cfg(compose_cfg, files, "task.fractions={train: 0.5, val: 0.25}"), tokenizer, files / "tmp2")
    again.prepare_data()
    assert (again.folder / "train.jsonl").read_bytes() == (by_share.folder / "train.jsonl").read_bytes()


def test_the_reward_sees_the_row_and_grades_partial_credit(compose_cfg, tokenizer, files):
    task = make_task(_cfg(compose_cfg, files, "task.split_key=split"), tokenizer, files / "cache")
    task.prepare_data()
    p = task.problems("test")[0]
    texts = [p.answer, f"maybe {p.answer}", "no idea"]
    verdicts = task.verify_many([p] * 3, [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts])
    assert [(v.kind, v.reward) for v in verdicts] == [("correct", 1.0), ("partial", 0.5), ("wrong", 0.0)]


def test_a_reward_that_raises_or_returns_garbage_is_that_rows_verdict(compose_cfg, tokenizer, files):
    task = make_task(_cfg(compose_cfg, files, "task.split_key=split", f"task.reward={files / 'sum_rewards.py'}:flaky"),
                     tokenizer, files / "cache")
    task.prepare_data()
    problems = task.problems("train")
    verdicts = task.verify_many(problems, [[1]] * len(problems))
    for p, v in zip(problems, verdicts):
        if "7" in p.answer:
            assert (v.kind, v.reward) == ("reward_error", 0.0) and v.extracted == "ValueError: boom"
        elif "3" in p.answer:
            assert (v.kind, v.reward) == ("reward_invalid", 0.0) and "['not', 'a', 'number']" in v.extracted
        else:
            assert (v.kind, v.reward) == ("correct", 1.0)
    assert {v.kind for v in verdicts} == {"reward_error", "reward_invalid", "correct"}


@pytest.mark.parametrize("value, expected", [
    (1, ("correct", 1.0)), (0.25, ("partial", 0.25)), (0.0, ("wrong", 0.0)), (True, ("correct", 1.0)),
    ("correct", ("correct", 1.0)), ("too_long", ("too_long", 0.0)), ((0.5, "close"), ("close", 0.5)),
    (Verdict(reward=1.0, kind="exact"), ("exact", 1.0)), (1.5, ("reward_invalid", 0.0)),
    (float("nan"), ("reward_invalid", 0.0)), (None, ("reward_invalid", 0.0)), ((2.0, "x"), ("reward_invalid", 0.0)),
])
def test_what_a_reward_may_return(value, expected):
    v = as_verdict(value)
    assert (v.kind, v.reward) == expected


@pytest.mark.slow
def test_a_run_with_a_flaky_reward_completes(compose_cfg, files, tmp_path, monkeypatch):
    """Train and evaluate with a reward module found in the working directory (module:function)
    that fails on some rows: the run completes and counts them."""
    from metaexamples.pipeline import run_stages
    from metaexamples.results import Results
    from metaexamples.tracking import Tracker

    monkeypatch.chdir(files)
    cfg = _cfg(compose_cfg, files, "task.split_key=split", "task.reward=sum_rewards:flaky", "train.max_steps=1",
               "train.batch_size=2", "train.warmup_steps=0", "train.num_threads=1", "task.n_samples=2",
               "task.pass_k=[1]", "task.max_new_tokens=4", "logger=none", "stages=[data,train,eval_verify]")
    validate(cfg)
    run_stages(cfg, tmp_path, Tracker(), Results(tmp_path, {"task": "prompts"}))
    verify = json.loads((tmp_path / "results.json").read_text())["verify"]["test"]
    answers = [str(a + b) for a in range(7, 10) for b in range(4)]  # the test rows
    assert verify["verdicts"]["reward_error"] == 2 * sum("7" in a for a in answers)
    assert verify["samples"] == 24


@pytest.mark.parametrize("overrides, message", [
    (["task.path=null"], "task.path: required"),
    (["task.path=/nonexistent/x.jsonl"], "task.path: /nonexistent/x.jsonl: no such file"),
    (["task.path={files}/no_prompt.jsonl"], "task.path: {files}/no_prompt.jsonl line 2 has no prompt"),
    (["task.reward=no_such_module_xyz:fn"], "task.reward: cannot import no_such_module_xyz (ModuleNotFoundError"),
    (["task.reward={files}/sum_rewards.py:nope"], "task.reward: {files}/sum_rewards.py has no function 'nope'"),
    (["task.reward=just_a_name"], "task.reward: expected module:function or file.py:function"),
    (["task.split_key=level"], "task.split_key: {files}/sums.jsonl line 1: level=0, expected one of"),
    (["task.fractions={train: 0.9, val: 0.3}"], "task.fractions: must sum to at most 1"),
    (["task.eval_splits=[ood]"], "task.eval_splits: split 'ood' is empty"),
    (["task.path={files}/dup_ids.jsonl"], "task.path: {files}/dup_ids.jsonl line 3 repeats id 'a' of line 1"),
])
def test_bad_input_is_one_line_naming_the_key(compose_cfg, files, overrides, message):
    overrides = [o.replace("{files}", str(files)) for o in overrides]
    with pytest.raises(ConfigError) as err:
        validate(_cfg(compose_cfg, files, *overrides))
    assert str(err.value).startswith(message.replace("{files}", str(files))) and "\n" not in str(err.value)


@pytest.mark.slow
def test_bad_input_on_the_cli_exits_2_before_any_stage(tmp_path, files):
    run_dir = tmp_path / "run"
    proc = run_cli(["task=prompts", f"task.path={files / 'no_prompt.jsonl'}", "task.reward=x:y", "logger=none",
                    f"hydra.run.dir={run_dir}"], tmp_path, files / "cache")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"error: task.path: {files / 'no_prompt.jsonl'} line 2 has no prompt " \
                                                   "(a non-empty string under 'prompt')"
    assert not (run_dir / "eval_verify").exists()
