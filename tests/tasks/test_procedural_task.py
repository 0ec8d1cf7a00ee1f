"""task=procedural behind the one entrypoint: the data stage (cached, byte-identical per seed),
prompts, warm-start SFT data, the verifier (direct answers and sandboxed programs), the
eval_verify stage's files and metrics recomputed from its JSONL, one-line bad input, and a
kind x answer sweep into one report table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metaexamples.evaluation.metrics import pass_at_k
from metaexamples.io import read_jsonl
from metaexamples.report import build_report
from metaexamples.tasks import make_task
from cli_runs import offline_run_dir, run_cli
from wandb_records import read_run

WARM = ["task=procedural", "experiment=smoke", "model=tiny", "stages=[data,train,eval_verify]"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("procedural_cache")


@pytest.fixture(scope="module")
def task(compose_cfg, tokenizer, cache):
    t = make_task(compose_cfg(["task=procedural", "experiment=smoke", "model=tiny"], cache_dir=cache),
                  tokenizer, cache)
    t.prepare_data()
    return t


def test_data_is_cached_byte_identical_and_disjoint(compose_cfg, tokenizer, task, tmp_path):
    other = make_task(compose_cfg(["task=procedural", "experiment=smoke", "model=tiny"], cache_dir=tmp_path),
                      tokenizer, tmp_path)
    other.prepare_data()
    for split in ("train", "val", "test", "ood"):
        assert (task.folder / f"{split}.jsonl").read_bytes() == (other.folder / f"{split}.jsonl").read_bytes()
    questions = [{r["question"] for r in task.rows(s)} for s in ("train", "val", "test", "ood")]
    assert sum(map(len, questions)) == len(set().union(*questions))
    assert all(4 <= r["difficulty"] <= 5 for r in task.rows("ood"))
    assert all(1 <= r["difficulty"] <= 3 for r in task.rows("test"))
    assert task.prepare_data() == task.folder  # reused, not rebuilt


def test_sft_data_scores_only_the_target(task):
    data = task.sft_data()
    assert data.blocks.shape == data.labels.shape and data.blocks.shape[1] == 512
    row = task.rows("train")[0]
    prompt = task.prompt_ids(row)
    first = data.blocks[0].tolist()
    assert first[:len(prompt)] == prompt  # plain prompt (tiny is not a chat model)
    assert (data.labels[0][:len(prompt)] == -100).all()
    target = data.labels[0][len(prompt):].tolist()
    decoded = task.tokenizer.decode([t for t in target[:8] if t >= 0])
    assert decoded.startswith(row["answer"])


def test_direct_verifier_reads_the_answer(task):
    problems = task.problems("test")
    p = problems[0]
    tok = task.tokenizer
    good = tok(f"The answer is {p.answer}.", add_special_tokens=False)["input_ids"]
    bad = tok("Answer: nothing to see", add_special_tokens=False)["input_ids"]
    verdicts = task.verify_many([p, p], [good, bad])
    assert (verdicts[0].kind, verdicts[0].reward) == ("correct", 1.0)
    assert verdicts[1].kind in ("no_answer", "wrong_answer") and verdicts[1].reward == 0.0


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, cache) -> Path:
    run_dir = tmp_path_factory.mktemp("procedural") / "run"
    proc = run_cli(["task=procedural", "experiment=smoke", f"hydra.run.dir={run_dir}"], run_dir.parent, cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir


def test_smoke_default_model_writes_completions_that_recompute_the_metrics(smoke_run):
    results = json.loads((smoke_run / "results.json").read_text())
    assert results["status"] == "completed" and results["task"] == "procedural"
    assert results["run"] == "procedural-all-direct-smollm2_135m"
    verify = results["verify"]
    assert verify["prompt_format"] == "chat" and verify["n_samples"] == 4
    rows = read_jsonl(smoke_run / "eval_verify" / "completions.jsonl")
    for split, n_problems in (("test", 6), ("ood", 4)):
        part = [r for r in rows if r["split"] == split]
        assert len(part) == n_problems * 4 == verify[split]["samples"]
        assert verify[split]["accuracy"] == pytest.approx(sum(r["reward"] for r in part) / len(part))
        by_id: dict[str, list[int]] = {}
        for r in part:
            by_id.setdefault(r["id"], []).append(int(r["verdict"] == "correct"))
        recomputed = sum(pass_at_k(len(v), sum(v), 4) for v in by_id.values()) / len(by_id)
        assert verify[split]["pass@4"] == pytest.approx(recomputed)
        assert sum(verify[split]["verdicts"].values()) == len(part)
        baseline = verify[split]["baseline"]  # the best constant answer per kind, beside the model
        for kind, entry in baseline["by_kind"].items():
            mine = [r["reward"] for r in part if r["kind"] == kind]
            assert entry["model_accuracy"] == pytest.approx(sum(mine) / len(mine))
            expected = {r["id"]: r["expected"] for r in part if r["kind"] == kind}
            assert entry["accuracy"] == max(list(expected.values()).count(a) for a in expected.values()) / len(expected)
    record = read_run(offline_run_dir(smoke_run))
    assert record["run"]["name"] == "procedural-all-direct-smollm2_135m"
    assert record["summary"]["verify/test/accuracy"] == pytest.approx(verify["test"]["accuracy"])
    assert record["config"]["task"]["name"] == "procedural"


def test_warm_start_trains_on_reference_answers(tmp_path, cache):
    run_dir = tmp_path / "run"
    proc = run_cli(WARM + ["logger=none", "train.max_steps=20", f"hydra.run.dir={run_dir}"], tmp_path, cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train"]["steps"] == 20 and results["verify"]["prompt_format"] == "plain"
    losses = [r["train/loss"] for r in read_jsonl(run_dir / "train" / "metrics.jsonl") if "train/loss" in r]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("override,key", [
    ("task.kind=geometry", "task.kind"),
    ("task.difficulty=[0,3]", "task.difficulty"),
    ("task.difficulty=[5,3]", "task.difficulty"),
    ("task.ood_difficulty=[2,4]", "task.ood_difficulty"),
    ("task.pass_k=[1,50]", "task.pass_k"),
    ("task.answer=essay", "task.answer"),
    ("task.sandbox=docker", "task.sandbox"),
    ("task.eval_splits=[test,train2]", "task.eval_splits"),
    ("stages=[data,eval_gen]", "stages"),
])
def test_bad_values_fail_validation_naming_the_key(compose_cfg, override, key):
    from metaexamples.config import validate
    from metaexamples.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        validate(compose_cfg(["task=procedural", override]))
    assert str(info.value).startswith(key) and "\n" not in str(info.value)


def test_bad_input_on_the_cli_is_one_line_exit_2_and_writes_nothing(tmp_path):
    cache = tmp_path / "cache"
    proc = run_cli(["task=procedural", "logger=none", "task.difficulty=[0,3]", f"hydra.run.dir={tmp_path / 'run'}"],
                   tmp_path, cache)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: task.difficulty"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (cache / "data").exists()


def test_split_too_large_for_the_difficulty_is_one_line_and_leaves_nothing(compose_cfg, tokenizer, tmp_path):
    from metaexamples.errors import ConfigError

    cfg = compose_cfg(["task=procedural", "task.kind=brackets", "task.difficulty=[1,1]", "task.ood_difficulty=[2,2]",
                       "task.n_test=1400"], cache_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        make_task(cfg, tokenizer, tmp_path).prepare_data()
    assert str(info.value).startswith("task.n_test") and "648" in str(info.value)  # balanced strings of 8
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").iterdir())  # nothing half written


@pytest.mark.slow
def test_sweep_kind_by_answer_gives_one_report_table(tmp_path, cache):
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", *WARM, "logger=none", "task.kind=arithmetic,rpn", "task.answer=direct,program",
                    f"hydra.sweep.dir={sweep}"], tmp_path, cache, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = build_report(sweep)
    assert not report["problems"] and len(report["verify_rows"]) == 4
    [table] = [t for t in report["tables"] if t[0] == "Procedural Problems"]
    assert {(r[1], r[2]) for r in table[2]} == {(k, a) for k in ("arithmetic", "rpn") for a in ("direct", "program")}
    assert "## Procedural Problems" in (sweep / "report.md").read_text()


def test_program_verifier_runs_reference_programs_and_contains_hostile_ones(compose_cfg, tokenizer, cache):
    """task.answer=program: every reference program (fenced, as warm start writes it) is
    correct in the sandbox; a wrong one, a crash, a loop and text without code get their verdicts."""
    from metaexamples.tasks.procedural.answers import target_text
    from metaexamples.tasks.procedural.verifier import verify_texts

    cfg = compose_cfg(["task=procedural", "experiment=smoke", "model=tiny", "task.answer=program",
                       "task.timeout_s=1"], cache_dir=cache)
    t = make_task(cfg, tokenizer, cache)
    t.prepare_data()
    rows = t.rows("test") + t.rows("ood")
    verdicts = verify_texts(cfg.task, rows, [target_text(r, "program") for r in rows])
    assert [v.kind for v in verdicts] == ["correct"] * len(rows)
    row = rows[0]
    hostile = {
        "wrong_answer": "```python\ndef solve(x):\n    return 10**6 + 7\n```",
        "runtime_error": "def solve(x):\n    return 1 // 0\n",
        "timeout": "def solve(x):\n    while True:\n        pass\n",
        "syntax_error": "```python\ndef solve(x):\n    return (\n```",
        "no_code": "I would compute it by hand.",
    }
    if row["kind"] == "brackets":
        hostile["wrong_answer"] = "def solve(s):\n    return " + ("False" if row["answer"] == "True" else "True") + "\n"
    got = verify_texts(cfg.task, [row] * len(hostile), list(hostile.values()))
    assert [v.kind for v in got] == list(hostile)
    assert [v.reward for v in got] == [0.0] * len(hostile)
