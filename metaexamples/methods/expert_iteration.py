"""method=expert_iteration: generate -> verify -> fine-tune on what passed -> repeat.

Iteration 0 evaluates the starting model (the no-training control). Iteration it = 1..N:
1. generate `k` samples for each training problem with the current model (the decoding
   group; the one batched, KV-cached sampler);
2. verify each with the task's verifier (sandboxed for programs);
3. select: samples with reward 1, deduplicated per problem, at most `m` per problem;
   `rationalize=true` adds the reference completion for problems with none accepted
   (STaR's rationalization; only tasks with references). Controls: `control=unverified`
   keeps all k samples unchecked (shows that verification is what helps), `control=reference`
   trains on the reference completions only (supervised upper bound);
4. fine-tune with the training loop on prompt + selected completion (prompt unscored):
   `style=rest_em` from the starting model on the union of every iteration's selection
   (ReST-EM), `style=star` from the last iteration's model on this iteration's selection
   (STaR). Full fine-tuning, or LoRA with train.lora.enabled=true (adapter saved per
   iteration; the iteration's model/ holds merged weights plain transformers loads);
5. evaluate every split of `eval_splits`: accuracy (mean reward), pass@k, verdicts and the
   task's own figures (grammars: validity, failure kinds, novel and unique valid).

Each iteration writes iter_<k>/ (selected.jsonl, samples of the evaluation, metrics.json,
model/ and adapter/ or train/ logs) and one line to iterations.jsonl; W&B gets every metric
with the iteration as its step. A killed run resumes after the last finished iteration (an
unfinished iteration folder is rebuilt; its generation is seeded, so it is the same). The
final model is copied to run_dir/model/ for the pipeline's evaluation stages.

Grokking (in results.json `train.grokking`): detected at iteration i when held-out accuracy
rises by at least `grok_rise` (0.30) within at most `grok_within` (3) iterations ending at i,
after a plateau of at least `grok_plateau` (3) iterations whose held-out accuracies stay
within `grok_rise / 3` of each other and during which train accuracy was already above
`grok_train_above` (0.9). Reported as {detected, iteration, before, after}.
"""

from __future__ import annotations

import copy
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from omegaconf import OmegaConf, open_dict

from metaexamples.data.mixing import completion_examples
from metaexamples.errors import ConfigError, check_key
from metaexamples.evaluation.metrics import verified_metrics
from metaexamples.evaluation.rollout import Rollout, novel_flags, rollout_rows, rollouts
from metaexamples.evaluation.trained_on import TRAINED_ON
from metaexamples.io import append_jsonl, file_sha256, read_json, read_jsonl, write_json, write_jsonl
from metaexamples.launch import process_state
from metaexamples.methods import Method
from metaexamples.methods.curriculum import Curriculum, CurriculumConfig, check_curriculum
from metaexamples.methods.diversity_report import diversity_report, sweep_rows
from metaexamples.methods.ei_selection import (check_config_options, check_options, fine_tune_steps, select_diverse,
                                               selection_key, uses_diversity_options, with_replay)
from metaexamples.methods.iteration_plot import plot_iterations
from metaexamples.methods.polychromic import warm_start
from metaexamples.methods.sft import load_trainable
from metaexamples.models import load_model
from metaexamples.schemas import train_result_config
from metaexamples.tasks import ReportTable, VerifiedTask
from metaexamples.tracking import Tracker, flatten
from metaexamples.training import BlockBatches, apply_lora, train_loop
from metaexamples.training.checkpoint import config_differences
from metaexamples.training.loss import CausalLMLoss

log = logging.getLogger(__name__)

STYLES = ("rest_em", "star")
CONTROLS = ("none", "unverified", "reference")


