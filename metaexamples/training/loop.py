"""The one training loop: a model, its batches and an objective -> checkpoints and a model.

Read top to bottom: one process on CPU (fp32), the same code under `accelerate launch` on
several GPUs (DDP, or FSDP with train.distributed=fsdp; bf16). Only the main process logs and
writes files; every rank takes part in saving. The caller (a method) loads the model and says
what to train on; the loop never reads a task's data itself.

Batches: token blocks (and optional labels) in a seeded permutation per epoch; optimizer
step s, micro-batch m, rank r reads a fixed slice of that order, so the data position is a
function of the step and resuming from a checkpoint continues exactly where the run stopped.
The objective is an nn.Module wrapping the model whose forward(*batch) is the loss (the
next-token loss for SFT: training/loss.py).
Writes run_dir/train/metrics.jsonl, run_dir/checkpoints/checkpoint-<step>/, run_dir/model/.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from metaexamples.errors import ConfigError
from metaexamples.io import append_jsonl, read_jsonl, write_text
from metaexamples.training.checkpoint import (check_resumable, checkpoint_step, export_final, latest_checkpoint,
                                              load_state, remove_checkpoints, save_checkpoint,
                                              share_weights_with_hf_folder)
from metaexamples.training.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)


class Progress:
    """The trainer's own resumable state (saved with the checkpoint)."""

    def __init__(self) -> None:
        self.step = 0
        self.tokens = 0
        self.seconds = 0.0  # training time (no evaluation or saving) over the whole run

    def state_dict(self) -> dict:
        return {"step": self.step, "tokens": self.tokens, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.tokens = int(state["step"]), int(state["tokens"])
        self.seconds = float(state.get("seconds", 0.0))


class BlockBatches:
    """Micro-batches of training blocks, addressed by (step, micro-batch, rank). With `labels`
    (same shape, -100 = not scored) a batch is (input_ids, labels), else input_ids alone."""

    def __init__(self, blocks: np.ndarray, batch_size: int, grad_accum: int, world: int, seed: int,
                 labels: np.ndarray | None = None) -> None:
        if len(blocks) == 0:
            raise ConfigError("data.n_train_items: the training stream is empty; raise data.n_train_items")
        self.blocks = torch.from_numpy(blocks.astype(np.int64))
        self.labels = torch.from_numpy(labels.astype(np.int64)) if labels is not None else None
        self.batch_size, self.grad_accum, self.world, self.seed = batch_size, grad_accum, world, seed
        self._epoch, self._perm = -1, np.empty(0, dtype=np.int64)  # the last epoch's order, reused

    def _order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.blocks))
        return self._perm

    def get(self, step: int, micro: int, rank: int) -> torch.Tensor:
        n = len(self.blocks)
        first = ((step * self.grad_accum + micro) * self.world + rank) * self.batch_size
        parts, p, end = [], first, first + self.batch_size
        while p < end:  # positions are contiguous: one slice per epoch the batch spans
            epoch, offset = divmod(p, n)
            take = min(n - offset, end - p)
            parts.append(self._order(epoch)[offset:offset + take])
            p += take
        index = torch.from_numpy(np.concatenate(parts))
        return self.blocks[index] if self.labels is None else (self.blocks[index], self.labels[index])


def mixed_precision(precision: str) -> str:
    """accelerate's mixed_precision: auto = bf16 on a GPU that has it, else fp32 ("no")."""
    if precision == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[precision]


def make_accelerator(t):
    from accelerate import Accelerator, FullyShardedDataParallelPlugin

    from metaexamples.launch import on_cpu

    kwargs = {"mixed_precision": mixed_precision(t.precision), "gradient_accumulation_steps": int(t.grad_accum),
              "cpu": on_cpu()}
    if t.distributed == "fsdp" and torch.cuda.is_available():
        kwargs["fsdp_plugin"] = FullyShardedDataParallelPlugin(
            auto_wrap_policy="transformer_based_wrap", state_dict_type="FULL_STATE_DICT",
            use_orig_params=True)
    return Accelerator(**kwargs)


def apply_lora(model, lora_cfg):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=int(lora_cfg.r), lora_alpha=int(lora_cfg.alpha), lora_dropout=float(lora_cfg.dropout),
                        target_modules=list(lora_cfg.target_modules), task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise ConfigError(f"train.lora.target_modules: {str(exc).splitlines()[0]}") from None


