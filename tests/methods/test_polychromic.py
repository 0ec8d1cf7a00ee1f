"""method=polychromic: the set objective's math (methods/set_objective.py), proof that the
diversity term acts on the weights (gradients), the clipped loss, one-line bad input, and the
real CLI end to end (a lam=0,1 sweep with eval_sets, then the report's comparison)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from metaexamples.errors import ConfigError
from metaexamples.io import read_jsonl
from metaexamples.methods.polychromic import Batch, Policy, Polychromic, clipped_pg_loss
from metaexamples.evaluation.problems import output_key
from metaexamples.methods.set_objective import (DIVERSITIES, FORMS, make_sets, normalised_edit, set_advantages,
                                                set_advantages_by_definition, set_diversity)
from cli_runs import run_cli

REQUIRED = {"train/reward", "train/diversity", "train/set_score", "train/kl", "train/entropy", "train/clip_frac",
            "train/loss", "train/lr"}


def _random_group(rng, prompts=3, n=8, alphabet=3):
    rewards = rng.integers(0, 2, (prompts, n)).astype(float)
    keys = [[output_key(list(rng.integers(0, alphabet, rng.integers(1, 4))), []) for _ in range(n)]
            for _ in range(prompts)]
    return rewards, keys


# --- the set objective ------------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("diversity", sorted(DIVERSITIES))
def test_advantage_is_the_set_credit_by_definition(form, diversity):
    rng = np.random.default_rng(0)
    for lam in (0.0, 0.3, 1.0, 2.0):
        rewards, keys = _random_group(rng)
        got = set_advantages(rewards, keys, s=4, lam=lam, form=form, diversity=diversity)
        want = set_advantages_by_definition(rewards, keys, s=4, lam=lam, form=form, diversity=diversity)
        np.testing.assert_allclose(got.advantage, want, atol=1e-12)
        np.testing.assert_allclose(got.advantage, got.reward_part + got.diversity_part)


@pytest.mark.parametrize("max_sets", [2000, 10])  # all 70 sets, or 10 sampled ones
def test_lam_zero_is_group_relative_rl(max_sets):
    rewards, keys = _random_group(np.random.default_rng(1))
    for form in FORMS:
        adv = set_advantages(rewards, keys, s=4, lam=0.0, form=form, diversity="distinct", max_sets=max_sets)
        np.testing.assert_allclose(adv.advantage, (rewards - rewards.mean(1, keepdims=True)).ravel(), atol=1e-12)
        assert not adv.diversity_part.any()


def test_diversity_credits_samples_that_make_their_sets_diverse():
    # 8 correct samples: 5 identical, 3 distinct; the group-relative advantage is 0 for all
    rewards = np.ones((1, 8))
    keys = [[output_key([0, 0], [])] * 5 + [output_key([i, 9], []) for i in range(1, 4)]]
    grpo = set_advantages(rewards, keys, s=4, lam=0.0, form="product", diversity="distinct")
    assert not grpo.advantage.any()
    for form in FORMS:
        adv = set_advantages(rewards, keys, s=4, lam=1.0, form=form, diversity="distinct").advantage
        assert (adv[5:] > 0).all() and (adv[:5] < 0).all()
        assert adv.sum() == pytest.approx(0.0, abs=1e-12)  # the baseline centres each prompt
    # every set equally diverse: nothing to prefer, lam changes nothing
    distinct = [[output_key([i], []) for i in range(8)]]
    r = np.array([[1, 0, 1, 1, 0, 0, 1, 0.0]])
    adv = set_advantages(r, distinct, s=4, lam=2.0, form="product", diversity="distinct").advantage
    np.testing.assert_allclose(adv, (r - r.mean()).ravel())


def test_set_diversities_by_hand():
    keys = [output_key([1, 2, 3], []), output_key([1, 2, 3], []), output_key([1, 2, 4], []), output_key(None, [9])]
    sets = np.array([[0, 1], [0, 2], [0, 3]])
    np.testing.assert_allclose(set_diversity(keys, sets, "distinct"), [0.5, 1.0, 1.0])
    np.testing.assert_allclose(set_diversity(keys, sets, "edit"), [0.0, 1 / 3, 1.0])  # raw vs extracted: 1
    assert normalised_edit(output_key("abc", []), output_key("abd", [])) == pytest.approx(1 / 3)
    assert set_diversity(keys, np.array([[0, 1, 2, 3]]), "distinct")[0] == pytest.approx(3 / 4)


def test_sampled_sets_are_balanced_and_distinct_indices():
    sets = make_sets(16, 4, 100, np.random.default_rng(0))
    assert sets.shape == (100, 4)
    assert all(len(set(row)) == 4 for row in sets.tolist())
    counts = np.bincount(sets.ravel(), minlength=16)
    assert counts.max() - counts.min() <= 4
    assert make_sets(8, 4, 2000, np.random.default_rng(0)).shape == (70, 4)  # all C(8, 4)


# --- gradients: the diversity term acts on the weights -------------------------------------------------
def _tiny_policy():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True)
    return Policy(LlamaForCausalLM(cfg)).eval()


def _grads(policy, batch, token_adv) -> torch.Tensor:
    policy.zero_grad(set_to_none=True)
    logp, _ = policy(*batch.args())
    loss, _ = clipped_pg_loss(logp, logp.detach(), None, token_adv, 0.2, 0.0)
    loss.backward()
    return torch.cat([p.grad.ravel() for p in policy.parameters() if p.grad is not None])


def test_lam_changes_the_gradient_and_the_diversity_part_has_one():
    """On the same batch (one prompt, 8 samples, all correct, 5 of them the same string):
    lam = 0 and lam = 1 give different gradients, and the diversity part alone gives a non-zero
    one. Subtracting a detached diversity number from the loss (the naive bonus) gives none."""
    policy = _tiny_policy()
    prompt = [1, 2]
    outputs = [[3, 4, 5]] * 5 + [[6, 7], [8, 9, 10, 11], [12]]
    batch = Batch.build([(prompt, o + [31]) for o in outputs], pad=0, device="cpu")
    rewards = np.ones((1, 8))
    rewards[0, 6] = 0.0  # one failure, so lam = 0 has a gradient too
    keys = [[output_key(o, []) for o in outputs]]

    def token_adv(values):
        return torch.tensor(values, dtype=torch.float32)[batch.rows]

    adv0 = set_advantages(rewards, keys, s=4, lam=0.0, form="product", diversity="distinct")
    adv1 = set_advantages(rewards, keys, s=4, lam=1.0, form="product", diversity="distinct")
    g0, g1 = _grads(policy, batch, token_adv(adv0.advantage)), _grads(policy, batch, token_adv(adv1.advantage))
    g_div = _grads(policy, batch, token_adv(adv1.diversity_part))
    assert g0.norm() > 0 and g_div.norm() > 1e-4
    assert (g1 - g0).norm() > 1e-3 * g0.norm()
    torch.testing.assert_close(g1, g0 + g_div, rtol=1e-4, atol=1e-6)  # the loss is linear in A at ratio 1

    # the naive form: loss - lam * diversity(decoded text) with the diversity a plain number
    policy.zero_grad(set_to_none=True)
    logp, _ = policy(*batch.args())
    loss, _ = clipped_pg_loss(logp, logp.detach(), None, token_adv(adv0.advantage), 0.2, 0.0)
    (loss - 1.0 * float(adv1.diversity)).backward()
    naive = torch.cat([p.grad.ravel() for p in policy.parameters() if p.grad is not None])
    torch.testing.assert_close(naive, g0)


def test_clipped_loss_clips_and_the_kl_is_zero_at_the_reference():
    logp = torch.log(torch.tensor([0.5, 0.2, 0.9]))
    adv = torch.tensor([1.0, -1.0, 2.0])
    loss, stats = clipped_pg_loss(logp, logp, logp, adv, 0.2, 0.1)
    assert loss.item() == pytest.approx(-adv.mean().item())  # ratio 1, KL 0
    assert stats["kl"].item() == pytest.approx(0.0) and stats["clip_frac"].item() == 0.0
    new = logp + torch.tensor([0.5, 0.0, -0.5])  # ratios e^0.5 (clipped at 1.2 for A > 0), 1, e^-0.5
    loss, stats = clipped_pg_loss(new, logp, logp, adv, 0.2, 0.0)
    assert stats["clip_frac"].item() == pytest.approx(2 / 3)
    assert loss.item() == pytest.approx(-(1.2 * 1 + -1 + np.exp(-0.5) * 2) / 3, rel=1e-5)
    _, stats = clipped_pg_loss(new, logp, logp, adv, 0.2, 1.0)
    assert stats["kl"].item() > 0


# --- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("override, key", [
    ("method.n_samples=3", "method.n_samples"), ("method.set_size=1", "method.set_size"),
    ("method.lam=-0.5", "method.lam"), ("method.diversity=cosine", "method.diversity"),
    ("method.form=power", "method.form")])
def test_bad_settings_are_one_line_naming_the_key(compose_cfg, override, key):
    cfg = compose_cfg(["method=polychromic", override])

    class FakeTask:
        name = "grammar"

    with pytest.raises(ConfigError) as err:
        Polychromic().check(cfg, FakeTask())
    assert str(err.value).startswith(f"{key}:") and "\n" not in str(err.value)


def test_cli_bad_input_exits_2_with_one_line(tmp_path, shared_cache):
    proc = run_cli(["experiment=smoke", "method=polychromic", "method.set_size=9", "logger=none",
                    f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, shared_cache)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: method.n_samples: n (8) must be larger than "
                                                           "method.set_size (9)")


# --- the real CLI, end to end ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory, shared_cache) -> Path:
    """experiment=smoke method=polychromic, lam = 0 and 1 (the default stages plus eval_sets)."""
    root = tmp_path_factory.mktemp("poly")
    sweep_dir = root / "sweep"
    proc = run_cli(["-m", "experiment=smoke", "method=polychromic", "method.lam=0,1", "train.max_steps=2",
                    "method.n_samples=4", "method.set_size=2", "method.prompts_per_update=2",
                    "stages=[data,train,eval_ppl,eval_gen,eval_sets]", "eval.set_problems=3", "eval.set_samples=4",
                    "eval.set_ks=[1,2,4]", "task.seed_symbols=1", "logger=wandb_offline",
                    f"hydra.sweep.dir={sweep_dir}"], root, shared_cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sweep_dir


@pytest.mark.slow
def test_smoke_trains_logs_exports_and_evaluates_sets(sweep):
    from transformers import AutoModelForCausalLM

    job = sorted(p for p in sweep.iterdir() if p.is_dir() and (p / "results.json").exists())[1]
    results = json.loads((job / "results.json").read_text())
    assert results["status"] == "completed" and results["method"] == "polychromic"
    train = results["train"]
    assert train["updates"] == 2 and train["lam"] == 1.0 and train["form"] == "product"
    rows = read_jsonl(job / "train" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all(REQUIRED <= set(r) for r in rows)
    assert all(0.0 <= r["train/diversity"] <= 1.0 and r["train/kl"] >= 0 for r in rows)
    AutoModelForCausalLM.from_pretrained(job / "model")  # plain HF
    sets = results["sets"]
    assert sets["problems"] >= 1 and sets["samples_per_problem"] == 4
    assert {"pass@1", "pass@4", "distinct_2", "self_bleu", "coverage", "semantic"} <= set(sets)
    from metaexamples.evaluation.sets import load_samples, metrics_from_samples

    samples, emb = load_samples(job)
    assert len(samples) == sets["samples"] == len(emb)
    again = metrics_from_samples(samples, emb, [1, 2, 4], seed=results["seed"])
    for key in ("pass@1", "pass@4", "distinct_1", "distinct_2", "self_bleu", "coverage", "semantic"):
        assert again[key] == pytest.approx(sets[key]), key
    from wandb_records import read_run

    from cli_runs import offline_run_dir

    logged = {k for row in read_run(offline_run_dir(job))["history"] for k in row}
    assert REQUIRED <= logged


@pytest.mark.slow
def test_report_compares_every_arm_with_lam_zero(sweep):
    from metaexamples.report import build_report

    report = build_report(sweep)
    titles = [t for t, _, _ in report["tables"]]
    assert any(t.startswith("Polychromic RL") for t in titles)
    assert "polychromic_pass_at_k.png" in report["plots"] and (sweep / "polychromic_comparison.md").exists()
    comparison = json.loads((sweep / "polychromic_comparison.json").read_text())
    assert set(comparison) == {"lam=0 (GRPO)", "product lam=1 distinct"}
    arm = comparison["product lam=1 distinct"]
    assert arm["paired_units"] >= 1 and set(arm["pass@1"]) >= {"diff", "diff_lo", "diff_hi", "p"}