@dataclass
class ExpertIterationConfig(CurriculumConfig):  # method.curriculum* (methods/curriculum.py)
    sft_steps: int = 0  # > 0: first fine-tune on the task's SFT data this long; iteration 0 = that model
    iterations: int = 3  # N
    k: int = 8  # samples per training problem and iteration
    m: int = 4  # at most m accepted samples kept per problem
    problems: int = 0  # training problems sampled per iteration; 0 = all
    style: str = "rest_em"  # rest_em (from the start model, growing set) | star (from the last model)
    rationalize: bool = False  # STaR: the reference completion for problems with none accepted
    control: str = "none"  # none | unverified (all k, unchecked) | reference (SFT on references)
    steps: Optional[int] = None  # optimizer steps per iteration; null = train.max_steps
    eval_splits: List[str] = field(default_factory=lambda: ["train", "heldout"])
    eval_problems: int = 100  # problems per evaluated split
    eval_samples: int = 4  # samples per problem in the evaluation (pass@k needs k <= this)
    eval_ks: List[int] = field(default_factory=lambda: [1, 4])
    block_size: int = 256  # selected examples packed into blocks of this many tokens
    # diversity-aware selection and fine-tuning (methods/ei_selection.py; all off = plain EI)
    distinct: bool = False  # at most one selection per distinct output per iteration (across problems)
    prefer_new: bool = False  # outputs never selected before are taken first (before the m cap)
    replay: float = 0.0  # share of each fine-tuning set's blocks drawn from the task's SFT stream, in [0, 1)
    epochs: Optional[float] = None  # fine-tuning budget in passes over the iteration's set; null = method.steps
    budget: Optional[int] = None  # sampled completions the loop must use in all (iterations x problems x k)
    # a shared warm start instead of sft_steps: cached by its settings (as method=polychromic's)
    warmup_steps: int = 0
    warmup_lr: float = 1e-4
    warmup_batch_size: int = 4
    warmup_seed: int = 0
    # grokking detector
    grok_rise: float = 0.30
    grok_within: int = 3
    grok_plateau: int = 3
    grok_train_above: float = 0.9


def detect_grokking(rows: list[dict], rise: float = 0.30, within: int = 3, plateau: int = 3,
                    train_above: float = 0.9, split: str = "heldout") -> dict:
    """The first iteration i where held-out accuracy rose by >= rise over at most `within`
    iterations ending at i, preceded by >= `plateau` iterations of flat held-out accuracy
    (spread < rise / 3) with train accuracy > train_above. rows: iterations.jsonl in order."""
    val = [r.get(f"{split}/accuracy") for r in rows]
    train = [r.get("train/accuracy") for r in rows]
    for i in range(len(rows)):
        for w in range(1, within + 1):
            start = i - w  # the plateau ends at `start`, the rise spans start -> i
            if start - plateau + 1 < 0 or val[i] is None or val[start] is None:
                continue
            flat = val[start - plateau + 1:start + 1]
            trained = train[start - plateau + 1:start + 1]
            if None in flat or None in trained:
                continue
            if (val[i] - val[start] >= rise and max(flat) - min(flat) < rise / 3
                    and min(trained) > train_above):
                return {"detected": True, "iteration": rows[i]["iteration"], "before": val[start], "after": val[i]}
    return {"detected": False, "iteration": None, "before": None, "after": None}


def select(done: list[Rollout], m: int, control: str) -> list[Rollout]:
    """Accepted samples (reward 1), deduplicated per problem, at most m per problem, in order;
    control=unverified: every sample, unchecked."""
    if control == "unverified":
        return list(done)
    kept, seen, per_problem = [], set(), {}
    for r in done:
        key = (r.problem.id, tuple(r.tokens))
        if r.verdict.reward < 1.0 or key in seen or per_problem.get(r.problem.id, 0) >= m:
            continue
        seen.add(key)
        per_problem[r.problem.id] = per_problem.get(r.problem.id, 0) + 1
        kept.append(r)
    return kept


