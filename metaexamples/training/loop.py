"""The supervised training loop (method=sft, expert iteration's fine-tuning, the warm start):
a model, its batches and an objective -> checkpoints and a model, through the training
scaffold (training/scaffold.py: accelerate, resume, progress, logging, checkpoints, export).

One step = train.grad_accum micro-batches `batches.get(step, micro, rank)`
(training/batches.py: the data position is a function of the step, so a resumed run continues
exactly where it stopped). The objective is an nn.Module wrapping the model whose
forward(*batch) is the loss (the next-token loss for SFT: training/loss.py), or (loss,
{name: value}) to log figures of its own: each is averaged over the log window like the loss
and logged as train/<name>.
Writes run_dir/train/metrics.jsonl, run_dir/checkpoints/checkpoint-<step>/, run_dir/model/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from metaexamples.errors import ConfigError
from metaexamples.training.batches import BlockBatches
from metaexamples.training.scaffold import Progress, TrainingRun, last_row_with, run_fingerprint

# the figures of the progress bar and lines
HEADLINE = (("loss", "train/loss", ".4f"), ("lr", "train/lr", ".2e"), ("tokens/s", "train/tokens_per_s", ".0f"))
# a row of the in-training evaluation (the task's monitor) holds figures named eval/<name>
EVAL_PREFIX = "eval/"


class TokenProgress(Progress):
    """The loop's resumable state (saved with the checkpoint): steps, tokens, and training
    time (no evaluation or saving) over the whole run."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = 0
        self.seconds = 0.0

    def state_dict(self) -> dict:
        return {**super().state_dict(), "tokens": self.tokens, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.tokens = int(state["tokens"])
        self.seconds = float(state.get("seconds", 0.0))


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


def total_steps(t, n_rows: int, world: int) -> int:
    """train.max_steps, or with train.epochs the optimizer steps that read the n_rows training
    rows that many times (rounded up)."""
    if t.get("epochs") is None:
        return int(t.max_steps)
    per_step = int(t.batch_size) * int(t.grad_accum) * world
    return max(1, -(-int(t.epochs) * n_rows // per_step))


def _loss_and_figures(out) -> tuple[torch.Tensor, dict]:
    """An objective's output: the loss, or (loss, {name: value})."""
    if isinstance(out, tuple):
        loss, figures = out
        return loss, dict(figures)
    return out, {}


def train_loop(t, model, tokenizer, batches: BlockBatches, objective, run_dir: Path, tracker,
               monitor=None, job: dict | None = None, eval_names: Sequence[str] = ()) -> dict:
    """Train `model` with `objective(model)` (an nn.Module whose forward(*batch) is the loss,
    or (loss, figures)) on `batches`, under the train config `t`. `monitor(prepared_objective,
    accelerator) -> {"eval/<name>": value}`, if given, evaluates every t.eval_steps. `job`: the
    job's result config, stored in each checkpoint and compared on resume (run_fingerprint).
    Returns the train section of results.json: the monitor's last figures as eval_<name>, those
    of `eval_names` always (null where none was logged), so the section's keys do not depend on
    the task."""
    run = TrainingRun(t, tokenizer)
    acc = run.accelerator
    model.config.use_cache = False  # no KV cache while training
    # accelerate wraps the objective (DDP/FSDP), so the whole forward goes through the wrapper.
    wrapped = run.prepare(objective(model).train(), float(t.lr), total_steps(t, len(batches.blocks), run.world),
                          TokenProgress())
    progress, max_steps, grad_accum = run.progress, run.max_steps, int(t.grad_accum)
    run.start(run_dir, tracker, run_fingerprint(t, run.world, job))
    width = batches.blocks.shape[1]
    tokens_per_step = int(t.batch_size) * grad_accum * run.world * width
    if progress.step < max_steps:
        check_fits_in_memory(t, getattr(acc.unwrap_model(wrapped).model, "config", None), width, acc.device)

    window = {"loss": torch.zeros((), device=acc.device), "steps": 0, "figures": {}}

    def step(index: int) -> dict | None:
        for micro in range(grad_accum):
            batch = batches.get(index, micro, acc.process_index)
            batch = tuple(b.to(acc.device) for b in batch) if isinstance(batch, tuple) else (batch.to(acc.device),)
            with acc.accumulate(wrapped):
                loss, figures = _loss_and_figures(wrapped(*batch))
                run.optimize(loss)
            window["loss"] += loss.detach() / grad_accum
            for name, value in figures.items():
                total = window["figures"].setdefault(name, torch.zeros((), device=acc.device))
                total += torch.as_tensor(value, dtype=torch.float32, device=acc.device).detach() / grad_accum
        lr = run.advance_schedule()
        progress.tokens += tokens_per_step
        window["steps"] += 1
        if (index + 1) % int(t.log_steps) and index + 1 != max_steps:
            return None
        steps = window["steps"]
        mean_loss = float(acc.reduce(window["loss"], reduction="mean")) / steps
        seconds = run.lap()
        progress.seconds += seconds
        row = {"train/loss": mean_loss, "train/lr": lr, "train/tokens_per_s": steps * tokens_per_step / seconds,
               "train/tokens": progress.tokens,
               **{f"train/{k}": float(acc.reduce(v, reduction="mean")) / steps for k, v in window["figures"].items()}}
        window["loss"].zero_()
        window["steps"], window["figures"] = 0, {}
        return row

    try:
        run.drive(step, HEADLINE, monitor=monitor)
    except Exception as exc:  # noqa: BLE001 - re-raised; an OOM becomes a one-line error
        if _is_oom(exc):
            raise ConfigError(oom_message(t, width)) from None
        raise
    run.export()
    last_row = last_row_with(run.rows, "train/loss")
    evaluated = next((r for r in reversed(run.rows) if any(k.startswith(EVAL_PREFIX) for k in r)), {})
    return {
        "steps": progress.step,
        "tokens": progress.tokens,
        "final_loss": last_row.get("train/loss"),
        "tokens_per_s": last_row.get("train/tokens_per_s"),
        "mean_tokens_per_s": progress.tokens / progress.seconds if progress.seconds > 0 else None,
        **{f"eval_{name}": None for name in eval_names},
        **{f"eval_{k.removeprefix(EVAL_PREFIX)}": v for k, v in evaluated.items() if k.startswith(EVAL_PREFIX)},
        **run.summary(),
    }


__all__ = ["BlockBatches", "TokenProgress", "apply_lora", "check_fits_in_memory", "total_steps", "train_loop"]
