"""method=expert_iteration: selection, the grokking detector, the loop end to end on grammar and
procedural problems (iteration folders, iterations.jsonl, W&B by iteration), that it really
trains, resume after kill -9 at the last finished iteration, and one-line bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metaexamples.io import read_jsonl
from metaexamples.methods.expert_iteration import ExpertIteration, detect_grokking, select
from metaexamples.evaluation.rollout import Rollout
from metaexamples.tasks import Problem, Verdict
from cli_runs import offline_run_dir, run_cli
from wandb_records import read_run

PROCEDURAL = ["task=procedural", "method=expert_iteration", "experiment=smoke", "model=tiny",
              "stages=[data,train,eval_verify]"]
# g1 with the alphabet constraint: most samples are valid, so every iteration trains on something.
GRAMMAR = ["task=grammar", "method=expert_iteration", "experiment=smoke", "decoding=alphabet",
           "stages=[data,train,eval_gen]"]


def roll(pid: str, tokens: list[int], reward: float) -> Rollout:
    return Rollout(problem=Problem(id=pid, prompt_ids=[1]), sample=0, tokens=tokens, text="", logprob=0.0,
                   verdict=Verdict(reward=reward, kind="correct" if reward else "wrong_answer"))


def test_select_keeps_accepted_deduplicated_at_most_m_per_problem():
    done = [roll("a", [1], 1), roll("a", [1], 1), roll("a", [2], 0), roll("a", [3], 1), roll("a", [4], 1),
            roll("b", [5], 0), roll("b", [6], 1)]
    kept = select(done, m=2, control="none")
    assert [(r.problem.id, r.tokens) for r in kept] == [("a", [1]), ("a", [3]), ("b", [6])]
    assert len(select(done, m=2, control="unverified")) == len(done)


def rows_of(train: list[float], val: list[float]) -> list[dict]:
    return [{"iteration": i, "train/accuracy": t, "heldout/accuracy": v} for i, (t, v) in enumerate(zip(train, val))]


def test_grokking_detector_definition():
    late = rows_of([0.5, 0.95, 0.97, 0.98, 0.99, 0.99, 0.99], [0.2, 0.3, 0.31, 0.3, 0.32, 0.5, 0.7])
    assert detect_grokking(late) == {"detected": True, "iteration": 6, "before": 0.32, "after": 0.7}
    no_plateau = rows_of([0.95] * 5, [0.1, 0.2, 0.3, 0.45, 0.6])  # steady climb: no flat stretch
    assert not detect_grokking(no_plateau)["detected"]
    untrained = rows_of([0.5] * 7, [0.3, 0.3, 0.3, 0.3, 0.7, 0.8, 0.8])  # train accuracy never above 0.9
    assert not detect_grokking(untrained)["detected"]
    too_slow = rows_of([0.99] * 9, [0.3, 0.3, 0.3, 0.3, 0.38, 0.46, 0.54, 0.62, 0.7])  # +0.4 over 5 its
    assert not detect_grokking(too_slow)["detected"]



def test_iteration_curves_tell_the_controls_of_one_sweep_apart(tmp_path):
    """Three controls share a run name; the plot's lines carry the report's run labels."""
    from metaexamples.methods.iteration_plot import iteration_curves, plot_iterations

    rows = []
    for control in ("none", "unverified", "reference"):
        log = tmp_path / f"{control}.jsonl"
        log.write_text("".join(json.dumps({"iteration": i, "heldout/accuracy": 0.1 * i}) + "\n" for i in range(3)))
        rows.append({"run": "procedural-all", "run_label": f"procedural-all method.control={control}",
                     "train": {"iterations_file": str(log)}})
    labels = [c[0] for c in iteration_curves(rows)]
    assert len(set(labels)) == 3 and all("method.control=" in label for label in labels)
    assert plot_iterations(rows, tmp_path / "iterations.png") == ["iterations.png"]
    assert (tmp_path / "iterations.png").stat().st_size > 0

@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ei_cache")


@pytest.fixture(scope="module")
def grammar_run(tmp_path_factory, cache) -> Path:
    run_dir = tmp_path_factory.mktemp("ei_grammar") / "run"
    proc = run_cli(GRAMMAR + [f"hydra.run.dir={run_dir}"], run_dir.parent, cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir


def test_grammar_loop_writes_iterations_and_trains(grammar_run):
    rows = read_jsonl(grammar_run / "iterations.jsonl")
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert 0 <= r["heldout/validity_rate"] <= 1 and "heldout/novel_valid" in r and "train/unique_valid" in r
        assert sum(r["heldout/failures/" + k] for k in ("no_close", "foreign_token", "length", "rule")) \
            + round(r["heldout/validity_rate"] * r["heldout/samples"]) == r["heldout/samples"]
    assert rows[1]["selected"] > 0 and rows[1]["steps"] == 4 and rows[1]["train_examples"] == rows[1]["selected"]
    assert rows[2]["train_examples"] == rows[1]["selected"] + rows[2]["selected"]  # rest_em: the growing set
    for it in (1, 2):
        folder = grammar_run / f"iter_{it}"
        assert (folder / "model" / "config.json").exists() and (folder / "metrics.json").exists()
        assert len(read_jsonl(folder / "selected.jsonl")) == rows[it]["selected"]
    # It really trained: iteration 2 (from the start model, on the grown set) is not iteration 1.
    from transformers import AutoModelForCausalLM

    final = AutoModelForCausalLM.from_pretrained(grammar_run / "model")
    first = AutoModelForCausalLM.from_pretrained(grammar_run / "iter_1" / "model")
    diffs = [float((a - b).abs().max()) for a, b in zip(final.state_dict().values(), first.state_dict().values())]
    assert max(diffs) > 0
    results = json.loads((grammar_run / "results.json").read_text())
    assert set(results["train"]["grokking"]) == {"detected", "iteration", "before", "after"}
    assert results["train"]["iterations"] == 2 and "gen" in results  # eval_gen ran on the final model


def test_wandb_logs_every_metric_with_the_iteration_as_step(grammar_run):
    record = read_run(offline_run_dir(grammar_run))
    steps = [row["_step"] for row in record["history"] if "ei/heldout/validity_rate" in row]
    assert steps == [0, 1, 2]


def test_procedural_smoke_runs_two_iterations_and_evaluates(tmp_path, cache):
    run_dir = tmp_path / "run"
    start = time.perf_counter()
    proc = run_cli(PROCEDURAL + ["logger=none", f"hydra.run.dir={run_dir}"], tmp_path, cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_jsonl(run_dir / "iterations.jsonl")
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert {"train/accuracy", "heldout/accuracy", "heldout/pass@1", "heldout/pass@4"} <= set(rows[0])
    results = json.loads((run_dir / "results.json").read_text())
    assert results["verify"]["test"]["samples"] == 24
    print(f"procedural expert-iteration smoke: {time.perf_counter() - start:.1f} s")


def test_reference_control_trains_on_references(tmp_path, cache):
    run_dir = tmp_path / "run"
    proc = run_cli(PROCEDURAL + ["logger=none", "method.control=reference", "method.iterations=1",
                                 "stages=[data,train]", f"hydra.run.dir={run_dir}"], tmp_path, cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    selected = read_jsonl(run_dir / "iter_1" / "selected.jsonl")
    assert len(selected) == 40 and {r["how"] for r in selected} == {"reference"}
    assert read_jsonl(run_dir / "iterations.jsonl")[1]["steps"] == 4


@pytest.mark.slow
def test_kill_9_resumes_at_the_last_finished_iteration(tmp_path, cache):
    run_dir = tmp_path / "run"
    args = GRAMMAR + ["logger=none", "method.iterations=3", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "METAEXAMPLES_CACHE": str(cache), "WANDB_SILENT": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "metaexamples", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    log = run_dir / "iterations.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(read_jsonl(log)) >= 2:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = read_jsonl(log)
    assert 2 <= len(finished) < 4, "the run ended before it could be killed mid-loop"
    kept = {r["iteration"]: (run_dir / f"iter_{r['iteration']}" / "metrics.json").stat().st_mtime_ns
            for r in finished}
    again = run_cli(args, tmp_path, cache)
    assert again.returncode == 0, again.stderr[-3000:]
    rows = read_jsonl(log)
    assert [r["iteration"] for r in rows] == [0, 1, 2, 3]
    for it, mtime in kept.items():  # finished iterations were not redone
        assert (run_dir / f"iter_{it}" / "metrics.json").stat().st_mtime_ns == mtime
    assert rows[:len(finished)] == finished


def test_a_finished_sft_survives_a_crash_before_iteration_0_is_logged(tmp_path, cache):
    """The SFT before iteration 0 is the loop's longest step on a CPU: a crash in iteration
    0's evaluation keeps it (reused, not retrained); another config is refused, one line."""
    run_dir = tmp_path / "run"
    args = GRAMMAR + ["logger=none", "method.iterations=1", "method.sft_steps=3", f"hydra.run.dir={run_dir}"]
    first = run_cli(args, tmp_path, cache)
    assert first.returncode == 0, first.stderr[-3000:]
    weights = run_dir / "iter_0" / "model" / "model.safetensors"
    sft_mtime = weights.stat().st_mtime_ns
    # As if killed while evaluating iteration 0: no iteration finished yet.
    (run_dir / "iterations.jsonl").unlink()
    (run_dir / "iter_0" / "metrics.json").unlink()
    shutil.rmtree(run_dir / "iter_1")
    again = run_cli(args, tmp_path, cache)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing the finished SFT" in again.stderr + again.stdout
    assert weights.stat().st_mtime_ns == sft_mtime
    assert [r["iteration"] for r in read_jsonl(run_dir / "iterations.jsonl")] == [0, 1]
    (run_dir / "iterations.jsonl").unlink()
    refused = run_cli(args[:-1] + ["method.sft_steps=4", f"hydra.run.dir={run_dir}"], tmp_path, cache)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 2 and len(errors) == 1 and "new run folder" in errors[0], refused.stderr[-2000:]