class ExpertIteration(Method):
    name = "expert_iteration"
    needs_verifier = True
    config_schema = ExpertIterationConfig
    summary_keys = [("iterations", "train.iterations"), ("train acc (iter 0)", "train.first.train/accuracy"),
                    ("train acc (last)", "train.last.train/accuracy"),
                    ("heldout acc (iter 0)", "train.first.heldout/accuracy"),
                    ("heldout acc (last)", "train.last.heldout/accuracy"), ("grokking", "train.grokking.detected")]

    @classmethod
    def check_config(cls, cfg, task_cls) -> None:
        super().check_config(cfg, task_cls)
        check_curriculum(cfg)
        m = cfg.method
        for key in ("iterations", "k", "m", "eval_problems", "eval_samples", "block_size"):
            if m[key] <= 0:
                raise ConfigError(f"method.{key}: must be positive, got {m[key]}")
        if m.sft_steps < 0:
            raise ConfigError(f"method.sft_steps: must be >= 0, got {m.sft_steps}")
        if m.m > m.k:
            raise ConfigError(f"method.m: ({m.m}) must be <= method.k ({m.k}): at most k samples per problem exist")
        if m.style not in STYLES:
            raise ConfigError(f"method.style: unknown {m.style!r}; available: {', '.join(STYLES)}")
        if m.control not in CONTROLS:
            raise ConfigError(f"method.control: unknown {m.control!r}; available: {', '.join(CONTROLS)}")
        for k in m.eval_ks:
            if not 1 <= k <= m.eval_samples:
                raise ConfigError(f"method.eval_ks: pass@{k} needs 1 <= k <= method.eval_samples ({m.eval_samples})")
        if m.warmup_steps < 0 or (m.warmup_steps and m.sft_steps):
            raise ConfigError(f"method.warmup_steps: must be >= 0 and not combined with method.sft_steps "
                              f"(two starting points), got {m.warmup_steps} and {m.sft_steps}")
        check_config_options(m, task_cls)
        if m.problems < 0 or (m.steps is not None and m.steps <= 0):
            raise ConfigError("method.problems: must be >= 0" if m.problems < 0 else
                              f"method.steps: must be positive, got {m.steps}")
        cls._check_evaluation_config(m)
        cls._check_references(m, task_cls)

    @staticmethod
    def _check_references(m, task_cls) -> None:
        """control=reference and rationalize train on the task's reference completions: a task
        class that does not provide them (the contract's default) is refused before any stage."""
        if task_cls.reference_completion is VerifiedTask.reference_completion and (m.control == "reference" or m.rationalize):
            key = "method.control" if m.control == "reference" else "method.rationalize"
            raise ConfigError(f"{key}: task={task_cls.name} has no reference completions")

    @staticmethod
    def _check_evaluation_config(m) -> None:
        """What the iterations' evaluation and the grokking detector read: settings under which
        nothing is evaluated, or the detector can never fire, are refused."""
        check_key(len(m.eval_splits) > 0, "method.eval_splits",
                  "is empty: no iteration would be evaluated; e.g. method.eval_splits=[train,heldout]")
        check_key(len(m.eval_ks) > 0, "method.eval_ks", "is empty; e.g. method.eval_ks=[1]")
        check_key(0 < m.grok_rise <= 1, "method.grok_rise",
                  f"must be in (0, 1] (a rise in held-out accuracy), got {m.grok_rise}")
        check_key(m.grok_within >= 1, "method.grok_within", f"must be >= 1 iteration, got {m.grok_within}")
        check_key(m.grok_plateau >= 1, "method.grok_plateau", f"must be >= 1 iteration, got {m.grok_plateau}")
        check_key(0 <= m.grok_train_above < 1, "method.grok_train_above",
                  f"must be in [0, 1) (train accuracy must exceed it), got {m.grok_train_above}")

    @classmethod
    def check_run_dir(cls, cfg, run_dir: Path) -> None:
        """Finished iterations (or a finished SFT) in the run folder must come from this config;
        checked before any stage, so a refused re-run changes nothing."""
        if "train" not in cfg.stages or not cfg.train.resume:
            return
        run_dir = Path(run_dir)
        config_key = cls._config_key(cfg)
        if (run_dir / "iterations.jsonl").exists():
            cls._resume(run_dir, run_dir / "iterations.jsonl", config_key)
        elif (run_dir / "iter_0" / "sft.json").exists():
            cls._same_config(read_json(run_dir / "iter_0" / "sft.json").get("config"), config_key, run_dir)

    def check(self, cfg, task) -> None:
        m = cfg.method
        if not task.problems("train", limit=1):
            raise ConfigError(f"method.name: expert_iteration generates on the training problems and task={task.name} "
                              "has none (its train split is empty); give the task training problems")
        for split in m.eval_splits:
            try:
                task.problems(split, limit=1)
            except ConfigError:  # (its own line would send the user to the data stage, which has run)
                raise ConfigError(f"method.eval_splits: {split!r} is not a problem split of task={task.name}; every "
                                  "task with a verifier has train and heldout") from None
        needs_reference = m.control == "reference" or m.rationalize
        if needs_reference and task.problems("train", limit=1) and \
                task.reference_completion(task.problems("train", limit=1)[0]) is None:
            key = "method.control" if m.control == "reference" else "method.rationalize"
            raise ConfigError(f"{key}: task={task.name} has no reference completions")
        check_options(m, task, len(task.problems("train", limit=int(m.problems) or None)))

    # -- the loop ---------------------------------------------------------------------------
    def train(self, cfg, task, run_dir: Path, tracker) -> dict:
        m = cfg.method
        run_dir = Path(run_dir)
        warmup = None
        if m.warmup_steps:  # the shared warm start (cached; the same model method=polychromic starts from)
            path, warmup = warm_start(cfg, task)
            cfg = copy.deepcopy(cfg)
            with open_dict(cfg):
                cfg.model = OmegaConf.merge(cfg.model, {"path": path})
        log_path = run_dir / "iterations.jsonl"
        config_key = self._config_key(cfg)
        if not cfg.train.resume:
            self._start_over(run_dir, log_path)
        rows = self._resume(run_dir, log_path, config_key)
        curriculum = Curriculum(cfg, task, rows)  # off: the problems below are all of train, as ever
        base, tokenizer = load_trainable(cfg, task, lora=False)  # LoRA is added per iteration
        if m.sft_steps:  # the usual SFT first: iteration 0 (and rest_em's start) is its model
            if not rows:  # a finished SFT survives a crash in iteration 0's evaluation
                marker = run_dir / "iter_0" / "sft.json"
                saved = read_json(marker) if marker.exists() else None
                if saved is None:
                    fit = self._fine_tune(cfg, task, base, tokenizer, task.sft_data(), run_dir / "iter_0",
                                          int(m.sft_steps))
                    write_json(marker, {**fit, "config": config_key})
                else:
                    self._same_config(saved.get("config"), config_key, run_dir)
                    log.info("expert_iteration: reusing the finished SFT in %s", marker.parent)
            base = self._load(cfg, task, str(run_dir / "iter_0" / "model"))
        current = base if not rows or rows[-1]["iteration"] == 0 else \
            self._load(cfg, task, str(self._model_dir(run_dir, rows[-1]["model"])))
        if not rows:  # iteration 0: the starting model, no training (the first control)
            rows.append(self._finish(cfg, task, run_dir, tracker, 0, current, tokenizer, log_path, config_key, {}))
        accepted_sets = [read_jsonl(run_dir / f"iter_{r['iteration']}" / "selected.jsonl") for r in rows[1:]]
        for it in range(rows[-1]["iteration"] + 1, int(m.iterations) + 1):
            folder = run_dir / f"iter_{it}"
            shutil.rmtree(folder, ignore_errors=True)  # an unfinished iteration is redone
            problems = curriculum.train_problems(int(m.problems) or None)
            if m.control == "reference":
                selected_rows = [self._row(p, task.reference_completion(p), "reference") for p in problems]
                generated = {"generated": 0, "accepted": 0}
            else:
                done = rollouts(current, tokenizer, task, problems, int(m.k), cfg.decoding,
                                seed=int(cfg.seed) * 1000 + it, batch_size=int(cfg.eval.gen_batch_size))
                before = {selection_key(r.get("extracted"), r["completion_ids"]) for s in accepted_sets for r in s}
                chosen = select_diverse(done, int(m.m), before, bool(m.distinct), bool(m.prefer_new)) \
                    if uses_diversity_options(m) and m.control == "none" else select(done, int(m.m), m.control)
                self._save_generated(task, folder, done, chosen, self._seen(accepted_sets))
                selected_rows = [self._row(r.problem, r.tokens, r.verdict.kind, r.verdict.extracted) for r in chosen]
                if m.rationalize:
                    solved = {r.problem.id for r in chosen}
                    selected_rows += [self._row(p, task.reference_completion(p), "rationalized")
                                      for p in problems if p.id not in solved]
                generated = {"generated": len(done), "accepted": sum(r.verdict.reward >= 1.0 for r in done),
                             **self._rollout_metrics(task, done, self._seen(accepted_sets))}
            write_jsonl(folder / "selected.jsonl", selected_rows)
            accepted_sets.append(selected_rows)
            train_rows = [r for s in accepted_sets for r in s] if m.style == "rest_em" else selected_rows
            start = base if m.style == "rest_em" else current
            data = self._examples(train_rows, tokenizer, int(m.block_size)) if train_rows else None
            if data is not None and m.replay > 0:
                data = with_replay(data, task.sft_data(), float(m.replay), int(cfg.seed) * 1000 + it)
            steps = fine_tune_steps(m.epochs, int(m.steps or cfg.train.max_steps),
                                    len(data.blocks) if data is not None else 0,
                                    int(cfg.train.batch_size) * int(cfg.train.grad_accum))
            fit = self._fine_tune(cfg, task, start, tokenizer, data, folder, steps)
            current = self._load(cfg, task, str(folder / "model"))
            extra = {**generated, "selected": len(selected_rows), "train_examples": len(train_rows),
                     "sampled": sum(r.get("generated", 0) for r in rows[1:]) + generated["generated"], **fit,
                     **curriculum.check(current, tokenizer, it, run_dir)}
            # Everything selected so far is what the model has been fine-tuned on (rest_em: the
            # union; star: the chain of models), so its novelty counts all of it as seen.
            rows.append(self._finish(cfg, task, run_dir, tracker, it, current, tokenizer, log_path, config_key, extra,
                                     self._seen(accepted_sets)))

        final = self._model_dir(run_dir, rows[-1]["model"]) if rows[-1]["model"] else None
        self._publish(final, current, tokenizer, run_dir / "model")
        write_jsonl(run_dir / TRAINED_ON, [{"extracted": x} for x in self._seen(accepted_sets)])
        trained_on_sha256 = file_sha256(run_dir / TRAINED_ON)  # methods.trained_on checks the file against it
        grok = detect_grokking(rows, float(m.grok_rise), int(m.grok_within), int(m.grok_plateau),
                               float(m.grok_train_above))
        first, last = rows[0], rows[-1]
        return {"iterations": last["iteration"], "steps": sum(r.get("steps", 0) for r in rows),
                "style": m.style, "control": m.control, "grokking": grok,
                "first": {k: v for k, v in first.items() if "/" in k}, "last": {k: v for k, v in last.items() if "/" in k},
                "model_dir": str(run_dir / "model"), "iterations_file": str(log_path), "warmup": warmup,
                "sampled": last.get("sampled", 0), "distinct": bool(m.distinct), "prefer_new": bool(m.prefer_new),
                "replay": float(m.replay), "epochs": m.epochs, "budget": m.budget,
                "trained_on_sha256": trained_on_sha256}

    # -- pieces -----------------------------------------------------------------------------
    @staticmethod
    def _seen(accepted_sets: list[list[dict]]) -> list:
        """The extracted outputs of every selection so far: what the model was fine-tuned on."""
        return [r["extracted"] for s in accepted_sets for r in s if r.get("extracted") is not None]

    @staticmethod
    def _rollout_metrics(task, done: list[Rollout], seen: list) -> dict:
        """The iteration's own samples, before selection (the policy the loop trains): accuracy
        and the task's figures (grammars: validity, unique and novel valid, novel counting the
        earlier selections as known), as rollout/*."""
        rows = rollout_rows(done)
        metrics = {"accuracy": sum(r["reward"] for r in rows) / max(1, len(rows)), **task.sample_metrics(rows, seen)}
        return flatten("rollout", metrics)

    @staticmethod
    def _save_generated(task, folder: Path, done: list[Rollout], chosen: list[Rollout], seen: list) -> None:
        """Every sample of the iteration (accepted or rejected, token ids included) with whether
        it was selected and whether it is novel (rollout.novel_flags), to folder/generated.jsonl:
        `generated`, `accepted` and `selected` of iterations.jsonl can be recounted from it."""
        picked = {id(r) for r in chosen}
        write_jsonl(folder / "generated.jsonl",
                    [{**row, "selected": id(r) in picked, "novel": novel}
                     for r, row, novel in zip(done, rollout_rows(done), novel_flags(task, done, seen))])

    @staticmethod
    def _row(problem, completion: list[int], how: str, extracted=None) -> dict:
        row = {"id": problem.id, "prompt_ids": list(problem.prompt_ids), "completion_ids": list(completion), "how": how}
        return row if extracted is None else {**row, "extracted": extracted}

    @staticmethod
    def _examples(rows: list[dict], tokenizer, block_size: int):
        """Selected rows -> SFTData: prompt + completion, only the completion scored."""
        return completion_examples([(r["prompt_ids"], r["completion_ids"]) for r in rows], block_size, tokenizer,
                                   key="method.block_size")

    def _fine_tune(self, cfg, task, model, tokenizer, data, folder: Path, steps: int) -> dict:
        """The training loop on `data` (SFTData; None = nothing to train on) for `steps`
        steps into folder/ (model/, train/metrics.jsonl)."""
        if data is None:  # nothing passed: the model stays as it is
            self._publish(None, model, tokenizer, folder / "model")
            return {"steps": 0, "final_loss": None}
        t = OmegaConf.merge(cfg.train, {"max_steps": steps, "resume": False, "save_steps": 0})
        model = copy.deepcopy(model)  # the start model stays untouched for the next iteration
        if cfg.train.lora.enabled:
            model = apply_lora(model, cfg.train.lora)
        batches = BlockBatches(data.blocks, int(t.batch_size), int(t.grad_accum), process_state().num_processes,
                               int(cfg.seed), labels=data.labels)
        summary = train_loop(t, model, tokenizer, batches, CausalLMLoss, folder, Tracker())
        if hasattr(model, "peft_config"):  # the adapter alone as well (model/ holds merged weights)
            model.save_pretrained(folder / "adapter")
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)  # model/ is the iteration's result
        return {"steps": summary["steps"], "final_loss": summary["final_loss"]}

    @staticmethod
    def _load(cfg, task, path: str):
        model = load_model(OmegaConf.merge(cfg.model, {"path": path}), task.tokenizer, task.cache)
        return model

    @staticmethod
    def _publish(folder: Path | None, model, tokenizer, target: Path) -> None:
        """target/ := a copy of folder/ (a finished iteration's model) or `model` saved,
        written beside it and swapped in (never half written)."""
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        if folder is not None:
            shutil.copytree(folder, tmp)
        else:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)

    def _evaluate(self, cfg, task, model, tokenizer, it: int, folder: Path, seen: list) -> dict:
        m = cfg.method
        out: dict = {}
        for split in m.eval_splits:
            problems = task.problems(split, limit=int(m.eval_problems))
            done = rollouts(model, tokenizer, task, problems, int(m.eval_samples), cfg.decoding,
                            seed=int(cfg.seed) * 1000 + 500 + it, batch_size=int(cfg.eval.gen_batch_size))
            rows = rollout_rows(done)
            write_jsonl(folder / f"eval_{split}.jsonl", rows)
            metrics = {**verified_metrics(rows, [int(k) for k in m.eval_ks]), **task.sample_metrics(rows, seen)}
            out.update(flatten(split, metrics))
        return out

    def _finish(self, cfg, task, run_dir: Path, tracker, it: int, model, tokenizer, log_path: Path,
                config_key: dict, extra: dict, seen: list = ()) -> dict:
        folder = run_dir / f"iter_{it}"
        metrics = self._evaluate(cfg, task, model, tokenizer, it, folder, list(seen))
        # run-relative: a copied or moved run folder loads its own models
        row = {"iteration": it, **extra, **metrics,
               "model": f"{folder.name}/model" if (folder / "model").exists() else None}
        write_json(folder / "metrics.json", {**row, "config": config_key})
        append_jsonl(log_path, row)  # the iteration counts as finished once this line is written
        tracker.log({f"ei/{k}": v for k, v in row.items() if isinstance(v, (int, float)) and k != "iteration"},
                    step=it)
        log.info("iteration %d: %s", it, ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()
                                                   if k.endswith("accuracy") or k.endswith("validity_rate")))
        return row

    @staticmethod
    def _config_key(cfg) -> dict:
        """What decides the iterations' results (stored in every iter_<k>/metrics.json, compared
        on resume); train without its cadence keys (logging, saving, threads)."""
        key = {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
               for k in ("method", "task", "model", "decoding", "seed")}
        return {**key, "train": train_result_config(cfg.train)}

    @staticmethod
    def _model_dir(run_dir: Path, stored: str) -> Path:
        """An iteration's model folder from its iterations.jsonl entry: run-relative
        (iter_<k>/model); an older absolute entry is read as its last two parts, so a copied
        or moved folder still loads its own models."""
        return Path(run_dir) / Path(*Path(stored).parts[-2:])

    @staticmethod
    def _start_over(run_dir: Path, log_path: Path) -> None:
        """train.resume=false: an earlier run's iterations in this folder are dropped, not resumed."""
        if log_path.exists() or (run_dir / "iter_0").exists():
            log.info("expert_iteration: train.resume=false: starting over (removing %s and iter_*/)", log_path)
        log_path.unlink(missing_ok=True)
        for folder in run_dir.glob("iter_*"):
            shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _resume(run_dir: Path, log_path: Path, config_key: dict) -> list[dict]:
        """The finished iterations of an earlier run into this folder (same config, compared
        with the one stored in the first finished iteration's metrics.json), else [] (a fresh
        start)."""
        if not log_path.exists():
            return []
        rows = read_jsonl(log_path)
        if rows:
            marker = run_dir / f"iter_{rows[0].get('iteration', 0)}" / "metrics.json"
            if not marker.exists():
                raise ConfigError(f"{marker}: missing, so the iterations in {log_path} cannot be checked against this "
                                  f"config; restore it, or start over with train.resume=false")
            ExpertIteration._same_config(read_json(marker).get("config"), config_key, run_dir)
            log.info("expert_iteration: resuming after iteration %d", rows[-1]["iteration"])
        return rows

    @staticmethod
    def _same_config(saved: dict | None, config_key: dict, run_dir: Path) -> None:
        if saved is None:
            raise ConfigError(f"{run_dir}: its iterations record no config to check this run against; "
                              "start over with train.resume=false, or use a new run folder (hydra.run.dir=...)")
        diffs = config_differences(saved, config_key)
        if diffs:
            more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
            raise ConfigError(f"{diffs[0].split(':')[0]}: {run_dir} holds iterations run with another config "
                              f"({'; '.join(diffs[:3])}{more}); use a new run folder (hydra.run.dir=...), or start "
                              "over in this one with train.resume=false")

    # -- report -----------------------------------------------------------------------------
    @classmethod
    def report_tables(cls) -> list:
        return [ReportTable("Expert Iteration", "train", [
            ("Run", "run"), ("Task", "task"), ("Control", "train.control"), ("Style", "train.style"),
            ("Iterations", "train.iterations"), ("Train Acc (0)", "train.first.train/accuracy"),
            ("Train Acc (last)", "train.last.train/accuracy"), ("Heldout Acc (0)", "train.first.heldout/accuracy"),
            ("Heldout Acc (last)", "train.last.heldout/accuracy"), ("Grokking", "train.grokking.detected"),
            ("Model", "model"), ("Seed", "seed")])]

    @classmethod
    def report_plots(cls, rows: list[dict], out_dir: Path) -> list[str]:
        plots = plot_iterations(rows, out_dir / "iterations.png")
        if any((r.get("train") or {}).get("budget") for r in rows):  # arms of equal sampled completions
            plots += diversity_report(sweep_rows(rows, out_dir), out_dir)
        return plots

