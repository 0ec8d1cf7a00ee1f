"""The stages of one job, in order: data -> train -> the task's evaluation stages.

Keyed by the task and the method, never by their names: the task builds its data and runs
its own evaluation stages (`task.eval_stages`: stage -> results.json section), the method
trains. Any stage runs alone on earlier outputs: data comes from the content-keyed cache, the
model from this run folder's `model/` (written by train) or from `model.path`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig

from metaexamples.errors import ConfigError
from metaexamples.evaluation.sets import run_eval_sets
from metaexamples.launch import process_state
from metaexamples.methods import make_method
from metaexamples.models import load_model, load_tokenizer
from metaexamples.models.loading import evaluated_weights, is_pretrained
from metaexamples.paths import cache_dir
from metaexamples.results import Results
from metaexamples.tasks import make_task
from metaexamples.tracking import Tracker, flatten

log = logging.getLogger(__name__)


def run_stages(cfg: DictConfig, run_dir: Path, tracker: Tracker, results: Results | None) -> None:
    state = process_state()
    cache = cache_dir(cfg.paths)
    if cfg.train.num_threads > 0:  # e.g. 1 per job when parallel jobs share a small CPU
        import torch

        torch.set_num_threads(cfg.train.num_threads)
    stages = list(cfg.stages)

    def timed(stage: str, fn):
        start = time.perf_counter()
        log.info("stage %s: start", stage)
        out = fn()
        seconds = time.perf_counter() - start
        log.info("stage %s: done in %.1f s", stage, seconds)
        if results is not None:
            results.timing(stage, seconds)
        tracker.summary({f"time/{stage}_s": seconds})
        return out

    task = make_task(cfg, load_tokenizer(cfg.model, cache), cache)
    if "data" in stages:
        # The main process generates; the others then find the finished folder in the cache.
        with state.main_process_first():
            timed("data", task.prepare_data)
    else:
        task.load_data()
    if results is not None:
        results.set("data", task.data_summary())

    if "train" in stages:
        method = make_method(cfg.method.name)
        method.check(cfg, task)
        summary = timed("train", lambda: method.train(cfg, task, run_dir, tracker))
        _record(results, tracker, "train", summary)

    sections = task.all_eval_stages()
    eval_stages = [s for s in sections if s in stages]
    if not eval_stages or not state.is_main_process:
        return
    model_cfg = eval_model_config(cfg, run_dir, trained_now="train" in stages)
    model, eval_tokenizer = _load_eval_model(model_cfg, cache)
    weights = evaluated_weights(model_cfg)
    log.info("evaluating %s", weights.get("path") or weights.get("source"))
    for stage in eval_stages:
        section = timed(stage, lambda: run_eval_stage(task, stage, model, eval_tokenizer, run_dir, tracker))
        _record(results, tracker, sections[stage], section)
        if results is not None:  # which weights each section judged (a later stage alone may judge others)
            results.set("evaluated", {**(results.data.get("evaluated") or {}), stage: weights})


def run_eval_stage(task, stage: str, model, tokenizer, run_dir: Path, tracker) -> dict:
    """One evaluation stage: a shared one (every task with a verifier gets eval_sets) or the
    task's own."""
    if stage == "eval_sets":
        return run_eval_sets(task.cfg, task, model, tokenizer, run_dir, tracker)
    return task.evaluate(stage, model, tokenizer, run_dir, tracker)


def _record(results: Results | None, tracker: Tracker, section: str, values: dict) -> None:
    """One section into results.json and the W&B summary, under the same names."""
    if results is not None:
        results.set(section, values)
    tracker.summary(flatten(section, values))


def check_eval_model(cfg: DictConfig, run_dir: Path) -> None:
    """Before any stage: the model an evaluation-only job would judge is one model (see
    `eval_model_config`)."""
    stages = list(cfg.stages)
    if "train" not in stages and any(s.startswith("eval_") for s in stages):
        eval_model_config(cfg, run_dir, trained_now=False)


def eval_model_config(cfg: DictConfig, run_dir: Path, trained_now: bool):
    """The model config the evaluation stages load: the model this job trained (run_dir/model;
    model.path was then its starting point); else model.path when set (a run folder holding a
    trained model of its own besides is refused: which one was meant cannot be told); else
    the run folder's trained model; else the configured model itself when it is pretrained
    (gguf, hub); a model from scratch must be trained first."""
    from omegaconf import OmegaConf

    trained = run_dir / "model"
    has_trained = (trained / "config.json").exists()
    explicit = cfg.model.get("path")
    if trained_now or (has_trained and not explicit):
        return OmegaConf.merge(cfg.model, {"path": str(trained)})
    if explicit:
        if has_trained and Path(explicit).resolve() != trained.resolve():
            raise ConfigError(
                f"model.path: {explicit} is set and the run folder holds its own trained model ({trained}); "
                "drop model.path to evaluate the run's model, or evaluate model.path in another run folder "
                "(hydra.run.dir=...)")
        return cfg.model
    if is_pretrained(cfg.model):
        return cfg.model
    raise ConfigError(
        f"no trained model in {trained}; run the train stage first (stages=[train,...]) "
        "or pass model.path=<checkpoint folder>"
    )


def _load_eval_model(model_cfg, cache: Path):
    tokenizer = load_tokenizer(model_cfg, cache)
    return load_model(model_cfg, tokenizer, cache), tokenizer