def test_resume_with_another_config_is_refused(grammar_run, cache):
    proc = run_cli(GRAMMAR + ["logger=none", "method.k=5", f"hydra.run.dir={grammar_run}"], grammar_run.parent, cache)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "method" in errors[0] and "new run folder" in errors[0], proc.stderr[-2000:]


def test_grammar_novelty_counts_the_loops_own_selections_as_seen(grammar_run, compose_cfg, tokenizer, cache):
    """A string the loop selected and fine-tuned on is memorised, not novel: the recorded
    novel_valid equals a recount that excludes the training strings and every selection so far."""
    from metaexamples.tasks import make_task

    task = make_task(compose_cfg(GRAMMAR[:4], cache_dir=cache), tokenizer, cache)
    task.prepare_data()
    rows = read_jsonl(grammar_run / "iterations.jsonl")
    seen: set = set()
    for it in (1, 2):
        selected = read_jsonl(grammar_run / f"iter_{it}" / "selected.jsonl")
        assert all(r["how"] == "valid" and r["extracted"] for r in selected)
        seen |= {tuple(r["extracted"]) for r in selected}
        samples = read_jsonl(grammar_run / f"iter_{it}" / "eval_heldout.jsonl")
        valid = [tuple(r["extracted"]) for r in samples if r["verdict"] == "valid"]
        novel = [v for v in valid if v not in seen and v not in task.bundle.train_strings]
        assert rows[it]["heldout/novel_valid"] == len(novel)
    # The final model's eval_gen counts them as known too (<run>/trained_on.jsonl, the union).
    from metaexamples.evaluation.trained_on import trained_on

    assert {tuple(x) for x in trained_on(grammar_run)} == seen
    gen_samples = read_jsonl(grammar_run / "eval_gen" / "samples.jsonl")
    for g in gen_samples:
        if g["verdict"] == "valid":
            assert g["novel"] == (tuple(g["symbols"]) not in seen | task.bundle.train_strings)
    gen = json.loads((grammar_run / "results.json").read_text())["gen"]
    assert gen["novel_valid"] == sum(bool(g["novel"]) for g in gen_samples)
    # With teeth: samples repeating a selected (non-training) string are novel only without `seen`.
    fresh = [list(v) for v in seen if v not in task.bundle.train_strings]
    assert fresh, "the smoke loop selected only training strings"
    repeats = [{"verdict": "valid", "extracted": v} for v in fresh for _ in range(2)]
    assert task.sample_metrics(repeats)["novel_valid"] == len(repeats)
    assert task.sample_metrics(repeats, fresh)["novel_valid"] == 0


