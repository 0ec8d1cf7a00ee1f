"""The stages of one job, in order: data -> train -> eval_ppl -> eval_gen.

Any stage runs alone on earlier outputs: data comes from the content-keyed cache, the model
from this run folder's `model/` (written by train) or from `model.path`.
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
from metaexamples.tracking import Tracker

log = logging.getLogger(__name__)


def run_stages(cfg: DictConfig, run_dir: Path, tracker: Tracker, results: Results | None) -> None:
    from metaexamples.data.build import data_folder, run_data_stage
    from metaexamples.data.bundle import load_bundle
    from metaexamples.models import load_tokenizer

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

    tokenizer = load_tokenizer(cfg.model, cache)
    if "data" in stages:
        # The main process generates; the others then find the finished folder in the cache.
        with state.main_process_first():
            folder = timed("data", lambda: run_data_stage(cfg, tokenizer, cache))
    else:
        folder = data_folder(cfg, tokenizer, cache)
        if not (folder / "manifest.json").exists():
            raise ConfigError(
                f"no data for grammar={cfg.grammar.name} condition={cfg.condition.name} in {folder.parent}; "
                "run the data stage first (add `data` to stages, e.g. stages=[data,train])"
            )
    bundle = load_bundle(folder)
    if results is not None:
        results.set("data", {"folder": str(folder), "counts": bundle.manifest.get("counts"),
                             "tokens": bundle.manifest.get("tokens")})

    if "train" in stages:
        from metaexamples.training import run_train_stage

        summary = timed("train", lambda: run_train_stage(cfg, bundle, run_dir, tracker, cache))
        _record(results, tracker, "train", summary)

    eval_stages = [s for s in ("eval_ppl", "eval_gen") if s in stages]
    if not eval_stages or not state.is_main_process:
        return
    from metaexamples.evaluation import run_eval_gen, run_eval_ppl

    model, eval_tokenizer = _load_eval_model(cfg, run_dir, cache)
    if "eval_ppl" in stages:
        ppl = timed("eval_ppl", lambda: run_eval_ppl(cfg, bundle, model, eval_tokenizer, run_dir, tracker))
        _record(results, tracker, "ppl", ppl)
    if "eval_gen" in stages:
        gen = timed("eval_gen", lambda: run_eval_gen(cfg, bundle, model, eval_tokenizer, run_dir, tracker))
        _record(results, tracker, "gen", gen)


def flatten(prefix: str, value) -> dict:
    """{"gen": {"failures": {"rule": 3}}} -> {"gen/failures/rule": 3}: scalars only."""
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            out.update(flatten(f"{prefix}/{key}", sub))
        return out
    return {prefix: value} if isinstance(value, (int, float, str, bool)) or value is None else {}


def _record(results: Results | None, tracker: Tracker, section: str, values: dict) -> None:
    """One section into results.json and the W&B summary, under the same names."""
    if results is not None:
        results.set(section, values)
    tracker.summary(flatten(section, values))


def _load_eval_model(cfg: DictConfig, run_dir: Path, cache: Path):
    """The model to evaluate: this run's trained model, else model.path."""
    from omegaconf import OmegaConf

    from metaexamples.models import load_model, load_tokenizer

    trained = run_dir / "model"
    if (trained / "config.json").exists():
        model_cfg = OmegaConf.merge(cfg.model, {"path": str(trained)})
    elif cfg.model.get("path"):
        model_cfg = cfg.model
    else:
        raise ConfigError(
            f"no trained model in {trained}; run the train stage first (stages=[train,...]) "
            "or pass model.path=<checkpoint folder>"
        )
    tokenizer = load_tokenizer(model_cfg, cache)
    return load_model(model_cfg, tokenizer, cache), tokenizer