def _is_oom(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


def available_memory(device) -> int | None:
    """Bytes this process can still allocate on `device`: free GPU memory, or the kernel's
    MemAvailable on a CPU; None where neither can be read."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def activation_bytes(model_config, batch_size: int, width: int) -> int | None:
    """A lower estimate of one micro-batch's activation memory in fp32 for a transformer
    (Korthikanti et al. 2022: 34*s*b*h + 5*a*s^2*b bytes per layer in 16-bit; doubled for
    fp32); None for a model without the usual config fields."""
    fields = ("hidden_size", "num_hidden_layers", "num_attention_heads")
    if model_config is None or any(not isinstance(getattr(model_config, f, None), int) for f in fields):
        return None
    h, layers, heads = (getattr(model_config, f) for f in fields)
    return 2 * layers * batch_size * (34 * width * h + 5 * heads * width * width)


def check_fits_in_memory(t, model_config, width: int, device) -> None:
    """Refuse, in one line and before the first step, a micro-batch whose activations alone
    exceed the memory left: on a CPU the kernel would otherwise kill the job without a word
    once its pages are touched (an allocation failure is caught below as well)."""
    need, free = activation_bytes(model_config, int(t.batch_size), width), available_memory(device)
    if need is not None and free is not None and need > free:
        raise ConfigError(oom_message(t, width) + f" (its activations need ~{need / 2**30:.1f} GiB, "
                          f"{free / 2**30:.1f} GiB is available)")


def oom_message(t, width: int) -> str:
    return (f"train.batch_size: a micro-batch of {t.batch_size} x {width} tokens does not fit in memory; lower "
            "train.batch_size (raise train.grad_accum to keep the effective batch) or the block size")


def _keep_metrics_up_to(path: Path, step: int, key: str = "step") -> list[dict]:
    """On resume, drop logged rows past the checkpoint (`row[key]` > step: the resumed run
    logs them again); return the rows kept."""
    if not path.exists():
        return []
    rows = read_jsonl(path)  # a damaged line is one error naming the file and line
    lines = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True) if line.strip()]
    kept = [i for i, r in enumerate(rows) if r.get(key, 0) <= step]
    write_text(path, "".join(lines[i] for i in kept))  # the kept lines byte for byte, as first written
    return [rows[i] for i in kept]


def run_fingerprint(t, world: int, job: dict | None = None) -> dict:
    """What decides the trained model (stored in each checkpoint, compared on resume): `job`
    (the job's result config, schemas.result_config, from the method that runs the loop; None
    for a loop inside a method, whose own config is compared by the method), the train
    settings this loop runs with, and the number of processes."""
    from metaexamples.schemas import train_result_config

    return {**(job or {}), "train": train_result_config(t), "world_size": world}


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def total_steps(t, n_rows: int, world: int) -> int:
    """train.max_steps, or with train.epochs the optimizer steps that read the n_rows training
    rows that many times (rounded up)."""
    if t.get("epochs") is None:
        return int(t.max_steps)
    per_step = int(t.batch_size) * int(t.grad_accum) * world
    return max(1, -(-int(t.epochs) * n_rows // per_step))


def train_loop(t, model, tokenizer, batches: BlockBatches, objective, run_dir: Path, tracker,
               monitor=None, job: dict | None = None) -> dict:
    """Train `model` with `objective(model)` (an nn.Module whose forward(*batch) is the loss)
    on `batches`, under the train config `t`. `monitor(prepared_objective, accelerator)`, if
    given, evaluates every t.eval_steps. `job`: the job's result config, stored in each
    checkpoint and compared on resume (run_fingerprint). Returns the train section of
    results.json."""
    from tqdm.auto import tqdm

    accelerator = make_accelerator(t)
    main = accelerator.is_main_process
    model.config.use_cache = False  # no KV cache while training
    # accelerate wraps the objective (DDP/FSDP), so the whole forward goes through the wrapper.
    model = accelerator.prepare(objective(model).train())  # FSDP: wrap before the optimizer exists
    optimizer = accelerator.prepare(build_optimizer(model, float(t.lr), float(t.weight_decay)))
    max_steps = total_steps(t, len(batches.blocks), accelerator.num_processes)
    # Not prepared: accelerate would step a prepared scheduler once per process.
    scheduler = build_scheduler(optimizer, int(t.warmup_steps), max_steps, float(t.min_lr_ratio))
    progress = Progress()
    accelerator.register_for_checkpointing(scheduler, progress)
    share_weights_with_hf_folder(accelerator)

    run_dir = Path(run_dir)
    ckpt_root, metrics_path = run_dir / "checkpoints", run_dir / "train" / "metrics.jsonl"
    world = accelerator.num_processes
    fingerprint = run_fingerprint(t, world, job)
    resumed_from = None
    last_row: dict = {}
    eval_row: dict = {}
    last = latest_checkpoint(ckpt_root) if t.resume else None
    if last is not None:
        check_resumable(last, fingerprint)
        load_state(accelerator, last)
        resumed_from = checkpoint_step(last)
        if main:  # the numbers logged up to the checkpoint stand until new ones replace them
            for row in _keep_metrics_up_to(metrics_path, progress.step):
                if "train/loss" in row:
                    last_row = row
                if "eval/loss" in row:
                    eval_row = row
        if progress.step >= max_steps:
            log.info("train: already finished at step %d (%s): nothing to train; keeping its numbers",
                     progress.step, last)
        else:
            log.info("train: resumed from %s (step %d)", last, progress.step)
    elif main:
        if not t.resume and (n_old := remove_checkpoints(ckpt_root)):
            log.info("train: train.resume=false: starting over (removed %d old checkpoint(s) in %s)", n_old, ckpt_root)
        if metrics_path.exists():
            metrics_path.unlink()  # a fresh start
    tokens_per_step = int(t.batch_size) * int(t.grad_accum) * world * batches.blocks.shape[1]
    if progress.step < max_steps:
        check_fits_in_memory(t, getattr(accelerator.unwrap_model(model).model, "config", None),
                             batches.blocks.shape[1], accelerator.device)

    def record(row: dict) -> None:
        if main:
            append_jsonl(metrics_path, row)
            tracker.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])

    # A progress bar on a terminal; in a file (a cluster job's log) one line per log window.
    lines = main and not sys.stderr.isatty()
    bar = tqdm(total=max_steps, initial=progress.step, disable=not main or lines, desc="train", unit="step",
               dynamic_ncols=True)
    session_start, start_step = time.perf_counter(), progress.step
    window_loss, window_steps, window_start = torch.zeros((), device=accelerator.device), 0, time.perf_counter()
    try:
        while progress.step < max_steps:
            step = progress.step
            for micro in range(int(t.grad_accum)):
                batch = batches.get(step, micro, accelerator.process_index)
                batch = tuple(b.to(accelerator.device) for b in batch) if isinstance(batch, tuple) \
                    else (batch.to(accelerator.device),)
                with accelerator.accumulate(model):
                    loss = model(*batch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and t.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(model.parameters(), float(t.max_grad_norm))
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                window_loss += loss.detach() / int(t.grad_accum)
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            progress.step += 1
            progress.tokens += tokens_per_step
            window_steps += 1
            bar.update(1)

            done = progress.step == max_steps
            log_now = progress.step % int(t.log_steps) == 0 or done
            if log_now:
                mean_loss = float(accelerator.reduce(window_loss, reduction="mean")) / window_steps
                seconds = time.perf_counter() - window_start
                progress.seconds += seconds
                last_row = {"step": progress.step, "train/loss": mean_loss, "train/lr": lr,
                            "train/tokens_per_s": window_steps * tokens_per_step / seconds,
                            "train/tokens": progress.tokens}
                record(last_row)
                bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.2e}")
                if lines:
                    elapsed = time.perf_counter() - session_start
                    left = elapsed / (progress.step - start_step) * (max_steps - progress.step)
                    log.info("train: step %d/%d, loss %.4f, lr %.2e, %.0f tokens/s, %s left", progress.step,
                             max_steps, mean_loss, lr, last_row["train/tokens_per_s"], _duration(left))
                window_loss.zero_()
                window_steps = 0
            if monitor is not None and (progress.step % int(t.eval_steps) == 0 or done):
                eval_row = {"step": progress.step, **monitor(model, accelerator)}
                record(eval_row)
                log.info("step %d: %s", progress.step, ", ".join(f"{k} {v:.4g}" for k, v in eval_row.items() if k != "step"))
            if (t.save_steps and progress.step % int(t.save_steps) == 0) or done:
                save_checkpoint(accelerator, model, tokenizer, ckpt_root, progress.step, int(t.keep_checkpoints),
                                fingerprint)
            if log_now:
                window_start = time.perf_counter()  # evaluation and saving are not training time
    except Exception as exc:  # noqa: BLE001 - re-raised; an OOM becomes a one-line error
        if _is_oom(exc):
            raise ConfigError(oom_message(t, batches.blocks.shape[1])) from None
        raise
    finally:
        bar.close()

    export_final(accelerator, model, tokenizer, run_dir / "model")
    return {
        "steps": progress.step,
        "tokens": progress.tokens,
        "final_loss": last_row.get("train/loss"),
        "tokens_per_s": last_row.get("train/tokens_per_s"),
        "mean_tokens_per_s": progress.tokens / progress.seconds if progress.seconds > 0 else None,
        "eval_loss": eval_row.get("eval/loss"),
        "eval_ppl": eval_row.get("eval/ppl"),
        "eval_valid_ppl": eval_row.get("eval/valid_ppl"),
        "eval_invalid_ppl": eval_row.get("eval/invalid_ppl"),
        "resumed_from": resumed_from,
        "world_size": world,
        "mixed_precision": accelerator.mixed_precision,
        "lora": bool(t.lora.enabled),
        "model_dir": str(run_dir / "model"),
    }
