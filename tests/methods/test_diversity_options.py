"""experiment=diversity_collapse's pieces without a model: expert iteration's diversity-aware
selection, replay and fine-tuning budget, the one definition of the set score, the sampling
budget and bad input, the per-model fine-tuning rate, one-prompt intervals and the report's
block curves and sample-level test."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from metaexamples.errors import ConfigError
from metaexamples.methods.ei_selection import fine_tune_steps, select_diverse, with_replay
from metaexamples.methods.expert_iteration import select
from metaexamples.evaluation.rollout import Rollout
from metaexamples.tasks import Problem, SFTData, Verdict
from cli_runs import run_cli

ROOT = Path(__file__).resolve().parents[2]


def roll(pid: str, symbols: list[int], reward: float = 1.0) -> Rollout:
    return Rollout(problem=Problem(id=pid, prompt_ids=[1]), sample=0, tokens=list(symbols) + [99], text="",
                   logprob=0.0, verdict=Verdict(reward=reward, kind="valid" if reward else "rule",
                                                extracted=list(symbols) if reward else None))


# --- selection, replay, budget in passes ---------------------------------------------------------
def test_without_options_diverse_selection_is_plain_selection():
    done = [roll("a", [1, 1]), roll("a", [1, 1]), roll("a", [2, 2]), roll("b", [1, 1]), roll("b", [3], 0.0)]
    assert select_diverse(done, 4, set(), False, False) == select(done, 4, "none")


def test_distinct_keeps_one_selection_per_output_across_problems():
    done = [roll("a", [1, 1]), roll("b", [1, 1]), roll("b", [2, 2]), roll("c", [2, 2])]
    kept = select_diverse(done, 4, set(), True, False)
    assert [(r.problem.id, r.verdict.extracted) for r in kept] == [("a", [1, 1]), ("b", [2, 2])]
    assert len(select(done, 4, "none")) == 4  # plain selection keeps the repeats


def test_prefer_new_takes_unselected_outputs_before_the_cap():
    from metaexamples.evaluation.problems import output_key

    done = [roll("a", [1, 1]), roll("a", [2, 2]), roll("a", [3, 3])]
    before = {output_key([1, 1], [1, 1, 99]), output_key([2, 2], [2, 2, 99])}
    assert [r.verdict.extracted for r in select_diverse(done, 1, before, False, True)] == [[3, 3]]
    assert [r.verdict.extracted for r in select_diverse(done, 1, before, False, False)] == [[1, 1]]


def test_replay_mixes_the_share_of_sft_blocks_with_their_labels():
    sel = SFTData(blocks=np.ones((6, 8), dtype=np.int64), labels=np.full((6, 8), -100))
    stream = SFTData(blocks=np.arange(80).reshape(10, 8))
    mixed = with_replay(sel, stream, 0.5, seed=0)
    assert mixed.blocks.shape == (12, 8) and (mixed.labels[:6] == -100).all()
    replayed = mixed.blocks[6:]
    assert len({tuple(b) for b in replayed}) == 6 and all(tuple(b) in {tuple(s) for s in stream.blocks} for b in replayed)
    assert (mixed.labels[6:] == replayed).all()  # a stream without labels is scored everywhere
    with pytest.raises(ConfigError, match=r"^method.block_size: "):
        with_replay(sel, SFTData(blocks=np.zeros((4, 16), dtype=np.int64)), 0.5, seed=0)


def test_fine_tuning_budget_in_passes():
    assert fine_tune_steps(None, 24, 10, 8) == 24
    assert fine_tune_steps(2, 24, 10, 8) == 3  # ceil(2 x 10 / 8)
    assert fine_tune_steps(0.01, 24, 10, 8) == 1


# --- one definition of the set score --------------------------------------------------------------
def test_the_set_score_is_r_times_d_to_the_lam_everywhere_it_is_written():
    from metaexamples.methods import polychromic
    from metaexamples.methods.set_objective import set_score

    r, d = np.array([0.5, 1.0, 0.25]), np.array([0.5, 0.25, 1.0])
    assert np.allclose(set_score(r, d, 2.0, "product"), r * d ** 2)
    assert np.allclose(set_score(r, d, 2.0, "additive"), r + 2 * d)
    texts = {"polychromic docstring": polychromic.__doc__, "PolychromicConfig": inspect.getsource(polychromic.PolychromicConfig),
             "conf/method/polychromic.yaml": (ROOT / "conf" / "method" / "polychromic.yaml").read_text()}
    for where, text in texts.items():
        assert "1 + lam" not in text, where
        assert "D^lam" in text or "D(S)^lam" in text, where


# --- config: per-model rates, budgets, bad input ---------------------------------------------------
@pytest.mark.parametrize("model,lr", [("tiny", 3e-3), ("smollm2_135m", 2e-4)])
def test_presets_pick_the_fine_tuning_rate_per_model(compose_cfg, model, lr):
    cfg = compose_cfg(["experiment=smoke", "method=expert_iteration", "task=procedural", f"model={model}"])
    assert cfg.train.lr == pytest.approx(lr)
    for arm in ("ei", "grpo"):
        cfg = compose_cfg(["experiment=diversity_collapse", f"+diversity_arm={arm}", f"model={model}"])
        assert cfg.train.lr == pytest.approx(lr) and cfg.method.warmup_lr == pytest.approx(lr)


def test_every_arm_samples_the_same_budget(compose_cfg):
    budgets = set()
    for arm in ("ei", "ei_diverse", "grpo", "product_1", "product_2", "additive_1"):
        cfg = compose_cfg(["experiment=diversity_collapse", f"+diversity_arm={arm}"])
        m = cfg.method
        used = m.iterations * 1 * m.k if m.name == "expert_iteration" else \
            cfg.train.max_steps * m.prompts_per_update * m.n_samples
        assert used == m.budget, arm
        budgets.add(int(m.budget))
        assert m.warmup_steps > 0 and str(m.warmup_seed) == str(cfg.seed)  # the same start per seed
    assert len(budgets) == 1


@pytest.mark.parametrize("args,line", [
    (["experiment=diversity_collapse", "+diversity_arm=grpo", "train.max_steps=10"],
     "error: method.budget: polychromic samples 10 updates (train.max_steps) x 4 prompts x 16 = 640 completions, "
     "not the budget 1024"),
    (["experiment=diversity_collapse", "+diversity_arm=ei", "method.warmup_steps=0", "method.replay=0.5"],
     "error: method.replay: replays the SFT stream the run started from, and this run has no SFT"),
    (["task=procedural", "method=expert_iteration", "method.distinct=true"],
     "error: method.distinct: task=procedural has no notion of distinct outputs"),
])
def test_bad_input_is_one_line_exit_2_before_any_stage(tmp_path, args, line):
    proc = run_cli([*args, "logger=none", f"hydra.run.dir={tmp_path / 'run'}"],
                   tmp_path, tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(line), lines[-1]
    assert not (tmp_path / "cache" / "data").exists()  # refused before the data stage


# --- one prompt: intervals over samples -----------------------------------------------------------
def sample_rows(pid: str, rewards: list[float]) -> list[dict]:
    return [{"id": pid, "units": [i % 3, 5], "reward": r, "verdict": "valid" if r else "rule",
             "extracted": [i] if r else None, "novel": bool(r) and i % 4 == 0} for i, r in enumerate(rewards)]


def test_one_prompt_resamples_its_samples_and_says_so():
    from metaexamples.evaluation.sets import metrics_from_samples

    rows = sample_rows("p0", [1.0, 0.0] * 10)
    one = metrics_from_samples(rows, None, [1, 4], sample_boot=200)
    assert one["ci_over"] == "samples" and one["problems"] == 1
    assert one["ci"]["accuracy"]["lo"] < one["accuracy"] < one["ci"]["accuracy"]["hi"]  # not zero width
    assert one["ci"]["self_bleu"] == {"lo": None, "hi": None}  # pairwise figures: no interval
    two = metrics_from_samples(rows + sample_rows("p1", [1.0] * 20), None, [1, 4])
    assert two["ci_over"] == "prompts"
    assert one["novel_share"] == pytest.approx(0.5)


# --- the report's pieces --------------------------------------------------------------------------
def test_block_curve_counts_validity_unique_and_novel_per_block():
    from metaexamples.methods.diversity_report import block_curve

    rows = [{"reward": 1.0, "extracted": [1], "novel": True}, {"reward": 1.0, "extracted": [1], "novel": True},
            {"reward": 1.0, "extracted": [2], "novel": False}, {"reward": 0.0, "extracted": None, "novel": None}]
    assert block_curve(rows, block=2) == [
        {"sampled": 2, "validity": 1.0, "unique_valid": 1, "unique_novel_valid": 1},
        {"sampled": 4, "validity": 0.5, "unique_valid": 1, "unique_novel_valid": 0}]


def test_sample_level_test_finds_a_real_difference_and_not_a_null_one():
    from metaexamples.methods.diversity_report import sample_level_test

    collapsed = [{"id": "p", "units": [1], "reward": 1.0, "verdict": "valid", "extracted": [1], "novel": False}] * 64
    diverse = [{"id": "p", "units": [i], "reward": 1.0, "verdict": "valid", "extracted": [i], "novel": True}
               for i in range(64)]
    test = sample_level_test({(0, "p"): collapsed}, {(0, "p"): diverse}, "coverage", n_boot=100, n_perm=100)
    assert test["diff"] == 64 and test["lo"] > 0 and test["p"] < 0.05 and test["ci_over"] == "samples"
    null = sample_level_test({(0, "p"): diverse}, {(0, "p"): list(diverse)}, "accuracy", n_boot=50, n_perm=50)
    assert null["diff"] == 0 and null["p"] > 0.5