@pytest.mark.parametrize("override,key", [
    ("method.k=0", "method.k"),
    ("method.iterations=0", "method.iterations"),
    ("method.m=9", "method.m"),
    ("method.style=sometimes", "method.style"),
    ("method.control=reference", "method.control"),  # grammar generation has no references
    ("method.eval_ks=[1,50]", "method.eval_ks"),
])
def test_bad_input_names_the_key(compose_cfg, tokenizer, cache, override, key):
    from metaexamples.config import validate
    from metaexamples.errors import ConfigError
    from metaexamples.tasks import make_task

    cfg = compose_cfg(GRAMMAR[:4] + [override], cache_dir=cache)
    with pytest.raises(ConfigError) as info:
        validate(cfg)  # the whole config first, the method's keys included (the CLI does this before any stage)
        task = make_task(cfg, tokenizer, cache)
        task.prepare_data()
        ExpertIteration().check(cfg, task)  # then what needs the data
    assert str(info.value).startswith(key) and "\n" not in str(info.value)


def test_bad_input_on_the_cli_is_one_line_exit_2(tmp_path):
    proc = run_cli(PROCEDURAL + ["logger=none", "method.m=9", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path,
                   tmp_path / "cache")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: method.m: (9) must be <= method.k (4): at most k samples per problem exist"]



def test_accepted_and_generated_can_be_recounted_from_the_files(grammar_run):
    """Every sample of an iteration, rejected ones included, is saved with its token ids; the
    evaluation rows keep theirs too."""
    rows = read_jsonl(grammar_run / "iterations.jsonl")
    for r in rows[1:]:
        samples = read_jsonl(grammar_run / f"iter_{r['iteration']}" / "generated.jsonl")
        assert len(samples) == r["generated"]
        assert sum(s["reward"] >= 1.0 for s in samples) == r["accepted"]
        assert sum(s["selected"] for s in samples) == r["selected"]
        assert all(s["completion_ids"] and s["prompt_ids"] for s in samples)
        assert r["rollout/validity_rate"] == pytest.approx(r["accepted"] / r["generated"])
    assert any(s["reward"] < 1.0 for r in rows[1:]
               for s in read_jsonl(grammar_run / f"iter_{r['iteration']}" / "generated.jsonl")) or \
        all(r["accepted"] == r["generated"] for r in rows[1:])
    evaluated = read_jsonl(grammar_run / "iter_1" / "eval_heldout.jsonl")
    assert all("completion_ids" in e and "prompt_ids" in e for e in evaluated)
