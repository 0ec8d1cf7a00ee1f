"""Every bad input is one line, `error: ...`, naming the key or the file, exit code 2, and
leaves no partial file behind. One table per way of reaching the error:

- VALUES: a composed config that `config.validate` refuses before any stage runs (in process);
- DATA: values that only the data stage can judge (in process, nothing written to the cache);
- HYDRA: what Hydra refuses (unknown option, key, type, syntax) through the real entrypoint
  `cli.main` (in process);
- FILES: damaged or unwritable files and folders (data cache, checkpoints, weights, run and
  cache folders), and a sweep, through `cli.main` (in process);
- one real CLI process: Hydra's own start-up (it writes .hydra/ into the run folder first).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from metaexamples import cli
from metaexamples.config import validate
from metaexamples.errors import ConfigError

SMALL = ["data.n_train_items=300", "data.n_eval=40", "data.n_test=60"]
QUIET = ["logger=none", "hydra/job_logging=none", "hydra/hydra_logging=none"]
LAST_OUT: list[str] = [""]

# (overrides, the key the one line starts with)
VALUES = [
    # train
    (["train.max_steps=-3"], "train.max_steps"),
    (["train.batch_size=0"], "train.batch_size"),
    (["train.grad_accum=0"], "train.grad_accum"),
    (["train.eval_steps=0"], "train.eval_steps"),
    (["train.log_steps=0"], "train.log_steps"),
    (["train.eval_batches=0"], "train.eval_batches"),
    (["train.lr=0"], "train.lr"),
    (["train.warmup_steps=-1"], "train.warmup_steps"),
    (["train.save_steps=-1"], "train.save_steps"),
    (["train.min_lr_ratio=-1"], "train.min_lr_ratio"),
    (["train.min_lr_ratio=2"], "train.min_lr_ratio"),
    (["train.num_threads=-1"], "train.num_threads"),
    (["train.weight_decay=-0.1"], "train.weight_decay"),
    (["train.max_grad_norm=-1"], "train.max_grad_norm"),
    (["train.keep_checkpoints=-1"], "train.keep_checkpoints"),
    (["train.precision=fp8"], "train.precision"),
    (["train.distributed=deepspeed"], "train.distributed"),
    # stages, seed, method
    (["stages=[]"], "stages"),
    (["stages=[data,bogus]"], "stages"),
    (["seed=1.5"], "seed"),
    # model
    (["model.arch.hidden_size=65"], "model.arch.hidden_size"),
    (["model.arch.num_attention_heads=0"], "model.arch.num_attention_heads"),
    (["+model.arch.num_key_value_heads=3"], "model.arch.num_key_value_heads"),
    (["model.source=ftp"], "model.source"),
    # decoding
    (["decoding=greedy", "decoding.temperature=0.7"], "decoding.temperature"),
    (["decoding=greedy", "decoding.top_k=5"], "decoding.top_k"),
    (["decoding=greedy", "decoding.top_p=0.9"], "decoding.top_p"),
    (["decoding.temperature=0", "decoding.top_k=5"], "decoding.top_k"),
    (["decoding.max_new_tokens=-5"], "decoding.max_new_tokens"),
    (["decoding.top_p=0"], "decoding.top_p"),
    (["decoding.top_p=1.5"], "decoding.top_p"),
    (["decoding.temperature=-1"], "decoding.temperature"),
    (["decoding.top_k=-1"], "decoding.top_k"),
    (["decoding.constraint=regex"], "decoding.constraint"),
    (["decoding.seed_symbols=-1"], "decoding.seed_symbols"),
    (["decoding.seed_symbols=16"], "decoding.seed_symbols"),
    # eval, logger
    (["eval.n_samples=0"], "eval.n_samples"),
    (["eval.batch_size=0"], "eval.batch_size"),
    (["logger.backend=tensorboard"], "logger.backend"),
    (["logger.mode=sometimes"], "logger.mode"),
    # the grammar task's own keys
    (["grammar.min_len=20"], "grammar.min_len"),
    (["grammar.min_len=0"], "grammar.min_len"),
    (["condition.meta_fraction=2"], "condition.meta_fraction"),
    (["+condition.meta_kinds.gossip=1.0"], "condition.meta_kinds.gossip"),
    (["data.synthetic_mix_ratio=1.5"], "data.synthetic_mix_ratio"),
    (["data.random_negative_fraction=-0.1"], "data.random_negative_fraction"),
    (["data.n_test=0"], "data.n_test"),
    (["data.n_train_items=-1"], "data.n_train_items"),
    (["data.block_size=16"], "data.block_size"),
    # task=procedural's keys
    (["task=procedural", "task.kind=geometry"], "task.kind"),
    (["task=procedural", "task.answer=essay"], "task.answer"),
    (["task=procedural", "task.difficulty=[0,3]"], "task.difficulty"),
    (["task=procedural", "task.difficulty=[5,3]"], "task.difficulty"),
    (["task=procedural", "task.ood_difficulty=[2,4]"], "task.ood_difficulty"),
    (["task=procedural", "task.pass_k=[1,50]"], "task.pass_k"),
    (["task=procedural", "stages=[data,eval_gen]"], "stages"),
    (["task=procedural", "decoding.max_new_tokens=40"], "decoding.max_new_tokens"),
    (["task=procedural", "decoding.seed_symbols=2"], "decoding.seed_symbols"),
]


@pytest.mark.parametrize("overrides,key", VALUES, ids=[" ".join(o) for o, _ in VALUES])
def test_bad_values_are_refused_before_any_stage(compose_cfg, tmp_path, overrides, key):
    cfg = compose_cfg(overrides, cache_dir=tmp_path / "cache")
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert message.startswith(f"{key}: ") and "\n" not in message, message
    assert not (tmp_path / "cache").exists()


def test_cache_dir_that_is_a_file_is_refused(compose_cfg, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for where in (tmp_path / "file", tmp_path / "file" / "below"):
        with pytest.raises(ConfigError, match=r"^paths\.cache_dir: .*file.* is a file, not a folder"):
            validate(compose_cfg([], cache_dir=where))


# Values only the data stage can judge (it refuses them before writing anything).
DATA = [
    ("grammar.language=nope", "grammar.language"),
    ("data.num_symbols=500", "data.num_symbols"),
    ("grammar.rule=''", "grammar.rule"),
]


@pytest.mark.parametrize("override,key", DATA)
def test_bad_data_values_are_one_line_and_write_nothing(compose_cfg, tokenizer, tmp_path, override, key):
    from metaexamples.tasks.grammar.build import run_data_stage

    cfg = compose_cfg([*SMALL, override], cache_dir=tmp_path)
    with pytest.raises(ConfigError) as err:
        run_data_stage(cfg, tokenizer, tmp_path)
    assert str(err.value).startswith(key) and "\n" not in str(err.value)
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").iterdir())


# --- through the entrypoint ------------------------------------------------------------------
def run_main(args: list[str], capsys, cache: Path) -> tuple[int, list[str], str]:
    """cli.main() in this process, as `metaexamples <args>`: (exit code, error lines, stderr);
    its stdout is left in LAST_OUT."""
    old_argv, old_cache = sys.argv, os.environ.get("METAEXAMPLES_CACHE")
    flags = [a for a in args if a.startswith("-")]
    sys.argv = ["metaexamples", *flags, *QUIET, *[a for a in args if not a.startswith("-")]]
    os.environ["METAEXAMPLES_CACHE"] = str(cache)
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old_argv
        if old_cache is None:
            os.environ.pop("METAEXAMPLES_CACHE", None)
        else:
            os.environ["METAEXAMPLES_CACHE"] = old_cache
    captured = capsys.readouterr()
    err = captured.err
    LAST_OUT[:] = [captured.out]
    return code, [line for line in err.splitlines() if line.startswith("error:")], err


def partial_files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if ".tmp" in p.name or ".broken-" in p.name]


def assert_one_line(code: int, errors: list[str], err: str, *needles: str) -> None:
    assert code == 2, err[-2000:]
    assert len(errors) == 1, err[-2000:]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in errors[0], errors[0]


HYDRA = [
    (["grammar=g9"], "grammar=g9: no such option; available: anbncn, copy, dyck, g1, g2, g3"),
    (["experiment=smok"], "experiment=smok: no such option; available:"),
    (["hydra/launcher=nope"], "hydra/launcher=nope: no such option"),
    (["train.max_steps=abc"], "train.max_steps=abc: Value 'abc'"),
    (["train.bogus=1"], "train.bogus: no such key"),
    (["grammar.min_len=["], "grammar.min_len=[: cannot parse"),
]


@pytest.mark.parametrize("args,line", HYDRA, ids=[" ".join(a) for a, _ in HYDRA])
def test_hydra_errors_are_one_line_exit_2(capsys, tmp_path, args, line):
    code, errors, err = run_main([*args, f"hydra.run.dir={tmp_path / 'run'}"], capsys, tmp_path / "cache")
    assert_one_line(code, errors, err, f"error: {line}")
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 2-step smoke training with a checkpoint at each step (and its cache): copied, then damaged."""
    root = tmp_path_factory.mktemp("bad_input_run")
    run, cache = root / "run", root / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["metaexamples", *QUIET, *TRAIN, f"hydra.run.dir={run}"])
        mp.setenv("METAEXAMPLES_CACHE", str(cache))
        try:
            cli.main()
        except SystemExit as exc:
            assert not exc.code, "the 2-step training failed"
    assert (run / "checkpoints" / "checkpoint-000002" / "checkpoint.json").exists()
    return run, cache


