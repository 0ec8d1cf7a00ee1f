"""The training scaffold every method trains through: one resumable run of `max_steps` steps in
a run folder, whatever a step does.

A method says what one step is (a callable `step(index) -> metrics row or None`: SFT's
micro-batches under the next-token loss, polychromic's rollouts and PPO minibatches, a new
method's own objective); the scaffold does the rest, the same way for all of them:

- accelerate (one process on CPU, DDP or FSDP on GPUs), the optimizer (AdamW) and the
  warmup-cosine schedule (`prepare`), with the backward / clip / optimizer step (`optimize`)
  and one schedule step per training step (`advance_schedule`);
- resume (`start`): the run folder's last checkpoint is checked against the run's
  fingerprint (another config, or a damaged file, is refused in one line), loaded, and every
  log the method names is cut back to it, so a resumed run's files equal an uninterrupted
  run's; train.resume=false starts over and drops the old checkpoints and logs;
- the step driver (`drive`): the progress bar on a terminal, one progress line per log window
  in a file (a cluster job's log), every returned row to run_dir/train/metrics.jsonl and the
  tracker, an optional in-training evaluation every train.eval_steps, a checkpoint every
  train.save_steps (and at the end if the method asks);
- the final export to run_dir/model/ (plain Hugging Face, LoRA merged: `export`) and the
  fields every method's results.json `train` section ends with (`summary`).

The trained module is a wrapper holding the causal LM as `.model` (what checkpoints and the
export save): training/loss.CausalLMLoss for SFT, a method's own nn.Module otherwise.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from metaexamples.io import append_jsonl, read_jsonl, write_text
from metaexamples.launch import on_cpu
from metaexamples.schemas import train_result_config
from metaexamples.training.checkpoint import (check_resumable, checkpoint_step, export_final, latest_checkpoint,
                                              load_state, remove_checkpoints, save_checkpoint,
                                              share_weights_with_hf_folder)
from metaexamples.training.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

METRICS = Path("train") / "metrics.jsonl"

# (label, row key, format) of the figures a progress line and the bar show
Headline = Sequence[tuple[str, str, str]]


class Progress:
    """The run's step counter, saved with every checkpoint. A method that counts more (tokens,
    samples) subclasses it and extends state_dict / load_state_dict."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


def mixed_precision(precision: str) -> str:
    """accelerate's mixed_precision: auto = bf16 on a GPU that has it, else fp32 ("no")."""
    if precision == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[precision]


def make_accelerator(t, grad_accum: int | None = None):
    """An Accelerator for train config `t` (`grad_accum`: accelerate's gradient accumulation,
    default train.grad_accum)."""
    from accelerate import Accelerator, FullyShardedDataParallelPlugin


    kwargs = {"mixed_precision": mixed_precision(t.precision),
              "gradient_accumulation_steps": int(t.grad_accum if grad_accum is None else grad_accum), "cpu": on_cpu()}
    if t.distributed == "fsdp" and torch.cuda.is_available():
        kwargs["fsdp_plugin"] = FullyShardedDataParallelPlugin(
            auto_wrap_policy="transformer_based_wrap", state_dict_type="FULL_STATE_DICT",
            use_orig_params=True)
    return Accelerator(**kwargs)


def run_fingerprint(t, world: int, job: dict | None = None) -> dict:
    """What decides the trained model (stored in each checkpoint, compared on resume): `job`
    (the job's result config, schemas.result_config, from the method that runs the scaffold;
    None for a run inside a method, whose own config is compared by the method), the train
    settings the run trains with, and the number of processes."""
    return {**(job or {}), "train": train_result_config(t), "world_size": world}


def keep_rows_up_to(path: Path, step: int, key: str = "step") -> list[dict]:
    """On resume, drop logged rows past the checkpoint (`row[key]` > step: the resumed run
    logs them again); return the rows kept."""
    if not path.exists():
        return []
    rows = read_jsonl(path)  # a damaged line is one error naming the file and line
    lines = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True) if line.strip()]
    kept = [i for i, r in enumerate(rows) if r.get(key, 0) <= step]
    write_text(path, "".join(lines[i] for i in kept))  # the kept lines byte for byte, as first written
    return [rows[i] for i in kept]


def last_row_with(rows: Sequence[dict], key: str) -> dict:
    """The last of `rows` that holds `key` ({} if none does)."""
    return next((r for r in reversed(rows) if key in r), {})


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _figures(row: dict, headline: Headline) -> list[tuple[str, str]]:
    return [(label, format(row[key], fmt)) for label, key, fmt in headline if key in row]


