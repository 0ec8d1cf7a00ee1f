"""Evaluation on the real tokenizer, real data and a real tiny OLMo: the batched scorer against
a one-string-at-a-time computation, the ppl metrics against scikit-learn recomputed from the
saved files, constrained decoding, and one-line errors for bad input."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

from metaexamples.tasks.grammar.build import run_data_stage
from metaexamples.tasks.grammar.bundle import load_bundle
from metaexamples.errors import ConfigError
from metaexamples.evaluation import scoring
from metaexamples.evaluation.scoring import score_strings
from metaexamples.tasks.grammar import GrammarTask
from metaexamples.tasks.grammar.generation import run_eval_gen
from metaexamples.tasks.grammar.ppl import run_eval_ppl
from metaexamples.tasks.grammar.generation import make_prompts, max_new_tokens, sample
from metaexamples.evaluation.metrics import choose_threshold
from metaexamples.evaluation.scoring import logsumexp_of_head
from metaexamples.io import read_json, read_jsonl
from metaexamples.models import load_model
from metaexamples.pipeline import run_stages
from metaexamples.tracking import Tracker

SMALL = ["data.n_train_items=300", "data.n_eval=40", "data.n_test=60"]
# A wider initialisation than the default 0.02 gives peaked, string-dependent next-token
# distributions (like a trained model) instead of near-uniform ones, so a scorer that reads
# the wrong positions cannot pass by accident.
PEAKED = ["+model.arch.initializer_range=0.3"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these are many small ops, and on a shared, loaded 2-core machine a
    second thread mostly waits at barriers (this file took 3x longer with two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("eval_cache")


@pytest.fixture(scope="module")
def data(compose_cfg, tokenizer, cache):
    """data(grammar, *overrides) -> (cfg, bundle); each grammar's data is built once (the
    overrides must not change the data: decoding, eval, stages, model)."""
    built: dict[str, Path] = {}

    def _data(grammar: str, *overrides: str):
        if grammar not in built:
            base = compose_cfg([f"grammar={grammar}", *SMALL], cache_dir=cache)
            built[grammar] = run_data_stage(base, tokenizer, cache)
        cfg = compose_cfg([f"grammar={grammar}", *SMALL, *PEAKED, *overrides], cache_dir=cache)
        return cfg, load_bundle(built[grammar])

    return _data


@pytest.fixture(scope="module")
def model(compose_cfg, tokenizer):
    return load_model(compose_cfg(PEAKED).model, tokenizer, seed=0).eval()


def one_at_a_time_nll(model, ids: list[int], n_context: int) -> float:
    """The textbook computation: full logits, log-softmax, gather the next tokens."""
    with torch.inference_mode():
        x = torch.tensor([ids])
        logp = torch.log_softmax(model(x).logits[0].float(), dim=-1)
        return float(-logp[n_context - 1:-1].gather(1, x[0, n_context:, None]).sum())


# --- scoring --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["prefix tree", "prefix tree, 17-node chunks", "prefix tree, eager attention",
                                  "model logits"])
def test_batched_scores_equal_one_string_at_a_time(data, model, path, monkeypatch):
    if path == "model logits":  # the path for models whose logits are not a plain linear head
        monkeypatch.setattr(scoring, "plain_linear_head", lambda model: (None, None))
    if "17-node" in path:  # many chunks: most start deep in the tree, with ancestors prepended
        monkeypatch.setattr(scoring, "CHUNK_NODES", 17)
    if "eager" in path:  # an additive float mask instead of sdpa's boolean one
        monkeypatch.setattr(model.config, "_attn_implementation", "eager")
        monkeypatch.setattr(scoring, "CHUNK_NODES", 17)
    _, bundle = data("g1")
    rows = bundle.split("test_valid") + bundle.split("test_invalid")
    random.Random(0).shuffle(rows)  # input order is not length order: results must come back in order
    rows = rows[:48] + rows[:2]  # and a string twice: both get its score
    bodies = [r["ids"] for r in rows]
    assert len({len(b) for b in bodies}) >= 6, "want strings of varied lengths (padding in every batch)"
    got = score_strings(model, bundle.open_ids, bodies, bundle.close_ids, batch_size=7)
    n_open, n_close = len(bundle.open_ids), len(bundle.close_ids)
    per_token = []
    for body, g in zip(bodies, got):
        expected = one_at_a_time_nll(model, bundle.open_ids + body + bundle.close_ids, n_open)
        assert g["nll"] == pytest.approx(expected, abs=1e-4)
        assert g["n_tokens"] == len(body) + n_close
        assert g["ppl"] == pytest.approx(torch.tensor(expected / g["n_tokens"]).exp().item(), rel=1e-5)
        assert g["nll_per_symbol"] == pytest.approx(expected / len(body), abs=1e-4)
        per_token.append(expected / g["n_tokens"])
    # The check has teeth: strings get clearly different per-token NLLs.
    assert max(per_token) - min(per_token) > 0.5


@pytest.mark.parametrize("scale", [0.05, 1.0, 40.0, -40.0])
def test_blocked_log_normaliser_equals_logsumexp(scale):
    """Small and large logits (the latter overflow exp and take the fallback path)."""
    gen = torch.Generator().manual_seed(0)
    # 2,500 rows: two full row blocks and a partial one through the reused block buffer.
    weight, x = torch.randn(3000, 16, generator=gen), torch.randn(2500, 16, generator=gen) * scale
    expected = torch.logsumexp(x.double() @ weight.double().T, dim=-1)
    got = logsumexp_of_head(x, weight).double()
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-5)


# --- eval_ppl metrics -----------------------------------------------------------------------
def test_ppl_metrics_equal_sklearn_on_the_saved_scores(data, model, tokenizer, tmp_path):
    cfg, bundle = data("g1")
    ppl = run_eval_ppl(cfg, bundle, model, tokenizer, tmp_path, Tracker())
    out = tmp_path / "eval_ppl"
    rows = read_jsonl(out / "scores.jsonl")
    test = [r for r in rows if r["split"] == "test"]
    held = [r for r in rows if r["split"] == "eval"]
    assert len(test) == 120 and len(held) == len(bundle.split("eval"))
    for r in rows:  # the saved score is minus log-ppl of the saved nll
        assert r["score"] == pytest.approx(-r["nll"] / r["n_tokens"], rel=1e-12)

    labels = [int(r["valid"]) for r in test]
    scores = [r["score"] for r in test]
    assert ppl["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert ppl["aupr"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    # AUROC on each kind of negative alone: all valid strings vs the random / the edited ones.
    for key, keep in (("auroc_random", lambda r: r["how"] == "random"), ("auroc_hard", lambda r: r["how"] != "random")):
        subset = [r for r in test if r["valid"] or keep(r)]
        assert 0 < sum(not r["valid"] for r in subset) < sum(not r["valid"] for r in test)
        assert ppl[key] == pytest.approx(roc_auc_score([int(r["valid"]) for r in subset],
                                                       [r["score"] for r in subset]), abs=1e-12), key

    # The threshold comes from the eval split (the saved eval rows, and a fresh scoring of it).
    held_labels = [int(r["valid"]) for r in held]
    assert ppl["threshold"] == choose_threshold(held_labels, [r["score"] for r in held])
    fresh = score_strings(model, bundle.open_ids, [r["ids"] for r in bundle.split("eval")], bundle.close_ids)
    # Equal to float32 rounding (rel 1e-6): which strings share a forward changes the order of sums.
    assert [-s["nll"] / s["n_tokens"] for s in fresh] == pytest.approx([r["score"] for r in held], rel=1e-6)
    predicted = [int(s >= ppl["threshold"]) for s in scores]
    assert ppl["balanced_acc"] == pytest.approx(balanced_accuracy_score(labels, predicted), abs=1e-12)

    saved = read_json(out / "metrics.json")
    assert saved["auroc"] == ppl["auroc"] and saved["threshold"] == ppl["threshold"]
    assert (out / "roc.png").stat().st_size > 0 and (out / "pr.png").stat().st_size > 0


# --- constrained decoding -------------------------------------------------------------------
def generate(cfg, bundle, model, tokenizer, n: int = 32) -> list[dict]:
    dec = cfg.decoding
    prompts = make_prompts(bundle, n, int(cfg.task.seed_symbols), 0, bundle.split("train"))
    max_new = max_new_tokens(cfg.task, int(bundle.grammar["max_len"]), len(bundle.close_ids))
    return sample(model, tokenizer, bundle, dec, prompts, batch_size=16, max_new_tokens=max_new, seed=0)


@pytest.mark.parametrize("seed_symbols", [0, 2])
@pytest.mark.parametrize("grammar", ["g1", "g2", "g3", "dyck"])
def test_grammar_decoding_gives_only_valid_samples(data, model, tokenizer, grammar, seed_symbols):
    cfg, bundle = data(grammar, "decoding=grammar", f"task.seed_symbols={seed_symbols}")
    symbol_of = {t: i for i, t in enumerate(bundle.symbol_ids)}
    samples = generate(cfg, bundle, model, tokenizer)
    for s in samples:
        # Checked from the raw tokens, not from the stage's own verdict only.
        assert s["stop"] == "close" and s["tokens"][-len(bundle.close_ids):] == bundle.close_ids
        body = s["tokens"][:-len(bundle.close_ids)]
        assert all(t in symbol_of for t in body)
        string = [symbol_of[t] for t in body]
        full = s["prompt_symbols"] + string
        assert len(s["prompt_symbols"]) == seed_symbols
        assert bundle.language.is_valid(full), (grammar, full)
        assert s["verdict"] == "valid" and s["symbols"] == full


def test_alphabet_decoding_emits_only_symbols_and_the_closing_tag(data, model, tokenizer, tmp_path):
    cfg, bundle = data("g2", "decoding=alphabet", "task.n_samples=48", "eval.gen_batch_size=16")
    gen = run_eval_gen(GrammarTask(cfg, tokenizer, None, bundle=bundle), model, tokenizer, tmp_path, Tracker())
    samples = read_jsonl(tmp_path / "eval_gen" / "samples.jsonl")
    symbols, close = set(bundle.symbol_ids), bundle.close_ids
    for s in samples:
        tokens = s["tokens"]
        # body = symbols up to the closing tag's first token; then the tag (or, when the
        # budget ran out inside it, a prefix of it)
        at = tokens.index(close[0]) if close[0] in tokens else len(tokens)
        body, tag = tokens[:at], tokens[at:]
        assert all(t in symbols for t in body), s
        assert tag == close[:len(tag)], s
        assert (s["stop"] == "close") == (tag == close)
        assert s["verdict"] != "foreign_token"
    assert any(s["stop"] == "close" for s in samples)
    assert gen["samples"] == 48 and gen["failures"]["foreign_token"] == 0


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("override, key", [
    ("decoding.top_p=1.5", "decoding.top_p"),
    ("decoding.top_p=0", "decoding.top_p"),
    ("decoding.temperature=-0.5", "decoding.temperature"),
])
def test_bad_decoding_settings_are_one_line(data, model, tokenizer, tmp_path, override, key):
    cfg, bundle = data("g1", "decoding=top_p", override)
    with pytest.raises(ConfigError) as err:
        run_eval_gen(GrammarTask(cfg, tokenizer, None, bundle=bundle), model, tokenizer, tmp_path, Tracker())
    message = str(err.value)
    assert message.startswith(f"{key}: ") and "\n" not in message
    assert not (tmp_path / "eval_gen").exists()  # refused before any work


@pytest.fixture(scope="module")
def tokenizer_only(tokenizer, tmp_path_factory) -> Path:
    """A folder with a tokenizer but no model (no config.json): not a checkpoint."""
    folder = tmp_path_factory.mktemp("not_a_model")
    tokenizer.save_pretrained(folder)
    return folder


def test_a_checkpoint_folder_that_is_not_a_model_names_model_path(data, tokenizer_only, tmp_path):
    cfg, _ = data("g1", "stages=[eval_ppl]", f"model.path={tokenizer_only}")
    with pytest.raises(ConfigError, match=r"^model\.path: .*no config\.json") as err:
        run_stages(cfg, tmp_path, Tracker(), None)
    assert str(tokenizer_only) in str(err.value) and "\n" not in str(err.value)


def test_missing_data_names_the_stage_to_run(compose_cfg, cache, tokenizer_only, tmp_path):
    # seed=12345: a data config nobody built in this cache.
    cfg = compose_cfg(["grammar=g3", *SMALL, "seed=12345", "stages=[eval_gen]", "decoding=grammar",
                       f"model.path={tokenizer_only}"], cache_dir=cache)
    with pytest.raises(ConfigError, match=r"grammar=g3 .*run the data stage first .*stages=\[data"):
        run_stages(cfg, tmp_path, Tracker(), None)
    with pytest.raises(ConfigError, match=r"run the data stage \(stages=\[data\]\)"):
        load_bundle(tmp_path / "no_data_here")
