"""The real CLI, end to end: single runs, sweeps on real launchers, W&B runs read back, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from metaexamples.report import build_report
from cli_runs import offline_run_dir, run_cli
from wandb_records import read_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, shared_cache) -> Path:
    """The smoke job (output not on a terminal); its stdout and stderr in the folder beside it."""
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    proc = run_cli(["experiment=smoke", "grammar=g2", f"hydra.run.dir={run_dir}"], run_dir.parent, shared_cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir.parent / "stdout.txt").write_text(proc.stdout)
    (run_dir.parent / "stderr.txt").write_text(proc.stderr)
    return run_dir


def test_smoke_writes_results_with_every_section(smoke_run):
    results = json.loads((smoke_run / "results.json").read_text())
    assert results["status"] == "completed" and results["error"] is None
    assert results["run"] == "g2-meta_5pct-tiny"
    assert set(results["timings"]) == {"data", "train", "eval_ppl", "eval_gen"}
    for key in ("valid_ppl", "invalid_ppl", "gap", "ratio", "auroc", "aupr", "best_f1", "balanced_acc"):
        assert isinstance(results["ppl"][key], float), key
    assert 0.0 <= results["ppl"]["auroc"] <= 1.0
    gen = results["gen"]
    assert gen["samples"] == 40 and gen["valid"] + gen["invalid"] == 40
    assert sum(gen["failures"].values()) == gen["invalid"]
    assert (smoke_run / "model" / "config.json").exists()


def test_smoke_ends_with_a_summary_and_logs_lines_not_bars_off_a_terminal(smoke_run):
    out = (smoke_run.parent / "stdout.txt").read_text()
    err = (smoke_run.parent / "stderr.txt").read_text()
    results = json.loads((smoke_run / "results.json").read_text())
    summary = out[out.index("g2-meta_5pct-tiny: completed"):]
    for label, value in (("train loss (final)", results["train"]["final_loss"]), ("AUROC", results["ppl"]["auroc"]),
                         ("AUROC random", results["ppl"]["auroc_random"]), ("Valid PPL", None),
                         ("Validity rate", results["gen"]["validity_rate"])):
        line = next(line for line in summary.splitlines() if line.strip().startswith(label))
        assert value is None or f"{value:.4f}" in line, line
    assert f"{smoke_run}/ (results.json, model, train, eval_ppl, eval_gen)" in summary
    both = out + err + (smoke_run / "metaexamples.log").read_text()
    assert "train: step 2/6, loss" in both and "\r" not in err  # one line per log window, no bar
    assert "Removed shared tensor" not in both
    assert not [line for line in both.splitlines() if "[accelerate" in line and "[INFO]" in line]
    assert "Writing model shards" not in err and "Loading weights" not in err


def test_smoke_wandb_offline_run_holds_config_metrics_and_summary(smoke_run):
    record = read_run(offline_run_dir(smoke_run))
    assert record["run"]["name"] == "g2-meta_5pct-tiny"
    assert record["run"]["group"] == "smoke"
    assert record["run"]["job_type"] == "pipeline"
    assert {"g2", "meta_5pct", "tiny"} <= set(record["run"]["tags"])
    config = record["config"]
    assert config["grammar"]["name"] == "g2" and config["train"]["max_steps"] == 6
    logged = {k for row in record["history"] for k in row}
    assert {"train/loss", "train/lr", "eval/loss", "eval/valid_ppl", "eval/invalid_ppl"} <= logged
    results = json.loads((smoke_run / "results.json").read_text())
    assert record["summary"]["ppl/auroc"] == pytest.approx(results["ppl"]["auroc"])
    assert record["summary"]["gen/validity_rate"] == pytest.approx(results["gen"]["validity_rate"])
    assert record["exit_code"] == 0


def test_a_later_stage_alone_reuses_the_trained_model(smoke_run, shared_cache):
    """`stages=[eval_gen] model.path=<checkpoint> decoding=...` in a new folder."""
    run_dir = smoke_run.parent / "gen_only"
    proc = run_cli(["experiment=smoke", "grammar=g2", "stages=[eval_gen]", f"model.path={smoke_run / 'model'}",
                    "decoding=grammar", "logger=none", f"hydra.run.dir={run_dir}"], run_dir.parent, shared_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["gen"]["validity_rate"] == 1.0  # grammar-constrained decoding
    assert "ppl" not in results


def test_missing_earlier_stage_names_the_stage(tmp_path):
    proc = run_cli(["experiment=smoke", "stages=[eval_ppl]", "logger=none", f"hydra.run.dir={tmp_path / 'run'}"],
                   tmp_path, tmp_path / "empty_cache")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    # neither data nor a trained model exists: the first missing one (the model, checked before any
    # stage runs) is named with the stage that makes it
    assert len(errors) == 1 and ("train stage" in errors[0] or "data stage" in errors[0]), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_bad_value_is_one_line_and_leaves_no_data(tmp_path):
    cache = tmp_path / "cache"
    proc = run_cli(["grammar.min_len=40", "logger=none", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, cache)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: grammar.min_len: min_len (40) must be <= grammar.max_len (16)"]
    assert not (cache / "data").exists()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "failed" and "grammar.min_len" in results["error"]


def test_unknown_option_lists_the_available_ones(tmp_path):
    """Hydra's own errors too: one line, exit 2 (the README's promise)."""
    proc = run_cli(["grammar=g9"], tmp_path, tmp_path / "cache")
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        "error: grammar=g9: no such option; available: anbncn, copy, dyck, g1, g2, g3"]


@pytest.mark.slow
def test_multirun_2x2_submitit_local_one_wandb_run_per_job_and_report(tmp_path, shared_cache):
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "experiment=smoke", "grammar=g1,g3", "condition=examples,meta_5pct",
                    "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=20",
                    "train.num_threads=1", f"hydra.sweep.dir={sweep}"], tmp_path, shared_cache, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = sorted(p.parent for p in sweep.glob("*/results.json"))
    assert len(jobs) == 4
    names = set()
    for job in jobs:
        results = json.loads((job / "results.json").read_text())
        assert results["status"] == "completed"
        record = read_run(offline_run_dir(job))
        names.add(record["run"]["name"])
        assert record["run"]["group"] == "smoke"
        assert record["config"]["grammar"]["name"] == results["grammar"]
        assert any("train/loss" in row for row in record["history"])
        assert record["summary"]["ppl/auroc"] == pytest.approx(results["ppl"]["auroc"])
    assert names == {f"{g}-{c}-tiny" for g in ("g1", "g3") for c in ("examples", "meta_5pct")}

    report = build_report(sweep)
    assert len(report["ppl_rows"]) == 4 and len(report["gen_rows"]) == 4 and not report["problems"]
    assert (sweep / "report.md").exists() and (sweep / "auroc_heatmap.png").exists()
    cli = run_cli([str(sweep)], tmp_path, shared_cache, module="metaexamples.report")
    assert cli.returncode == 0 and "Perplexity and Discrimination" in cli.stdout


@pytest.mark.slow
def test_one_failing_job_does_not_lose_the_others(tmp_path, shared_cache):
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "experiment=smoke", "logger=none", "grammar.max_len=12,2",
                    f"hydra.sweep.dir={sweep}"], tmp_path, shared_cache)
    assert proc.returncode == 2  # the sweep reports the failure, in one line...
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        "error: grammar.min_len: min_len (4) must be <= grammar.max_len (2)"]
    assert "Traceback" not in proc.stderr and f"report: metaexamples-report {sweep}" in proc.stdout
    report = build_report(sweep)  # ...but the good job's results are all there
    assert len(report["rows"]) == 1 and report["rows"][0]["status"] == "completed"
    assert len(report["problems"]) == 1 and "grammar.min_len" in report["problems"][0]["error"]


def test_online_wandb_without_key_falls_back_to_offline_losing_nothing(tmp_path, shared_cache):
    """logger=wandb with no API key (and no ~/.netrc): a warning, then a real offline run."""
    run_dir = tmp_path / "run"
    env_home = tmp_path / "home"
    env_home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update({"HOME": str(env_home), "METAEXAMPLES_CACHE": str(shared_cache), "WANDB_SILENT": "true"})
    proc = subprocess.run([sys.executable, "-m", "metaexamples", "experiment=smoke", "stages=[data]", "logger=wandb",
                           f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "logging offline instead" in (run_dir / "metaexamples.log").read_text()
    record = read_run(offline_run_dir(run_dir))
    assert record["run"]["name"] == "g1-meta_5pct-tiny" and record["exit_code"] == 0
    assert "time/data_s" in record["summary"] and record["config"]["logger"]["mode"] == "online"


# --- the sweep report: what tells jobs apart, and what never ran -----------------------------
def _job(sweep: Path, num: int, overrides: list[str], results: dict | None) -> None:
    job = sweep / f"{num}_g1_meta_5pct"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text("{}\n")
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (job / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  job:\n    num: {num}\n")
    if results is not None:
        (job / "results.json").write_text(json.dumps(results))


def _done(min_len: int) -> dict:
    return {"status": "completed", "run": "g1-meta_5pct-tiny", "task": "grammar", "grammar": "g1",
            "condition": "meta_5pct", "model": "tiny", "decoding": "sample", "seed": 0,
            "ppl": {"auroc": 0.5 + min_len / 100, "auroc_hard": 0.6, "auroc_random": 0.9}}


def test_report_run_column_shows_swept_overrides_and_lists_jobs_never_started(tmp_path):
    """`-m grammar.min_len=4,6,8 seed=0,1` killed after three jobs: the rows differ in their Run
    column, the three planned jobs that never started are listed."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  sweeper:\n    _target_: hydra._internal.core_plugins.basic_sweeper.BasicSweeper\n"
        "    params: null\n  overrides:\n    task:\n    - experiment=smoke\n    - grammar.min_len=4,6,8\n"
        "    - seed=0,1\n")
    plan = [(m, s) for m in (4, 6, 8) for s in (0, 1)]
    for num, (m, s) in enumerate(plan[:3]):
        _job(sweep, num, ["experiment=smoke", f"grammar.min_len={m}", f"seed={s}"], _done(m) if num < 2 else None)
    report = build_report(sweep)
    runs = [row[0] for row in report["ppl_rows"]]
    assert runs == ["g1-meta_5pct-tiny grammar.min_len=4 seed=0", "g1-meta_5pct-tiny grammar.min_len=4 seed=1"]
    header = [h for _, h, _ in report["tables"]][0]
    row = report["ppl_rows"][0]
    assert row[header.index("AUROC hard")] == "0.6000" and row[header.index("AUROC random")] == "0.9000"
    problems = {p["job"]: p["status"] for p in report["problems"]}
    assert problems == {"2_g1_meta_5pct": "missing", "#3 grammar.min_len=6 seed=1": "not started",
                        "#4 grammar.min_len=8 seed=0": "not started", "#5 grammar.min_len=8 seed=1": "not started"}
    assert "never started" in (sweep / "report.md").read_text()
