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
from metaexamples.launch import process_state
from metaexamples.paths import cache_dir
from metaexamples.results import Results
from metaexamples.tracking import Tracker, flatten

log = logging.getLogger(__name__)


def run_stages(cfg: DictConfig, run_dir: Path, tracker: Tracker, results: Results | None) -> None:
    from metaexamples.methods import make_method
    from metaexamples.models import load_tokenizer
    from metaexamples.tasks import make_task

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
    model, eval_tokenizer = _load_eval_model(cfg, run_dir, cache)
    for stage in eval_stages:
        section = timed(stage, lambda: run_eval_stage(task, stage, model, eval_tokenizer, run_dir, tracker))
        _record(results, tracker, sections[stage], section)


def run_eval_stage(task, stage: str, model, tokenizer, run_dir: Path, tracker) -> dict:
    """One evaluation stage: a shared one (every task with a verifier gets eval_sets) or the
    task's own."""
    from metaexamples.evaluation.sets import run_eval_sets

    if stage == "eval_sets":
        return run_eval_sets(task.cfg, task, model, tokenizer, run_dir, tracker)
    return task.evaluate(stage, model, tokenizer, run_dir, tracker)


def _record(results: Results | None, tracker: Tracker, section: str, values: dict) -> None:
    """One section into results.json and the W&B summary, under the same names."""
    if results is not None:
        results.set(section, values)
    tracker.summary(flatten(section, values))


def _load_eval_model(cfg: DictConfig, run_dir: Path, cache: Path):
    """The model to evaluate: this run's trained model, else model.path, else the configured
    model itself when it is pretrained (gguf, hub); a model from scratch must be trained first."""
    from omegaconf import OmegaConf

    from metaexamples.models import load_model, load_tokenizer

    trained = run_dir / "model"
    if (trained / "config.json").exists():
        model_cfg = OmegaConf.merge(cfg.model, {"path": str(trained)})
    elif cfg.model.get("path") or cfg.model.source in ("gguf", "hub"):
        model_cfg = cfg.model
    else:
        raise ConfigError(
            f"no trained model in {trained}; run the train stage first (stages=[train,...]) "
            "or pass model.path=<checkpoint folder>"
        )
    tokenizer = load_tokenizer(model_cfg, cache)
    return load_model(model_cfg, tokenizer, cache), tokenizer
