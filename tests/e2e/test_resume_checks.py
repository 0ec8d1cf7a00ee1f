"""Issue #22: every option the config alone decides is checked before any stage (in process,
`config.validate`), and the CLI turns what used to be tracebacks or silent results into one
line, exit 2 (through `cli.main`, as a user meets them)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_bad_input import LAST_OUT, SMALL, assert_one_line, partial_files, run_main, trained_run  # noqa: F401
from test_bad_input import test_bad_values_are_refused_before_any_stage as refused_before_any_stage

PROC = ["task=procedural", "experiment=smoke"]
POLY = ["method=polychromic"]
EI = ["method=expert_iteration"]

# (overrides, the key the one line starts with): each was accepted before (a silent wrong
# result or a traceback later), or refused only after a stage had run.
VALUES = [
    (["seed=-1"], "seed"),
    (["train.precision=fp16"], "train.precision"),  # the tests run on a CPU
    (["train.distributed=fsdp"], "train.distributed"),
    (["train.lora.enabled=true", "train.lora.r=0"], "train.lora.r"),
    (["train.lora.enabled=true", "train.lora.alpha=-1"], "train.lora.alpha"),
    (["train.lora.enabled=true", "train.lora.dropout=1.5"], "train.lora.dropout"),
    (["train.lora.enabled=true", "train.lora.target_modules=[]"], "train.lora.target_modules"),
    ([*PROC, "eval.set_problems=0"], "eval.set_problems"),
    ([*PROC, "eval.set_samples=0"], "eval.set_samples"),
    ([*PROC, "eval.set_ks=[]"], "eval.set_ks"),
    ([*PROC, "eval.set_ks=[50]"], "eval.set_ks"),
    ([*PROC, "task.eval_splits=[]"], "task.eval_splits"),
    ([*PROC, "task.pass_k=[]"], "task.pass_k"),
    ([*PROC, "task.show_failures=-1"], "task.show_failures"),
    # polychromic: every range before the data stage (it was checked at train time)
    ([*POLY, "method.lam=-1"], "method.lam"),
    ([*POLY, "method.set_size=8"], "method.n_samples"),
    ([*POLY, "method.set_size=1"], "method.set_size"),
    ([*POLY, "method.lr=0"], "method.lr"),
    ([*POLY, "method.clip_eps=0"], "method.clip_eps"),
    ([*POLY, "method.kl_coef=-1"], "method.kl_coef"),
    ([*POLY, "method.form=bogus"], "method.form"),
    ([*POLY, "method.diversity=bogus"], "method.diversity"),
    ([*POLY, "method.max_sets=0"], "method.max_sets"),
    ([*POLY, "method.warmup_lr=-1"], "method.warmup_lr"),
    ([*POLY, "method.warmup_batch_size=0"], "method.warmup_batch_size"),
    # expert iteration: a detector that cannot fire, an evaluation of nothing, references that do not exist
    ([*PROC, *EI, "method.grok_rise=-1"], "method.grok_rise"),
    ([*PROC, *EI, "method.grok_within=0"], "method.grok_within"),
    ([*PROC, *EI, "method.grok_train_above=5"], "method.grok_train_above"),
    ([*PROC, *EI, "method.eval_splits=[]"], "method.eval_splits"),
    ([*EI, "method.control=reference"], "method.control"),
    ([*EI, "method.rationalize=true"], "method.rationalize"),
    # the grammar task's lengths and corpus (refused by the data stage, after it started)
    (["grammar.length_dist={3: 0.0}"], "grammar.length_dist"),
    (["grammar.length_dist=bogus"], "grammar.length_dist"),
    (["grammar=dyck", "grammar.min_len=3", "grammar.max_len=3"], "grammar.max_len"),
    (["corpus=text_files", "corpus.glob=/nonexistent/*.txt"], "corpus.glob"),
    (["corpus=text_files"], "corpus.glob"),
]


@pytest.mark.parametrize("overrides,key", VALUES, ids=[" ".join(o) for o, _ in VALUES])
def test_settings_decided_by_the_config_are_refused_before_any_stage(compose_cfg, tmp_path, overrides, key):
    refused_before_any_stage(compose_cfg, tmp_path, overrides, key)


DATA_ONLY = ["experiment=smoke", *SMALL, "stages=[data]"]


@pytest.mark.parametrize("args,needles", [
    (["grammar.max_len=${oops}"], ["grammar.max_len: cannot resolve", "oops"]),
    (["+grammar=g2"], ["+grammar: grammar is already chosen", "grammar=<option>"]),
    (["method=polychromic", "polychromic_arm=grpo"], ["polychromic_arm: a config group", "+polychromic_arm=<option>",
                                                      "grpo"]),
], ids=["interpolation", "+grammar", "polychromic_arm"])
def test_config_mistakes_are_one_line_that_says_what_to_type(capsys, tmp_path, args, needles):
    code, errors, err = run_main([*DATA_ONLY, *args, f"hydra.run.dir={tmp_path / 'run'}"], capsys, tmp_path / "cache")
    assert_one_line(code, errors, err, *needles)
    assert not (tmp_path / "cache" / "data").exists()


def test_a_sweep_with_an_unknown_option_says_which_and_that_no_job_ran(capsys, tmp_path):
    code, errors, err = run_main(["-m", *DATA_ONLY, "grammar=g1,bogus", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                                 capsys, tmp_path / "cache")
    assert_one_line(code, errors, err, "grammar=bogus: no such option", "no job ran")
    assert "report:" not in LAST_OUT[0]


def test_a_cache_that_cannot_be_created_is_one_line_before_any_stage(capsys, tmp_path):
    code, errors, err = run_main([*DATA_ONLY, f"hydra.run.dir={tmp_path / 'run'}", "paths.cache_dir=/proc/mx-cache"],
                                 capsys, tmp_path / "cache")
    assert_one_line(code, errors, err, "paths.cache_dir: /proc/mx-cache: cannot be created")


def test_a_truncated_results_json_is_one_line_naming_it(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text('{"run": "g1-meta_5pct-tiny", "sta')
    code, errors, err = run_main([*DATA_ONLY, f"hydra.run.dir={run}"], capsys, tmp_path / "cache")
    assert_one_line(code, errors, err, str(run / "results.json"), "not valid JSON")


def test_polychromic_on_a_task_whose_default_stages_omit_train_is_refused(capsys, tmp_path):
    """The README's `method=polychromic task=procedural`: procedural's default stages are
    [data, eval_verify], so nothing was trained and results.json said `method: polychromic`."""
    code, errors, err = run_main([*PROC, "method=polychromic", f"hydra.run.dir={tmp_path / 'run'}"], capsys,
                                 tmp_path / "cache")
    assert_one_line(code, errors, err, "stages: method=polychromic trains in the train stage",
                    "stages=[data,train,eval_verify]")
    assert not (tmp_path / "cache" / "data").exists()  # before the data stage


def test_an_error_is_printed_once_when_stdout_and_stderr_share_a_file(tmp_path):
    """The real CLI, `> log 2>&1`: the error line once (the run's log file keeps its copy)."""
    log = tmp_path / "log"
    env = {**os.environ, "METAEXAMPLES_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with open(log, "w") as f:
        code = subprocess.run([sys.executable, "-m", "metaexamples", *DATA_ONLY, "logger=none", "seed=-1",
                               f"hydra.run.dir={tmp_path / 'run'}"], stdout=f, stderr=subprocess.STDOUT,
                              env=env, timeout=300).returncode
    text = log.read_text()
    assert code == 2
    assert text.count("seed: must be in") == 1, text
    assert "\r" not in text
    assert "seed: must be in" in (tmp_path / "run" / "metaexamples.log").read_text()


TRAIN = ["experiment=smoke", *SMALL, "stages=[data,train]", "train.max_steps=2", "train.save_steps=1",
         "train.eval_steps=2", "train.log_steps=1", "train.num_threads=1"]


def test_a_full_disk_while_saving_is_one_line_and_leaves_no_partial_checkpoint(capsys, tmp_path, monkeypatch):
    """ENOSPC raised by the write itself (an OSError naming no file): the line names the run
    folder's setting, and the half-written .checkpoint-*.tmp is gone."""
    from metaexamples.training import checkpoint

    real = checkpoint.export_hf

    def full_disk(accelerator, model, tokenizer, folder):
        real(accelerator, model, tokenizer, folder)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint, "export_hf", full_disk)
    run = tmp_path / "run"
    code, errors, err = run_main([*TRAIN, f"hydra.run.dir={run}"], capsys, tmp_path / "cache")
    assert_one_line(code, errors, err, "hydra.run.dir:", "No space left on device")
    assert not partial_files(run), partial_files(run)
    assert not list((run / "checkpoints").glob("checkpoint-*"))


def test_a_batch_that_cannot_fit_in_memory_is_one_line_before_the_first_step(capsys, tmp_path):
    run = tmp_path / "run"
    code, errors, err = run_main([*TRAIN, "train.batch_size=200000", f"hydra.run.dir={run}"], capsys,
                                 tmp_path / "cache")
    assert_one_line(code, errors, err, "train.batch_size: a micro-batch of 200000 x", "is available")
    assert not (run / "train" / "metrics.jsonl").exists()


def test_an_explicit_model_path_never_loses_silently_to_the_run_folders_model(trained_run, tmp_path, capsys):
    """Issue #20 (4): a copied run folder evaluated with model.path set to another model gave
    the folder's model's figures. Now refused in one line before any stage; the run's own model
    evaluated alone is recorded in results.json with the sha256 of its weights."""
    import json

    from metaexamples.io import file_sha256

    run, cache = trained_run
    copy, other = tmp_path / "run", tmp_path / "other"
    shutil.copytree(run, copy, symlinks=True)
    shutil.copytree(run / "checkpoints" / "checkpoint-000001", other)
    code, errors, err = run_main([*TRAIN[:-6], "stages=[eval_ppl]", f"model.path={other}", f"hydra.run.dir={copy}"],
                                 capsys, cache)
    assert_one_line(code, errors, err, f"model.path: {other} is set and the run folder holds its own trained model")
    code, errors, err = run_main([*TRAIN[:-6], "stages=[eval_ppl]", f"hydra.run.dir={copy}"], capsys, cache)
    assert code == 0, err[-3000:]
    evaluated = json.loads((copy / "results.json").read_text())["evaluated"]["eval_ppl"]
    assert evaluated["path"] == str((copy / "model").resolve())
    assert evaluated["sha256"] == {"model.safetensors": file_sha256(copy / "model" / "model.safetensors")}
