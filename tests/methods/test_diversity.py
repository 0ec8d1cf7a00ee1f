"""Shared diversity metrics and statistics (evaluation/diversity.py, evaluation/stats.py) and the
eval_sets figures recomputed from a samples file (evaluation/sets.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from metaexamples.evaluation.diversity import (completion_embeddings, distinct_n, mean_pairwise_cosine_distance,
                                               self_bleu)
from metaexamples.evaluation.metrics import pass_at_k
from metaexamples.evaluation.sets import compare, metrics_from_samples, per_prompt, strip_completion
from metaexamples.evaluation.stats import bootstrap_ci, paired_test, sign_flip_p
from metaexamples.io import write_jsonl


def test_distinct_n_pools_unique_ngrams_over_all_ngrams():
    samples = [[1, 2, 3], [1, 2, 4], [5]]
    assert distinct_n(samples, 1) == pytest.approx(5 / 7)  # unigrams 1,2,3,1,2,4,5
    assert distinct_n(samples, 2) == pytest.approx(3 / 4)  # (1,2),(2,3),(1,2),(2,4); [5] has none
    assert distinct_n([[7]], 2) is None
    assert distinct_n([[1, 1], [1, 1]], 1) == pytest.approx(1 / 4)


def test_self_bleu_excludes_the_hypothesis_from_its_references():
    a, b = [1, 2, 3, 4, 5], [6, 7, 8, 9, 10]
    assert self_bleu([a, a, a]) == pytest.approx(1.0)
    assert self_bleu([a, b]) == pytest.approx(0.0)  # with itself as a reference it would be 1
    mixed = self_bleu([a, a, b])  # a matches its twin, b matches nothing
    assert mixed == pytest.approx(2 / 3)
    assert self_bleu([a]) is None


def test_mean_pairwise_cosine_distance_equals_the_pairwise_loop():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(9, 5))
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    brute = np.mean([1 - u[i] @ u[j] for i, j in itertools.permutations(range(9), 2)])
    assert mean_pairwise_cosine_distance(v) == pytest.approx(brute)
    assert mean_pairwise_cosine_distance(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-12)
    assert mean_pairwise_cosine_distance(v[:1]) is None
    big = rng.normal(size=(20000, 4))  # 20000^2 pairs never materialised
    assert 0.9 < mean_pairwise_cosine_distance(big) < 1.1


def _tiny_lm():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def test_completion_embeddings_do_not_depend_on_the_batch_size():
    model = _tiny_lm()
    prompts = [[1, 2], [1, 2, 3], [4], [5, 6]]
    completions = [[7, 8, 9], [10], [], [11, 12]]
    one = completion_embeddings(model, prompts, completions, batch_size=1, pad_id=0)
    three = completion_embeddings(model, prompts, completions, batch_size=3, pad_id=0)
    assert one.shape == (4, 16)
    np.testing.assert_allclose(one, three, atol=1e-5)
    # the pooled state of [1,2]+[7,8,9] is the mean of its last three positions' hidden states
    hidden = model.get_decoder()(input_ids=torch.tensor([[1, 2, 7, 8, 9]])).last_hidden_state[0]
    np.testing.assert_allclose(one[0], hidden[2:].mean(0).detach().numpy(), atol=1e-5)


def test_bootstrap_interval_brackets_the_mean_and_is_seeded():
    values = np.random.default_rng(1).normal(0.5, 0.1, 50)
    ci = bootstrap_ci(values, seed=3)
    assert ci["lo"] < ci["mean"] < ci["hi"] and ci["n"] == 50
    assert ci == bootstrap_ci(values, seed=3)
    assert bootstrap_ci([0.2] * 10)["lo"] == pytest.approx(0.2)
    assert bootstrap_ci([None, None])["mean"] is None
    assert bootstrap_ci([1.0, None, 3.0])["mean"] == pytest.approx(2.0)


def test_paired_test_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, 40)
    same = paired_test(a, a)
    assert same["diff"] == 0 and same["p"] == 1.0
    shifted = paired_test(a, a + 0.5 + rng.normal(0, 0.1, 40))
    assert shifted["p"] < 0.001 and shifted["lo"] > 0.3
    # exact enumeration for few units: 4 positive differences -> only the 2 all-same-sign vectors tie
    assert sign_flip_p(np.array([1.0, 2.0, 1.5, 1.0])) == pytest.approx(2 / 16)


def _rows(pid: str, seed: int, outputs: list[list[int]], rewards: list[float], novel=None) -> list[dict]:
    return [{"id": pid, "seed": seed, "sample": i, "units": o, "extracted": o if r >= 1 else None,
             "reward": r, "verdict": "valid" if r >= 1 else "rule", "novel": novel}
            for i, (o, r) in enumerate(zip(outputs, rewards))]


def test_metrics_recomputed_from_samples():
    rows = _rows("p0", 0, [[1, 2], [1, 2], [3, 4], [5]], [1, 1, 0, 1]) + \
        _rows("p1", 0, [[1], [1], [1], [1]], [0, 0, 0, 1])
    emb = np.eye(8)[:8]
    out = metrics_from_samples(rows, emb, ks=[1, 2, 4])
    assert out["problems"] == 2 and out["samples"] == 8
    assert out["pass@1"] == pytest.approx((pass_at_k(4, 3, 1) + pass_at_k(4, 1, 1)) / 2)
    assert out["pass@4"] == pytest.approx(1.0)
    assert out["coverage"] == pytest.approx((2 + 1) / 2)  # p0: {[1,2],[5]}; p1: {[1]}
    assert out["semantic"] == pytest.approx(1.0)  # orthogonal embeddings
    p = per_prompt(rows, None, [1])
    assert p["p1"]["distinct_1"] == pytest.approx(1 / 4) and p["p1"]["self_bleu"] == pytest.approx(1.0)
    assert out["ci"]["pass@1"]["lo"] <= out["pass@1"] <= out["ci"]["pass@1"]["hi"]
    assert "[" in out["display"]["coverage"]
    # only novel outputs count towards coverage where novelty is known
    known = _rows("p0", 0, [[1, 2], [3]], [1, 1], novel=False)
    known[1]["novel"] = True
    assert metrics_from_samples(known, None, [1])["coverage"] == 1.0


def test_strip_completion_drops_the_stop_sequence_or_eos():
    assert strip_completion([5, 6, 7, 8, 9], [7, 8], 2) == [5, 6]
    assert strip_completion([5, 2, 7], [7, 8], 2) == [5]
    assert strip_completion([5, 6], [], None) == [5, 6]


def test_compare_pairs_arms_over_seed_and_prompt(tmp_path):
    jobs = []
    for seed in (0, 1):
        for lam, correct in ((0.0, [[1]] * 4), (1.0, [[1], [2], [3], [4]])):
            folder = tmp_path / f"s{seed}_l{lam}"
            rows = []
            for p in range(5):
                rows += _rows(f"p{p}", seed, correct, [1, 1, 1, 0])
            write_jsonl(folder / "eval_sets" / "samples.jsonl", rows)
            jobs.append({"seed": seed, "output_dir": str(folder), "lam": lam})
    out = compare(jobs, lambda j: f"lam={j['lam']}", "lam=0.0", ["coverage", "pass@1", "distinct_1"], ks=[1])
    base, arm = out["lam=0.0"], out["lam=1.0"]
    assert arm["jobs"] == 2 and arm["paired_units"] == 10
    assert arm["coverage"]["diff"] == pytest.approx(2.0) and arm["coverage"]["ratio"] == pytest.approx(3.0)
    assert arm["coverage"]["p"] < 0.01
    assert arm["pass@1"]["diff"] == pytest.approx(0.0) and arm["pass@1"]["p"] == 1.0
    assert base["coverage"]["diff"] == 0