class TrainingRun:
    """One run of the scaffold. In order: `TrainingRun(t, tokenizer)`, `prepare` (the wrapper,
    its optimizer and schedule), `start(run_dir, tracker, fingerprint)` (resume or a fresh
    start), `drive(step)`, `export()`, `summary()`.

    `name` and `unit` label the bar and the log lines ("train", "step"; "polychromic",
    "update")."""

    def __init__(self, t, tokenizer, name: str = "train", unit: str = "step", grad_accum: int | None = None) -> None:
        self.t, self.tokenizer, self.tracker = t, tokenizer, None
        self.name, self.unit = name, unit
        self.accelerator = make_accelerator(t, grad_accum)
        self.main = self.accelerator.is_main_process
        self.world = self.accelerator.num_processes
        self.model = self.optimizer = self.scheduler = self.progress = None
        self.max_steps = 0
        self.run_dir: Path | None = None
        self.fingerprint: dict | None = None
        self.resumed_from: int | None = None
        self.rows: list[dict] = []  # every row logged in this run folder, those before a resume included
        self._lap_start, self._paused = time.perf_counter(), 0.0

    # -- set-up ---------------------------------------------------------------------------
    def prepare(self, wrapper: torch.nn.Module, lr: float, max_steps: int, progress: Progress | None = None):
        """Wrap `wrapper` (an nn.Module holding the model as `.model`) for accelerate, with
        AdamW at `lr` and the warmup-cosine schedule over `max_steps`; `progress` (default
        a bare step counter) and the schedule are saved with every checkpoint. Returns the
        prepared wrapper (what a step calls)."""
        acc, t = self.accelerator, self.t
        self.model = acc.prepare(wrapper)  # FSDP: wrap before the optimizer exists
        self.optimizer = acc.prepare(build_optimizer(self.model, float(lr), float(t.weight_decay)))
        self.max_steps = int(max_steps)
        # Not prepared: accelerate would step a prepared scheduler once per process.
        self.scheduler = build_scheduler(self.optimizer, int(t.warmup_steps), self.max_steps, float(t.min_lr_ratio))
        self.progress = progress if progress is not None else Progress()
        acc.register_for_checkpointing(self.scheduler, self.progress)
        share_weights_with_hf_folder(acc)  # the weights once per checkpoint, in its HF files
        return self.model

    def also_checkpoint(self, state) -> None:
        """Save and restore `state` (state_dict / load_state_dict) with every checkpoint."""
        self.accelerator.register_for_checkpointing(state)

    @property
    def lora(self) -> bool:
        """Whether the trained model is a LoRA (peft) model."""
        return hasattr(self.accelerator.unwrap_model(self.model).model, "peft_config")

    def start(self, run_dir: Path, tracker, fingerprint: dict, logs: dict[str, str] | None = None) -> list[dict]:
        """Attach the run to `run_dir` and `tracker` (W&B or none): with train.resume and a checkpoint there, check it
        against `fingerprint` (refused in one line if it differs or is damaged), load it, and
        cut train/metrics.jsonl and every other log in `logs` ({run-relative path: the key its
        rows count steps by}) back to it; else start fresh (train.resume=false removes old
        checkpoints) with those logs removed. Returns the metrics rows kept (also `self.rows`)."""
        acc, t = self.accelerator, self.t
        self.run_dir, self.tracker, self.fingerprint = Path(run_dir), tracker, fingerprint
        ckpt_root = self.run_dir / "checkpoints"
        logs = {METRICS.as_posix(): "step", **(logs or {})}
        last = latest_checkpoint(ckpt_root) if t.resume else None
        if last is None:
            if self.main:
                if not t.resume and (n_old := remove_checkpoints(ckpt_root)):
                    log.info("%s: train.resume=false: starting over (removed %d old checkpoint(s) in %s)", self.name,
                             n_old, ckpt_root)
                for path in logs:
                    (self.run_dir / path).unlink(missing_ok=True)  # a fresh start
            return self.rows
        check_resumable(last, fingerprint)
        load_state(acc, last)
        self.resumed_from = checkpoint_step(last)
        if self.main:  # the numbers logged up to the checkpoint stand until new ones replace them
            for path, key in logs.items():
                kept = keep_rows_up_to(self.run_dir / path, self.progress.step, key)
                if path == METRICS.as_posix():
                    self.rows = kept
        if self.progress.step >= self.max_steps:
            log.info("%s: already finished at %s %d (%s): nothing to train; keeping its numbers", self.name,
                     self.unit, self.progress.step, last)
        else:
            log.info("%s: resumed from %s (%s %d)", self.name, last, self.unit, self.progress.step)
        return self.rows

    # -- inside a step --------------------------------------------------------------------
    def optimize(self, loss: torch.Tensor) -> torch.Tensor | None:
        """Backward, clip to train.max_grad_norm (when > 0, on the micro-batch that syncs the
        gradients), an optimizer step and zeroed gradients. Returns the gradient norm before
        clipping, or None where none was taken."""
        acc, t = self.accelerator, self.t
        acc.backward(loss)
        norm = None
        if acc.sync_gradients and t.max_grad_norm > 0:
            norm = acc.clip_grad_norm_(self.model.parameters(), float(t.max_grad_norm))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def advance_schedule(self) -> float:
        """The learning rate this step trained with; the schedule moves on to the next step."""
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        return lr

    def lap(self) -> float:
        """Seconds of training since the last lap (or the start): the scaffold's own work
        (logging, the in-training evaluation, saving) is not counted."""
        now = time.perf_counter()
        seconds = now - self._lap_start - self._paused
        self._lap_start, self._paused = now, 0.0
        return seconds

    # -- the driver -----------------------------------------------------------------------
    def record(self, row: dict) -> None:
        """One row (with "step") to train/metrics.jsonl and the tracker (main process)."""
        self.rows.append(row)
        if self.main:
            append_jsonl(self.run_dir / METRICS, row)
            self.tracker.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])

    def drive(self, step: Callable[[int], dict | None], headline: Headline = (),
              monitor: Callable | None = None, checkpoint_at_end: bool = True) -> None:
        """Run `step(index)` for index = progress.step .. max_steps - 1. A step returns the
        metrics to log at this step (without "step"), or None. `headline` picks the figures of
        the bar and the progress lines (one every train.log_steps); `monitor(model,
        accelerator) -> metrics` evaluates every train.eval_steps and at the end; a checkpoint
        every train.save_steps, and after the last step with `checkpoint_at_end`."""
        from tqdm.auto import tqdm

        t, progress = self.t, self.progress
        # A progress bar on a terminal; in a file (a cluster job's log) one line per log window.
        lines = self.main and not sys.stderr.isatty()
        bar = tqdm(total=self.max_steps, initial=progress.step, disable=not self.main or lines, desc=self.name,
                   unit=self.unit, dynamic_ncols=True)
        session_start, start_step = time.perf_counter(), progress.step
        self.lap()
        try:
            while progress.step < self.max_steps:
                row = step(progress.step)
                progress.step += 1
                bar.update(1)
                paused = time.perf_counter()
                done = progress.step == self.max_steps
                if row is not None:
                    row = {"step": progress.step, **row}
                    self.record(row)
                    bar.set_postfix(dict(_figures(row, headline)))
                    if lines and (progress.step % int(t.log_steps) == 0 or done):
                        elapsed = time.perf_counter() - session_start
                        left = elapsed / (progress.step - start_step) * (self.max_steps - progress.step)
                        figures = ", ".join(f"{label} {value}" for label, value in _figures(row, headline))
                        log.info("%s: %s %d/%d, %s, %s left", self.name, self.unit, progress.step, self.max_steps,
                                 figures, _duration(left))
                if monitor is not None and (progress.step % int(t.eval_steps) == 0 or done):
                    evaluated = {"step": progress.step, **monitor(self.model, self.accelerator)}
                    self.record(evaluated)
                    log.info("%s %d: %s", self.unit, progress.step,
                             ", ".join(f"{k} {v:.4g}" for k, v in evaluated.items() if k != "step"))
                if (t.save_steps and progress.step % int(t.save_steps) == 0) or (done and checkpoint_at_end):
                    self.save_checkpoint()
                self._paused += time.perf_counter() - paused
        finally:
            bar.close()

    def save_checkpoint(self) -> None:
        save_checkpoint(self.accelerator, self.model, self.tokenizer, self.run_dir / "checkpoints", self.progress.step,
                        int(self.t.keep_checkpoints), self.fingerprint)

    # -- the end --------------------------------------------------------------------------
    def export(self) -> Path:
        """The trained model to run_dir/model/ (plain HF, LoRA merged), replaced atomically."""
        export_final(self.accelerator, self.model, self.tokenizer, self.run_dir / "model")
        return self.run_dir / "model"

    def summary(self) -> dict:
        """The fields every method's results.json `train` section ends with."""
        return {"resumed_from": self.resumed_from, "world_size": self.world,
                "mixed_precision": self.accelerator.mixed_precision, "lora": self.lora,
                "model_dir": str(self.run_dir / "model")}


__all__ = ["Progress", "TrainingRun", "keep_rows_up_to", "last_row_with", "make_accelerator", "mixed_precision",
           "run_fingerprint"]