TRAIN = ["experiment=smoke", *SMALL, "stages=[data,train]", "train.max_steps=2", "train.save_steps=1",
         "train.eval_steps=2", "train.log_steps=1"]


def copy_run(trained_run, tmp_path) -> tuple[Path, Path]:
    run, cache = trained_run
    shutil.copytree(run, tmp_path / "run", symlinks=True)
    return tmp_path / "run", cache


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), max(1, len(data) // 64)):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def test_resume_with_another_config_is_refused_naming_the_keys(trained_run, tmp_path, capsys):
    """The reproduction of the issue: the same run folder, grammar=g2 (data), then train.lr
    (train keys, judged by the loop): refused, nothing trained, results say failed."""
    run, cache = copy_run(trained_run, tmp_path)
    before = (run / "train" / "metrics.jsonl").read_text()
    results = (run / "results.json").read_text()
    code, errors, err = run_main([*TRAIN, "grammar=g2", f"hydra.run.dir={run}"], capsys, cache)
    assert_one_line(code, errors, err, "train.resume:", "grammar.name: 'g1' -> 'g2'", "train.resume=false")
    assert (run / "results.json").read_text() == results  # the finished g1 job's record, untouched
    code, errors, err = run_main([*TRAIN, "train.lr=0.1", f"hydra.run.dir={run}"], capsys, cache)
    assert_one_line(code, errors, err, "train.resume:", "train.lr: 0.003 -> 0.1")
    assert (run / "train" / "metrics.jsonl").read_text() == before
    assert not partial_files(run, cache)
    # train.resume=false starts over: the old checkpoints go, the new ones record the new config.
    code, errors, err = run_main([*TRAIN, "grammar=g2", "train.resume=false", f"hydra.run.dir={run}"], capsys, cache)
    assert code == 0 and not errors, err[-2000:]
    import json

    meta = json.loads((run / "checkpoints" / "checkpoint-000002" / "checkpoint.json").read_text())
    assert meta["config"]["grammar"]["name"] == "g2"
    assert json.loads((run / "results.json").read_text())["train"]["resumed_from"] is None


def test_rerunning_a_finished_job_keeps_its_numbers(trained_run, tmp_path, capsys):
    import json

    run, cache = copy_run(trained_run, tmp_path)
    first = json.loads((run / "results.json").read_text())["train"]
    code, errors, err = run_main([*TRAIN, f"hydra.run.dir={run}"], capsys, cache)
    assert code == 0 and not errors, err[-2000:]
    again = json.loads((run / "results.json").read_text())["train"]
    for key in ("final_loss", "eval_loss", "eval_ppl", "tokens_per_s", "mean_tokens_per_s", "steps"):
        assert again[key] == first[key] and again[key] is not None, key
    assert again["resumed_from"] == 2


@pytest.mark.parametrize("damage,needle", [
    (lambda ckpt: truncate(ckpt / "state" / "optimizer.bin"), "optimizer.bin: truncated"),
    (lambda ckpt: truncate(ckpt / "model.safetensors"), "model.safetensors: truncated"),
    (lambda ckpt: (ckpt / "state" / "optimizer.bin").unlink(), "optimizer.bin: missing"),
    (lambda ckpt: (ckpt / "checkpoint.json").write_text("{"), "checkpoint.json: unreadable"),
    # the same size (sizes pass), garbled bytes: what loading raises, as one line
    (lambda ckpt: garble(ckpt / "state" / "optimizer.bin"), "cannot be loaded"),
], ids=["truncated-optimizer", "truncated-weights", "deleted-optimizer", "garbled-meta", "garbled-optimizer"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(trained_run, tmp_path, capsys, damage, needle):
    run, cache = copy_run(trained_run, tmp_path)
    damage(run / "checkpoints" / "checkpoint-000002")
    code, errors, err = run_main([*TRAIN, f"hydra.run.dir={run}"], capsys, cache)
    assert_one_line(code, errors, err, needle, "train.resume=false")
    assert not partial_files(run, cache)


def test_model_path_with_truncated_weights_is_one_line(trained_run, tmp_path, capsys):
    run, cache = trained_run
    model = tmp_path / "model"
    shutil.copytree(run / "model", model)
    truncate(model / "model.safetensors")
    code, errors, err = run_main([*TRAIN[:-5], "stages=[eval_ppl]", f"model.path={model}",
                                  f"hydra.run.dir={tmp_path / 'eval'}"], capsys, cache)
    assert_one_line(code, errors, err, f"model.path: {model}", "complete checkpoint")


@pytest.mark.parametrize("file,damage", [
    ("train_blocks.npy", truncate), ("manifest.json", garble), ("test_valid.jsonl", garble),
    ("eval_blocks.npy", lambda p: p.unlink()),
])
def test_a_damaged_data_folder_is_named_by_a_later_stage(trained_run, tmp_path, capsys, file, damage):
    """Without the data stage: one line naming the file and the stage that rebuilds it (with
    it, the folder is rebuilt: tests/tasks/test_data.py)."""
    run, cache = trained_run
    own_cache = tmp_path / "cache"
    shutil.copytree(cache, own_cache, symlinks=True)
    [folder] = [p for p in (own_cache / "data").iterdir() if p.name.startswith("g1-")]
    damage(folder / file)
    code, errors, err = run_main([*TRAIN[:-5], "stages=[eval_ppl]", f"model.path={run / 'model'}",
                                  f"hydra.run.dir={tmp_path / 'eval'}"], capsys, own_cache)
    assert_one_line(code, errors, err, file, "stages=[data")
    assert not partial_files(own_cache)


@contextmanager
def read_only(path: Path):
    """A folder nobody can write into: chmod for a user; for root (whom chmod does not stop),
    the immutable attribute."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o555)
    immutable = False
    try:
        if os.geteuid() == 0:
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)],
                                                                capture_output=True).returncode != 0:
                pytest.skip("running as root where chattr +i is not available: no read-only folder")
            immutable = True
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        os.chmod(path, 0o755)


def test_read_only_cache_folder_is_one_line(tmp_path, capsys):
    cache = tmp_path / "cache"
    with read_only(cache):
        code, errors, err = run_main(["experiment=smoke", *SMALL, "stages=[data]", f"hydra.run.dir={tmp_path / 'run'}"],
                                     capsys, cache)
        assert_one_line(code, errors, err, str(cache), "paths.cache_dir")
        assert not list(cache.iterdir())


def test_a_failing_sweep_job_is_one_line_exit_2_and_names_the_report(tmp_path, capsys, trained_run):
    _, cache = trained_run
    sweep = tmp_path / "sweep"
    code, errors, err = run_main(["-m", "experiment=smoke", *SMALL, "stages=[data]", "grammar.max_len=12,2",
                                  f"hydra.sweep.dir={sweep}"], capsys, cache)
    assert_one_line(code, errors, err, "error: grammar.min_len: min_len (4) must be <= grammar.max_len (2)")
    assert f"report: metaexamples-report {sweep}" in LAST_OUT[0]
    assert not partial_files(sweep)


def test_read_only_run_folder_is_one_line_from_the_real_cli(tmp_path):
    """The real process: Hydra itself writes the run folder's .hydra/ (and its log) first."""
    run = tmp_path / "run"
    env = {**os.environ, "METAEXAMPLES_CACHE": str(tmp_path / "cache"), "HYDRA_FULL_ERROR": "0"}
    with read_only(run):
        proc = subprocess.run([sys.executable, "-m", "metaexamples", "experiment=smoke", "logger=none",
                               "stages=[data]", f"hydra.run.dir={run}"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert_one_line(proc.returncode, errors, proc.stderr, str(run), "hydra.run.dir")
        assert not list(run.iterdir())
