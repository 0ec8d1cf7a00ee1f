"""The measurement defects of issue #24, each checked on a real run or the real task: polychromic
coverage excludes what it was rewarded on, rollouts.jsonl rows are addressable when a prompt is
drawn twice in one update, grammar held-out prompts are disjoint from training prompts (or the
overlap is said), and one prompt's eval_sets intervals resample its samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metaexamples.io import read_jsonl
from cli_runs import run_cli

# g1 under the alphabet constraint: most samples are valid, so updates reward something. No seed
# symbols: one training prompt, drawn 3 times per update.
POLY = ["experiment=smoke", "method=polychromic", "decoding=alphabet", "train.max_steps=2", "method.n_samples=4",
        "method.set_size=2", "method.prompts_per_update=3", "stages=[data,train,eval_sets]", "eval.set_samples=12",
        "eval.set_ks=[1,4]", "logger=none"]


@pytest.fixture(scope="module")
def poly_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("poly_defects")
    run_dir = root / "run"
    proc = run_cli(POLY + [f"hydra.run.dir={run_dir}"], root, root / "cache")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir


@pytest.mark.slow
def test_rollout_rows_are_addressable_when_a_prompt_repeats_in_an_update(poly_run):
    rows = read_jsonl(poly_run / "train" / "rollouts.jsonl")
    assert len(rows) == 2 * 3 * 4
    assert len({(r["update"], r["id"], r["sample"]) for r in rows}) < len(rows)  # the prompt did repeat
    assert len({(r["update"], r["slot"], r["sample"]) for r in rows}) == len(rows)
    assert {r["slot"] for r in rows} == {0, 1, 2}


@pytest.mark.slow
def test_polychromic_coverage_does_not_count_what_was_rewarded_as_novel(poly_run):
    rollouts = read_jsonl(poly_run / "train" / "rollouts.jsonl")
    rewarded = {tuple(r["extracted"]) for r in rollouts if r["reward"] > 0 and r["extracted"] is not None}
    assert rewarded, "the run rewarded nothing: the test would check nothing"
    trained_on = {tuple(r["extracted"]) for r in read_jsonl(poly_run / "trained_on.jsonl")}
    assert trained_on == rewarded
    samples = read_jsonl(poly_run / "eval_sets" / "samples.jsonl")
    for s in samples:
        if s["reward"] >= 1.0 and tuple(s["extracted"]) in rewarded:
            assert s["novel"] is False
    sets = json.loads((poly_run / "results.json").read_text())["sets"]
    novel = {tuple(s["extracted"]) for s in samples if s["novel"]}
    assert sets["coverage"] == len(novel) and not novel & rewarded


@pytest.mark.slow
def test_one_prompt_intervals_are_over_samples_and_the_shared_prompt_is_said(poly_run):
    sets = json.loads((poly_run / "results.json").read_text())["sets"]
    assert sets["problems"] == 1 and sets["ci_over"] == "samples"
    assert sets["heldout_prompts_in_train"] == 1  # no seed symbols: the one prompt is the training prompt
    lo, hi = sets["ci"]["distinct_2"]["lo"], sets["ci"]["distinct_2"]["hi"]
    assert lo is not None and lo <= sets["distinct_2"] <= hi


def test_grammar_heldout_prompts_are_disjoint_from_training_prompts(compose_cfg, tokenizer, tmp_path):
    from metaexamples.tasks import make_task

    cfg = compose_cfg(["grammar=g2", "task.seed_symbols=6", "data.n_train_items=300", "data.n_eval=200",
                       "data.n_test=20"], cache_dir=tmp_path)
    task = make_task(cfg, tokenizer, tmp_path)
    task.prepare_data()
    train = {tuple(p.prompt_ids) for p in task.problems("train")}
    heldout = [tuple(p.prompt_ids) for p in task.problems("heldout")]
    assert heldout and not set(heldout) & train
    # no seed symbols: one prompt, which can only be shared (held-out then means unseen strings)
    cfg0 = compose_cfg(["grammar=g2", "data.n_train_items=300", "data.n_eval=200", "data.n_test=20"], cache_dir=tmp_path)
    task0 = make_task(cfg0, tokenizer, tmp_path)
    task0.prepare_data()
    from metaexamples.evaluation.sets import prompts_in_train

    assert prompts_in_train(task0, task0.problems("heldout")) == 1
    assert prompts_in_train(task, task.problems("heldout")) == 0
