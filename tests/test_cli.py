"""The real CLI, end to end: single runs, sweeps on real launchers, W&B runs read back, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from metaexamples.report import build_report
from wandb_records import read_run

REPO = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], cwd: Path, cache: Path, module: str = "metaexamples", timeout: int = 600):
    env = {**os.environ, "METAEXAMPLES_CACHE": str(cache), "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One cache for the CLI tests: the tokenizer is converted once and data reused by hash."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, shared_cache) -> Path:
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    proc = run_cli(["experiment=smoke", "grammar=g2", f"hydra.run.dir={run_dir}"], run_dir.parent, shared_cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir


def offline_run_dir(job_dir: Path) -> Path:
    [run] = list((job_dir / "wandb").glob("offline-run-*"))
    return run


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
    assert len(errors) == 1 and "data stage" in errors[0], proc.stderr[-2000:]
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
    proc = run_cli(["grammar=g9"], tmp_path, tmp_path / "cache")
    assert proc.returncode != 0
    assert "Available options in 'grammar'" in proc.stderr and "g3" in proc.stderr


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
    assert proc.returncode != 0  # the sweep reports the failure...
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
