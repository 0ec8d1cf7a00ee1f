"""task=numeric behind the one entrypoint: the data stage (cached, byte-identical, disjoint),
identity, one-line bad input (in-process and through the CLI), `source: numeric` loading, the
numeric batches and objective under the one training loop (deterministic, resumable, the
hybrid's unit table through the trainer's export), eval_numeric's files and metrics recomputed
from its JSONL, evaluation of a saved model by model.path (the trained weights, not fresh ones),
and a model x dataset sweep into one report table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from metaexamples.errors import ConfigError
from metaexamples.io import read_jsonl
from metaexamples.report import build_report
from metaexamples.tasks import make_task
from cli_runs import offline_run_dir, run_cli
from wandb_records import read_run

torch.set_num_threads(1)

SMALL_ARCH = ["model.arch.hidden_size=32", "model.arch.num_layers=1", "model.arch.num_heads=2",
              "model.arch.intermediate_size=64"]
SMOKE = ["task=numeric", "experiment=smoke", "train.num_threads=1", *SMALL_ARCH]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("numeric_cache")


def _task(compose_cfg, cache, overrides=()):
    from metaexamples.models import load_tokenizer

    cfg = compose_cfg([*SMOKE, *overrides], cache_dir=cache)
    return make_task(cfg, load_tokenizer(cfg.model, cache), cache)


# -- data and identity -----------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["arithmetic", "units"])
def test_data_stage_is_cached_byte_identical_and_disjoint(compose_cfg, cache, tmp_path, dataset):
    from metaexamples.data.cache import check_folder
    from metaexamples.io import file_sha256, read_json

    task = _task(compose_cfg, cache, [f"task.dataset={dataset}"])
    folder = task.prepare_data()
    other = _task(compose_cfg, tmp_path, [f"task.dataset={dataset}"]).prepare_data()
    manifest = read_json(folder / "manifest.json")
    splits = ["train", "test_id", "test_ood_magnitude", "test_ood_length" if dataset == "arithmetic" else "test_ood_types"]
    assert manifest["counts"] == {"train": 200, **{s: 32 for s in splits[1:]}}
    for split in splits:
        assert (folder / f"{split}.jsonl").read_bytes() == (other / f"{split}.jsonl").read_bytes()
        assert manifest["files"][f"{split}.jsonl"] == file_sha256(folder / f"{split}.jsonl")
    assert check_folder(folder) is None and task.prepare_data() == folder  # reused, not rebuilt
    train = {r["question"] for r in task.rows("train")}
    assert all(not train & {r["question"] for r in task.rows(s)} for s in splits[1:])
    seeded = _task(compose_cfg, tmp_path, [f"task.dataset={dataset}", "seed=1"]).prepare_data()
    assert seeded != folder and (seeded / "train.jsonl").read_bytes() != (folder / "train.jsonl").read_bytes()
    summary = task.data_summary()
    assert summary["counts"] == manifest["counts"] and summary["dataset"] == dataset


def test_identity_header_and_model_defaults(compose_cfg, cache):
    task = _task(compose_cfg, cache)
    assert task.cfg.model.name == "numeric_hybrid" and task.cfg.model.arch.readout == "regression"
    assert task.run_name() == "numeric-arithmetic-numeric_hybrid"
    assert task.header() == {"dataset": "arithmetic", "preset": "small", "readout": "regression"}
    assert task.cfg.task.run_tag == "numeric_arithmetic_numeric_hybrid"
    assert list(task.cfg.stages) == ["data", "train", "eval_numeric"]
    alg = _task(compose_cfg, cache, ["model=numeric_hybrid_algebraic", "task.dataset=units", "task.preset=full"])
    assert alg.run_name() == "numeric-units-numeric_hybrid_algebraic"
    assert alg.header() == {"dataset": "units", "preset": "full", "readout": "algebraic"}
    assert _task(compose_cfg, cache, ["model=numeric_token_only"]).header()["readout"] is None
    assert _task(compose_cfg, cache, ["model=numeric_hybrid_log_linear"]).header()["readout"] == "log_linear"


def test_not_a_verified_task_and_custom_questions(compose_cfg, cache):
    from metaexamples.tasks import VerifiedTask
    from metaexamples.tasks.numeric.data import verify

    task = _task(compose_cfg, cache, ["task.questions=[12 + 7 * 3,3.5 km to mi,3 m + 2 s]"])
    # the hybrid models write no tokens: no sampling, so no verifier-driven method or eval_sets
    assert not isinstance(task, VerifiedTask) and "eval_sets" not in task.all_eval_stages()
    task.prepare_data()
    [row] = task.rows("test_id")[:1]
    assert verify(row, row["target_text"])[1] == "correct"  # what eval_numeric scores with
    assert verify(row, "12x")[1] == "unparseable"
    assert task.eval_splits() == ["test_id", "test_ood_magnitude", "test_ood_length", "custom"]
    custom = task.rows("custom")
    assert [r["target_text"] for r in custom] == ["33", "2.1748 mi", "False"]
    assert [r["kind"] for r in custom] == ["arith", "convert", "can_add"]


@pytest.mark.parametrize("overrides,key", [
    (["task.dataset=algebra"], "task.dataset:"),
    (["task.preset=huge"], "task.preset:"),
    (["task.sizes.train=0"], "task.sizes.train:"),
    (["task.sizes.test_ood_types=5"], "task.sizes.test_ood_types:"),  # a units split, dataset arithmetic
    (["task.eval_splits=[test_bogus]"], "task.eval_splits:"),
    (["task.eval_splits=[custom]"], "task.eval_splits: split 'custom' is empty"),
    (["task.questions=[3 + + 4]"], "task.questions[0]: question '3 + + 4'"),
    (["task.questions=[3 furlongz to m]"], "task.questions[0]: unit 'furlongz'"),
    (["task.questions=[2 m + 3 parsecz]"], "task.questions[0]: unit 'parsecz'"),
    (["model.arch.readout=digits"], "model.arch.readout:"),
    (["model.arch.num_layers=0"], "model.arch.num_layers:"),
    (["model.arch.model_type=numeric_bogus"], "model.arch.model_type:"),
    (["train.lora.enabled=true"], "train.lora.enabled:"),
    (["model=tiny"], "model: model=tiny is a causal_lm model"),                 # a non-numeric model
    (["task=grammar", "model=numeric_hybrid"], "model: model=numeric_hybrid is a numeric model"),
    (["task=procedural", "model=numeric_token_only"], "model: model=numeric_token_only is a numeric model"),
])
def test_bad_config_is_one_line_naming_the_key(compose_cfg, overrides, key):
    from metaexamples.config import validate

    base = ["task=numeric"] if not any(o.startswith("task=") for o in overrides) else []
    cfg = compose_cfg([*base, *overrides])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value).startswith(key), str(err.value)
    assert "\n" not in str(err.value)


def test_numeric_source_loads_tokenizer_and_seeded_models(compose_cfg, tmp_path):
    from omegaconf import OmegaConf, open_dict

    from metaexamples.models import load_model, load_tokenizer
    from metaexamples.models.numeric import CharTokenizer, NumericHybridModel, NumericTokenOnlyForCausalLM

    cfg = compose_cfg(["task=numeric", *SMALL_ARCH])
    tok = load_tokenizer(cfg.model, tmp_path)
    assert isinstance(tok, CharTokenizer)
    a, b = load_model(cfg.model, tok, tmp_path, seed=3), load_model(cfg.model, tok, tmp_path, seed=3)
    assert isinstance(a, NumericHybridModel) and a.config.readout == "regression" and a.config.hidden_size == 32
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    c = load_model(cfg.model, tok, tmp_path, seed=4)
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    token = load_model(compose_cfg(["task=numeric", "model=numeric_token_only"]).model, tok, tmp_path, seed=0)
    assert isinstance(token, NumericTokenOnlyForCausalLM)

    a.save_pretrained(tmp_path / "saved")
    with open_dict(cfg):
        cfg.model.path = str(tmp_path / "saved")
    assert load_tokenizer(cfg.model, tmp_path).itos == tok.itos
    loaded = load_model(cfg.model, tok, tmp_path)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), loaded.state_dict().values()))
    for bad in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(ConfigError) as err:
            load_model(OmegaConf.merge(cfg.model, {"path": str(bad)}), tok, tmp_path)
        assert str(err.value).startswith("model.path:")


# -- training through the one loop -----------------------------------------------------------
@pytest.mark.parametrize("model_name", ["numeric_token_only", "numeric_hybrid"])
def test_batches_are_deterministic_tuples_and_the_objective_is_the_models_loss(compose_cfg, cache, model_name):
    from metaexamples.methods.sft import load_trainable
    from metaexamples.models.numeric import collate, training_loss

    task = _task(compose_cfg, cache, [f"model={model_name}"])
    task.prepare_data()
    model, tok = load_trainable(task.cfg, task)
    batches, objective = task.sft_setup(model, tok, task.cfg)
    again, _ = task.sft_setup(model, tok, task.cfg)
    for step, micro in ((0, 0), (3, 0), (40, 0)):  # 40 x 8 > 200: the second epoch's order
        first, second = batches.get(step, micro, 0), again.get(step, micro, 0)
        assert isinstance(first, tuple) and all(isinstance(t, torch.Tensor) for t in first)
        assert all(torch.equal(x, y) for x, y in zip(first, second))
    assert not torch.equal(batches.get(0, 0, 0)[0], batches.get(1, 0, 0)[0])
    seen = torch.cat([batches.index(s, 0, 0) for s in range(25)])  # one epoch: every problem once
    assert sorted(seen.tolist()) == list(range(200))
    rows = [task.rows("train")[i] for i in batches.index(2, 0, 0).tolist()]
    model.eval()  # no unit statistics collected while comparing
    with torch.no_grad():
        loss = objective(model)(*batches.get(2, 0, 0))
        assert loss.item() == pytest.approx(training_loss(model, collate(model, rows)).item(), rel=1e-5)


def _train(cfg, task, run_dir, steps: int):
    from omegaconf import open_dict

    from metaexamples.methods import make_method
    from metaexamples.tracking import Tracker

    with open_dict(cfg):
        cfg.train.max_steps = steps
    return make_method("sft").train(cfg, task, run_dir, Tracker())


def test_hybrid_trains_resumes_exactly_and_exports_its_unit_table(compose_cfg, cache, tmp_path):
    """The hybrid (algebraic readout, units) through method=sft: 4 steps straight equal a run
    killed after step 2's checkpoint and resumed (same weights and unit table); the exported
    model holds the fitted float64 unit table and loads back by model.path."""
    from omegaconf import OmegaConf

    from metaexamples.models import load_model, load_tokenizer
    from metaexamples.models.numeric import predict
    from metaexamples.tasks.numeric import units as U

    over = ["model=numeric_hybrid_algebraic", "task.dataset=units", "task.sizes.train=1000", "train.batch_size=250",
            "train.save_steps=2", "train.log_steps=1"]
    task = _task(compose_cfg, cache, over)
    task.prepare_data()
    import shutil

    from safetensors.torch import load_file

    run = tmp_path / "run"
    straight = _train(task.cfg, task, run, 4)
    a = load_file(str(run / "model" / "model.safetensors"))
    shutil.rmtree(run / "checkpoints" / "checkpoint-000004")  # as if killed after step 2's checkpoint
    shutil.rmtree(run / "model")
    resumed = _train(task.cfg, task, run, 4)
    assert straight["steps"] == resumed["steps"] == 4 and resumed["resumed_from"] == 2
    b = load_file(str(run / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["unit_log_scale"].dtype == torch.float64 and a["pair_stats"][..., 0].sum() > 0
    assert a["unit_log_scale"].abs().sum() > 0  # fitted before export, not the zero initial table
    model_cfg = OmegaConf.merge(task.cfg.model, {"path": str(run / "model")})
    model = load_model(model_cfg, load_tokenizer(model_cfg), cache)
    idx = model.unit_index
    assert model.convert_value(2.0, idx["ft"], idx["km"]) == pytest.approx(U.convert(2.0, "ft", "km"), rel=1e-6)
    assert model.convert_value(50.0, idx["degF"], idx["K"]) == pytest.approx(U.convert(50.0, "degF", "K"), rel=1e-6)
    assert len(predict(model, task.rows("test_ood_types"), 16)) == 32


# -- through the CLI -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def token_run(tmp_path_factory, cache) -> Path:
    """task=numeric experiment=smoke with a small token-only model, 150 steps (it then writes
    numbers), W&B offline."""
    run_dir = tmp_path_factory.mktemp("numeric") / "run"
    proc = run_cli([*SMOKE, "model=numeric_token_only", "train.max_steps=150", "train.batch_size=32", "train.lr=3e-3",
                    f"hydra.run.dir={run_dir}"], run_dir.parent, cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir


def test_smoke_run_writes_predictions_that_recompute_the_metrics(token_run):
    from metaexamples.tasks.numeric.data import numeric_metrics

    results = json.loads((token_run / "results.json").read_text())
    assert results["status"] == "completed" and results["task"] == "numeric"
    assert results["run"] == "numeric-arithmetic-numeric_token_only"
    assert (results["dataset"], results["preset"], results["readout"]) == ("arithmetic", "small", None)
    assert results["train"]["steps"] == 150 and set(results["timings"]) == {"data", "train", "eval_numeric"}
    section = results["numeric"]
    assert section["splits"] == ["test_id", "test_ood_magnitude", "test_ood_length"]
    assert section["ood_structure"]["split"] == "test_ood_length"
    for split in section["splits"]:
        rows = read_jsonl(token_run / "eval_numeric" / f"predictions_{split}.jsonl")
        assert len(rows) == 32 == section[split]["n"]
        assert {"input", "target", "prediction", "verdict"} <= set(rows[0])
        assert section[split]["exact_match"] == pytest.approx(sum(r["exact"] for r in rows) / 32)
        assert sum(r["verdict"] == "correct" for r in rows) == sum(r["exact"] for r in rows)
        assert sum(section[split]["verdicts"].values()) == 32
        problems = [json.loads(line) for line in
                    (Path(results["data"]["folder"]) / f"{split}.jsonl").read_text().splitlines()]
        preds = [{"prediction": r["value"], "prediction_text": r["prediction"], "unit": r["unit"]} for r in rows]
        assert numeric_metrics(problems, preds) == {k: v for k, v in section[split].items() if k != "verdicts"}
    assert (token_run / "eval_numeric" / "rel_error_by_magnitude.png").stat().st_size > 1000
    for name in ("config.json", "model.safetensors", "numeric_tokenizer.json"):
        assert (token_run / "model" / name).exists()
    record = read_run(offline_run_dir(token_run))
    assert record["run"]["name"] == "numeric-arithmetic-numeric_token_only"
    assert record["summary"]["numeric/test_id/exact_match"] == pytest.approx(section["test_id"]["exact_match"])
    assert record["summary"]["numeric/predictions/_type"] == "table-file"
    assert record["summary"]["numeric/predictions/nrows"] == 3 * 32  # logger.log_samples (200) spread over splits
    assert record["summary"]["numeric/rel_error_by_magnitude/_type"] == "image-file"


def test_eval_alone_by_model_path_uses_the_trained_weights(token_run, cache, tmp_path, compose_cfg):
    """stages=[eval_numeric] model.path=<run>/model gives the training run's own predictions, and
    a freshly initialised model of the same config (same seed) answers differently."""
    from metaexamples.models import load_model, load_tokenizer
    from metaexamples.models.numeric import predict

    run_dir = tmp_path / "eval"
    proc = run_cli([*SMOKE, "model=numeric_token_only", "train.max_steps=150", "train.batch_size=32", "train.lr=3e-3",
                    "logger=none", "stages=[eval_numeric]",
                    f"model.path={token_run / 'model'}", f"hydra.run.dir={run_dir}"], tmp_path, cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for split in ("test_id", "test_ood_magnitude", "test_ood_length"):
        name = f"predictions_{split}.jsonl"
        assert (run_dir / "eval_numeric" / name).read_bytes() == (token_run / "eval_numeric" / name).read_bytes()
    cfg = compose_cfg([*SMOKE, "model=numeric_token_only"], cache_dir=cache)
    fresh = load_model(cfg.model, load_tokenizer(cfg.model), cache, seed=0)
    task = make_task(cfg, load_tokenizer(cfg.model), cache)
    problems = task.rows("test_id")
    trained = [r["prediction"] for r in read_jsonl(run_dir / "eval_numeric" / "predictions_test_id.jsonl")]
    assert [p["prediction_text"] for p in predict(fresh, problems, 64)] != trained
    fresh_results = json.loads((run_dir / "results.json").read_text())
    assert fresh_results["numeric"]["test_id"]["n"] == 32 and "train" not in fresh_results


def test_numeric_model_with_another_task_is_one_line_exit_2(tmp_path):
    cache = tmp_path / "cache"
    proc = run_cli(["task=grammar", "model=numeric_hybrid", "logger=none", f"hydra.run.dir={tmp_path / 'run'}"],
                   tmp_path, cache)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: model: model=numeric_hybrid is a numeric model")
    assert "Traceback" not in proc.stderr and not (cache / "data").exists()


@pytest.mark.slow
def test_unreadable_question_through_the_cli_is_one_line_exit_2(tmp_path):
    cache = tmp_path / "cache"
    proc = run_cli(["task=numeric", "logger=none", "task.questions=[12 + 7,3.5 furlongz to m]",
                    f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, cache)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: task.questions[1]: unit 'furlongz'"), errors
    assert not (cache / "data").exists()


def test_report_of_one_job_has_the_numeric_table_and_plot(token_run, tmp_path):
    report = build_report(token_run.parent, tmp_path)
    [table] = [t for t in report["tables"] if t[0] == "Numeric"]
    headers, rows = table[1], table[2]
    assert headers[:3] == ["Run", "Dataset", "Model"] and "ood_magnitude rel err" in headers
    assert len(rows) == 1 and rows[0][1:3] == ["arithmetic", "numeric_token_only"]
    assert "numeric_rel_error_by_magnitude.png" in report["plots"]
    assert (tmp_path / "numeric_rel_error_by_magnitude.png").stat().st_size > 1000


@pytest.mark.slow
def test_sweep_models_by_dataset_gives_one_report_table(tmp_path, cache):
    """The issue's sweep (token-only and hybrid x arithmetic and units; smoke-sized) into one table
    with the models side by side, one column per split, plus the magnitude plot; and the
    hybrid's custom questions split."""
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", *SMOKE, "logger=none", "model=numeric_token_only,numeric_hybrid,numeric_hybrid_algebraic",
                    "task.dataset=arithmetic,units", f"hydra.sweep.dir={sweep}"], tmp_path, cache, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = build_report(sweep)
    assert not report["problems"] and len(report["numeric_rows"]) == 6
    [table] = [t for t in report["tables"] if t[0] == "Numeric"]
    cells = {(r[1], r[2]): r for r in table[2]}
    assert set(cells) == {(d, m) for d in ("arithmetic", "units")
                          for m in ("numeric_token_only", "numeric_hybrid", "numeric_hybrid_algebraic")}
    headers = table[1]
    assert cells[("units", "numeric_hybrid")][headers.index("Readout")] == "regression"
    assert cells[("units", "numeric_hybrid_algebraic")][headers.index("Readout")] == "algebraic"
    assert cells[("units", "numeric_hybrid")][headers.index("ood_length/types")] == "test_ood_types"
    assert cells[("arithmetic", "numeric_hybrid")][headers.index("dim. correct (ood_types)")] == "-"
    assert "numeric_rel_error_by_magnitude.png" in report["plots"]
    assert "## Numeric" in (sweep / "report.md").read_text()
