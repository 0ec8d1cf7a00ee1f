"""task=gym: Reasoning Gym datasets as a task. Splits (deterministic, disjoint, levels, ood
harder, mixtures through the composite dataset), the verifier (the dataset's own
score_answer, partial credit unchanged, verdicts), one-line bad input, and every method and
shared stage on 10 datasets of different families (tiny model, a few steps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metaexamples.config import validate
from metaexamples.errors import ConfigError
from metaexamples.tasks import make_task
from cli_runs import run_cli

SMALL = ["task=gym", "model=tiny", "task.n_train=12", "task.n_val=4", "task.n_test=4", "task.n_ood=2"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gym_cache")


@pytest.fixture(scope="module")
def task(compose_cfg, tokenizer, cache):
    t = make_task(compose_cfg(SMALL, cache_dir=cache), tokenizer, cache)
    t.prepare_data()
    return t


def test_splits_are_deterministic_disjoint_and_ood_is_harder(compose_cfg, tokenizer, task, tmp_path):
    other = make_task(compose_cfg(SMALL, cache_dir=tmp_path), tokenizer, tmp_path)
    other.prepare_data()
    for split in ("train", "val", "test", "ood"):
        assert (task.folder / f"{split}.jsonl").read_bytes() == (other.folder / f"{split}.jsonl").read_bytes()
    questions = [{r["prompt"] for r in task.rows(s)} for s in ("train", "val", "test", "ood")]
    assert sum(map(len, questions)) == len(set().union(*questions)) == 22
    assert {r["level"] for r in task.rows("train")} <= {0, 1} and {r["level"] for r in task.rows("ood")} == {2}
    # level 2 of basic_arithmetic is exactly 4 terms: more operators than any level-0/1 problem
    ops = lambda r: r["entry"]["metadata"]["num_terms"]  # noqa: E731
    assert min(map(ops, task.rows("ood"))) > max(map(ops, task.rows("train")))
    manifest = json.loads((task.folder / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 12, "val": 4, "test": 4, "ood": 2}
    assert task.prepare_data() == task.folder  # reused


def test_a_mixture_draws_from_every_dataset_through_the_composite(compose_cfg, tokenizer, tmp_path):
    t = make_task(compose_cfg(SMALL + ["task.n_train=40", "task.datasets={basic_arithmetic: 1.0, spell_backward: 1.0}"],
                              cache_dir=tmp_path), tokenizer, tmp_path)
    validate(t.cfg)
    t.prepare_data()
    groups = [r["group"] for r in t.rows("train")]
    assert set(groups) == {"basic_arithmetic", "spell_backward"} and min(map(groups.count, set(groups))) >= 8
    p = next(p for p in t.problems("train") if p.meta["kind"] == "spell_backward")
    assert t.verify(p, t.reference_completion(p)).kind == "correct"


def test_partial_credit_flows_into_rewards_unchanged(task):
    import reasoning_gym as rg

    p = task.problems("test")[0]
    entry = p.meta["row"]["entry"]
    scorer = rg.create_dataset("basic_arithmetic", seed=0, size=1)  # the library's own, built independently
    tok = task.tokenizer
    cases = {f"<answer>{p.answer}</answer>": "correct", f"<answer>x{p.answer}</answer>": "partial",
             "<answer>not a number</answer>": "wrong", f"{p.answer}": "no_answer"}
    verdicts = task.verify_many([p] * len(cases), [tok(c, add_special_tokens=False)["input_ids"] for c in cases])
    for (text, kind), v in zip(cases.items(), verdicts):
        assert v.kind == kind, text
        expected = 0.0 if kind == "no_answer" else scorer.score_answer(rg.utils.extract_answer(text), entry)
        assert v.reward == expected
    assert 0.0 < verdicts[1].reward < 1.0  # a real partial credit, not rounded to 0 or 1


def test_prompt_asks_for_answer_tags_and_sft_trains_on_them(task):
    from reasoning_gym.utils import SYSTEM_PROMPTS

    row = task.rows("train")[0]
    text = task.prompt_text(row)
    assert text.startswith(SYSTEM_PROMPTS["direct"]) and row["prompt"] in text  # tiny: plain, not chat
    data = task.sft_data()
    first = data.labels[0].tolist()
    target = [t for t in first[first.index(next(t for t in first if t >= 0)):] if t >= 0][:12]
    assert task.tokenizer.decode(target).startswith(f"<answer>{row['answer']}</answer>")
    assert task.sampling(task.cfg.decoding).stop_ids == task.tokenizer("</answer>", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("overrides, message", [
    (["task.dataset=basic_arithmetc"], "task.dataset: unknown Reasoning Gym dataset 'basic_arithmetc'; closest: "
                                       "basic_arithmetic"),
    (["task.config={max_term: 3}"], "task.config.max_term: basic_arithmetic has no such configuration key; closest: "
                                  "max_terms"),
    (["task.config={max_terms: 3}"], "task.config.max_terms: the curriculum level (task.levels) sets it"),
    (["task.levels=null", "+task.config.min_terms=5", "+task.config.max_terms=2", "task.n_ood=0",
      "task.eval_splits=[test]"], "task.config: basic_arithmetic rejects its configuration"),
    (["task.datasets={basic_arithmetic: 1.0, chain_sum: 0}"], "task.datasets.chain_sum: weight must be positive, got 0"),
    (["task.datasets={basic_arithmetic: 1.0, chain_sum: -1}"], "task.datasets.chain_sum: weight must be positive"),
    (["task.dataset=acre"], "task.levels: acre has no difficulty levels (no Reasoning Gym curriculum); set task.levels=null"),
    (["task.levels=[0,5]"], "task.levels: basic_arithmetic's curriculum has levels 0-4, got [0, 5]"),
    (["task.levels=[0,4]"], "task.ood_levels: basic_arithmetic has levels 0-4; ood needs [5]"),
    (["task.levels=null"], "task.n_ood: task.levels=null leaves no harder configuration"),
    (["task.system_prompt=nope"], "task.system_prompt: unknown 'nope'"),
])
def test_bad_input_is_one_line_naming_the_key(compose_cfg, overrides, message):
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(SMALL + overrides))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.slow
def test_unknown_dataset_on_the_cli_exits_2_before_any_stage(tmp_path, cache):
    run_dir = tmp_path / "run"
    proc = run_cli(["task=gym", "task.dataset=chain_summ", "logger=none", f"hydra.run.dir={run_dir}"], tmp_path, cache)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: task.dataset: unknown Reasoning Gym dataset 'chain_summ'; closest: chain_sum")
    assert not (run_dir / "model").exists() and not list(cache.glob("data/gym-chain_summ*"))


# --- every method and shared stage, on 10 datasets of different families -------------------------
FAMILIES = {  # dataset: extra overrides (list_functions has no curriculum: its own configuration, no ood)
    "basic_arithmetic": [], "simple_equations": [], "spell_backward": [], "knights_knaves": [],
    "family_relationships": [], "mini_sudoku": [], "number_sequence": [], "simple_geometry": [], "coin_flip": [],
    "list_functions": ["task.levels=null", "task.n_ood=0", "task.eval_splits=[test]"],
}
TINY_RUN = ["task.n_train=4", "task.n_val=2", "task.n_test=2", "task.n_ood=1", "task.n_samples=2", "task.pass_k=[1,2]",
            "task.max_new_tokens=6", "task.block_size=512", "train.max_steps=1", "train.batch_size=2",
            "train.warmup_steps=0", "train.num_threads=1", "eval.set_problems=2", "eval.set_samples=2",
            "eval.set_ks=[1,2]", "eval.gen_batch_size=8", "logger=none"]
METHODS = {
    "sft": ["method=sft", "stages=[data,train,eval_verify,eval_sets]"],
    "expert_iteration": ["method=expert_iteration", "method.iterations=1", "method.k=2", "method.m=1", "method.steps=1",
                         "method.eval_problems=2", "method.eval_samples=2", "method.eval_ks=[1]", "method.block_size=512",
                         "stages=[train]"],
    "polychromic": ["method=polychromic", "method.n_samples=4", "method.set_size=2", "method.prompts_per_update=1",
                    "method.minibatch_size=4", "method.ppo_epochs=1", "stages=[train]"],
}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(FAMILIES))
def test_every_method_and_stage_runs_on_the_dataset(compose_cfg, cache, tmp_path, dataset):
    from metaexamples.io import read_jsonl
    from metaexamples.pipeline import run_stages
    from metaexamples.results import Results
    from metaexamples.tracking import Tracker

    for method, overrides in METHODS.items():
        cfg = compose_cfg(["task=gym", "model=tiny", f"task.dataset={dataset}", *TINY_RUN, *FAMILIES[dataset], *overrides],
                          cache_dir=cache)
        validate(cfg)
        run_dir = tmp_path / method
        results = Results(run_dir, {"task": "gym"})
        run_stages(cfg, run_dir, Tracker(), results)
        out = json.loads((run_dir / "results.json").read_text())
        if method == "sft":
            verify = out["verify"]["test"]
            assert verify["samples"] == 4 and 0.0 <= verify["accuracy"] <= 1.0
            assert sum(verify["verdicts"].values()) == 4
            assert out["sets"]["samples"] == 4
        elif method == "expert_iteration":
            rows = read_jsonl(run_dir / "iterations.jsonl")
            assert [r["iteration"] for r in rows] == [0, 1] and "heldout/accuracy" in rows[1]
        else:
            rows = read_jsonl(run_dir / "train" / "metrics.jsonl")
            assert len(rows) == 1 and 0.0 <= rows[0]["train/reward"] <= 1.0
        assert (run_dir / "model" / "config.json").exists()
