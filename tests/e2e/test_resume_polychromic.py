"""method=polychromic resumes only its own run, and a resumed run equals an uninterrupted one
(issue #22): checkpoints store the deciding config, a changed config (lam, seed, architecture)
is one line naming the keys before any stage, and after a kill between two checkpoints the
metrics, the summary's first reward and rollouts.jsonl match the uninterrupted run's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_bad_input import SMALL, assert_one_line, copy_run, run_main

POLY = ["experiment=smoke", *SMALL, "method=polychromic", "method.n_samples=4", "method.set_size=2",
        "method.prompts_per_update=2", "method.rollout_batch_size=8", "method.minibatch_size=8", "method.ppo_epochs=1",
        "stages=[data,train]", "train.max_steps=2", "train.save_steps=1", "train.num_threads=1"]


def _cli(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    """The real CLI in its own process, as a user runs it (and resumes a killed run)."""
    env = {**os.environ, "METAEXAMPLES_CACHE": str(cache), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "metaexamples", *args, "logger=none"], env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 2-update polychromic run with a checkpoint after each update (and its cache)."""
    root = tmp_path_factory.mktemp("poly_resume")
    run, cache = root / "run", root / "cache"
    proc = _cli([*POLY, f"hydra.run.dir={run}"], cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, cache


def test_checkpoints_store_the_deciding_config_and_the_weights_once(finished):
    run, _ = finished
    meta = json.loads((run / "checkpoints" / "checkpoint-000001" / "checkpoint.json").read_text())
    assert meta["config"]["method"]["lam"] == 1.0 and meta["config"]["seed"] == 0
    assert meta["config"]["model"]["arch"]["hidden_size"] == 64
    state = run / "checkpoints" / "checkpoint-000001" / "state"
    assert not list(state.glob("model*.safetensors"))  # the HF files beside state/ hold them
    private = [p for p in (run / "checkpoints").rglob("*") if p.is_file() and (p.stat().st_mode & 0o077) == 0]
    assert not private, private  # nothing 0600 whatever the library does (umask 022 here)


@pytest.mark.parametrize("override,needle", [
    ("method.lam=0.5", "method.lam: 1.0 -> 0.5"),
    ("seed=3", "seed: 0 -> 3"),
    ("model.arch.hidden_size=96", "model.arch.hidden_size: 64 -> 96"),
])
def test_resuming_with_another_config_is_refused_naming_the_key(finished, tmp_path, capsys, override, needle):
    run, cache = copy_run(finished, tmp_path)
    shutil.rmtree(run / "checkpoints" / "checkpoint-000002")  # killed after the first update's checkpoint
    results = (run / "results.json").read_text()
    code, errors, err = run_main([*POLY, override, f"hydra.run.dir={run}"], capsys, cache)
    assert_one_line(code, errors, err, "train.resume:", needle, "train.resume=false")
    assert "stage data: start" not in err
    assert (run / "results.json").read_text() == results  # the finished run's record, untouched


def test_a_resumed_run_equals_an_uninterrupted_one(finished, tmp_path, capsys):
    """Killed after logging update 2 but before its checkpoint: resuming from checkpoint 1 redoes
    update 2; rollouts.jsonl has no duplicated rows and the summary covers both updates."""
    run, cache = copy_run(finished, tmp_path)
    whole = json.loads((finished[0] / "results.json").read_text())["train"]
    rollouts = (finished[0] / "train" / "rollouts.jsonl").read_text()
    shutil.rmtree(run / "checkpoints" / "checkpoint-000002")
    shutil.rmtree(run / "model")
    proc = _cli([*POLY, f"hydra.run.dir={run}"], cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = json.loads((run / "results.json").read_text())["train"]
    assert resumed["resumed_from"] == 1
    assert (run / "train" / "rollouts.jsonl").read_text() == rollouts  # 2 updates x 2 prompts x 4 samples, once
    for key in ("first_reward", "final_reward", "final_diversity", "final_loss", "samples", "updates"):
        assert resumed[key] == whole[key], key
    metrics = [json.loads(line) for line in (run / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert resumed["mean_update_s"] == pytest.approx(sum(m["train/update_s"] for m in metrics) / 2)
