"""method=expert_iteration resumes only its own run (issue #22): a changed config is refused
before any stage naming the key (also when iter_0/metrics.json is gone), a refused re-run
leaves a finished run's results.json as it was, iterations.jsonl names run-relative models
(a copied folder loads its own), and trained_on.jsonl is checked against its recorded sha256."""

from __future__ import annotations

import json

import pytest

from metaexamples.io import file_sha256
from test_bad_input import LAST_OUT, assert_one_line, copy_run, run_main

EI = ["experiment=smoke", "task=procedural", "model=tiny", "method=expert_iteration", "stages=[data,train]",
      "train.num_threads=1"]


class _Capture:
    """run_main's capsys for a module fixture (its output is not checked there)."""

    def readouterr(self):
        class Out:
            out = err = ""
        return Out()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-iteration smoke run (iteration 0 = the starting model) and its cache."""
    root = tmp_path_factory.mktemp("ei_resume")
    run, cache = root / "run", root / "cache"
    code, errors, err = run_main([*EI, f"hydra.run.dir={run}"], _Capture(), cache)
    assert code == 0, err[-3000:]
    return run, cache


def test_iterations_name_run_relative_models_and_trained_on_is_hashed(finished):
    run, _ = finished
    rows = [json.loads(line) for line in (run / "iterations.jsonl").read_text().splitlines()]
    assert [r["model"] for r in rows[1:]] == ["iter_1/model", "iter_2/model"]
    results = json.loads((run / "results.json").read_text())
    assert results["train"]["trained_on_sha256"] == file_sha256(run / "trained_on.jsonl")


@pytest.mark.parametrize("damage", ["none", "no_iter0_metrics"])
def test_a_changed_config_is_refused_naming_the_key_and_keeps_results(finished, tmp_path, capsys, damage):
    run, cache = copy_run(finished, tmp_path)
    if damage == "no_iter0_metrics":
        (run / "iter_0" / "metrics.json").unlink()
    results = (run / "results.json").read_text()
    code, errors, err = run_main([*EI, "method.k=3", f"hydra.run.dir={run}"], capsys, cache)
    needle = "method.k: 4 -> 3" if damage == "none" else "iter_0/metrics.json: missing"
    assert_one_line(code, errors, err, needle)
    assert "stage data: start" not in err
    assert (run / "results.json").read_text() == results


def test_a_moved_run_folder_resumes_from_its_own_models(finished, tmp_path, capsys):
    """One more iteration in a copy whose original is gone: it loads iter_2/model of the copy."""
    run, cache = copy_run(finished, tmp_path)
    moved = tmp_path / "moved"
    run.rename(moved)
    code, errors, err = run_main([*EI, "method.iterations=3", f"hydra.run.dir={moved}"], capsys, cache)
    # method.iterations is part of the config: a longer run is a new config, refused by name
    assert_one_line(code, errors, err, "method.iterations: 2 -> 3")
    # the same config in the moved folder: nothing to redo, its own final model is published
    code, errors, err = run_main([*EI, f"hydra.run.dir={moved}"], capsys, cache)
    assert code == 0, err[-3000:]
    assert "model.path" not in err
    out = LAST_OUT[0]
    assert "iterations" in out and "heldout acc (last)" in out, out
    assert "iter_0..iter_2" in out and "iterations.jsonl" in out, out


@pytest.mark.parametrize("edit,needle", [
    (lambda p: p.write_text(p.read_text() + '{"extracted": "1"}\n'), "changed since the method wrote it"),
    (lambda p: p.write_text(p.read_text() + '{"extr'), "changed since the method wrote it"),
])
def test_an_edited_trained_on_file_is_refused(finished, tmp_path, capsys, edit, needle):
    run, cache = copy_run(finished, tmp_path)
    edit(run / "trained_on.jsonl")
    code, errors, err = run_main([*EI, "stages=[eval_sets]", "eval.set_problems=2", "eval.set_samples=2",
                                  "eval.set_ks=[1,2]", f"hydra.run.dir={run}"], capsys, cache)
    assert_one_line(code, errors, err, "trained_on.jsonl", needle)


def test_a_truncated_iterations_file_is_one_line_naming_it(finished, tmp_path, capsys):
    run, cache = copy_run(finished, tmp_path)
    path = run / "iterations.jsonl"
    path.write_text(path.read_text()[:-40])
    code, errors, err = run_main([*EI, f"hydra.run.dir={run}"], capsys, cache)
    assert_one_line(code, errors, err, str(path), "line 3", "not valid JSON")


@pytest.mark.parametrize("override,needle", [
    ("task.n_train=0", "method.name: expert_iteration generates on the training problems"),
    ("method.eval_splits=[bogus]", "method.eval_splits: 'bogus' is not a problem split of task=procedural"),
])
def test_what_only_the_data_can_tell_is_one_line_before_training(tmp_path, capsys, override, needle):
    code, errors, err = run_main([*EI, override, f"hydra.run.dir={tmp_path / 'run'}"], capsys, tmp_path / "cache")
    assert_one_line(code, errors, err, needle)
    assert "run the data stage" not in errors[0]
    assert not (tmp_path / "run" / "iterations.jsonl").exists()
