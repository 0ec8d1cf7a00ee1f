"""Training benchmark (issue #3): our loop against Hugging Face's Trainer, and the embedded default.

    .venv/bin/python benchmarks/bench_train.py [--steps 80] [--repeats 3] [--threads N]

1. Speed against `transformers.Trainer`. The `tiny` model (OLMo from scratch on the real
   offline SmolLM2 tokenizer, loaded with metaexamples.models.load_model, same seed so the same
   initial weights) is trained on the data stage's packed train blocks by
   - ours: metaexamples.training.run_train_stage, the real stage (accelerate, chunked fused
     LM-head + cross-entropy, its own AdamW and warmup-cosine schedule), and
   - Trainer: `transformers.Trainer` with the model's standard loss (full logits), its default
     AdamW implementation (fused on torch >= 2.8) with the same betas, eps, weight decay and
     grad clipping, and its `cosine_with_min_lr` schedule (same warmup steps, peak lr and floor;
     Trainer's warmup starts at lr 0 where ours starts at lr/(warmup+1), identical after warmup).
   Same batch size, block size, steps, thread count, fp32 on CPU, and the same batches in the
   same order: Trainer reads, sequentially, exactly the blocks our loop draws for each step.

   What is timed: only the optimisation steps, first step to last step, for both.
   - ours: run_train_stage's own `mean_tokens_per_s` (its log windows, from just before the
     first step to the end of the last; evaluation and checkpoint saving are outside the
     windows). Model loading, accelerate set-up, the final evaluation, the final checkpoint
     and the model export are not counted (they are shown as "fixed costs").
   - Trainer: a callback, from on_step_begin of the first step to on_step_end of the last
     (model loading, Trainer construction, dataloader and optimizer set-up are not counted).
   No in-training evaluation (ours: train.eval_steps = steps, so it only evaluates after the
   last step, outside the timed windows; Trainer: eval_strategy=no) and no intermediate
   checkpoints (ours: train.save_steps=0, the final one is outside the timed windows;
   Trainer: save_strategy=no). Both log the mean loss every 10 steps.
   Runs alternate ours / Trainer `--repeats` times after one short untimed warm-up run of each
   (first-use costs of the process); medians are reported. Target: ours / Trainer >= 0.95.
   The training losses of both (every 10 steps and the final one) and the loss of each trained
   model on the same held-out eval blocks are printed, so one can see they learned the same.

2. The embedded default: the default config (Hydra compose over conf/, no overrides but the
   cache folder and logger=none), run_train_stage once; its wall time (what the pipeline
   reports as the train stage time, `time/train_s`). Target <= 90 s on the 2-core dev machine.

The data stage runs first, untimed (cached under $METAEXAMPLES_CACHE or paths.cache_dir).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from metaexamples.config import register_configs
from metaexamples.data.build import run_data_stage
from metaexamples.data.bundle import load_bundle
from metaexamples.io import read_jsonl
from metaexamples.models import load_model, load_tokenizer
from metaexamples.paths import cache_dir as default_cache_dir
from metaexamples.tracking import Tracker
from metaexamples.training import run_train_stage
from metaexamples.training.loop import BlockBatches

CONF = str(Path(__file__).resolve().parents[1] / "conf")
RATIO_TARGET = 0.95
DEFAULT_TARGET_S = 90.0


def compose_cfg(overrides: list[str], cache: Path):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["logger=none", *overrides])
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache)
    return cfg


# --------------------------------------------------------------------------------------- ours

def run_ours(cfg, bundle, cache: Path) -> dict:
    """run_train_stage in a fresh run folder. tokens/s from its own summary (steps only)."""
    with tempfile.TemporaryDirectory(prefix="bench_train_ours_") as tmp:
        start = time.perf_counter()
        summary = run_train_stage(cfg, bundle, Path(tmp), Tracker(), cache)
        wall = time.perf_counter() - start
        rows = [r for r in read_jsonl(Path(tmp) / "train" / "metrics.jsonl") if "train/loss" in r]
    tokens_per_step = int(cfg.train.batch_size) * int(cfg.train.grad_accum) * bundle.blocks("train").shape[1]
    steps_s = summary["tokens"] / summary["mean_tokens_per_s"]
    # The windows after the first one (first-step costs excluded): each holds log_steps steps.
    later = rows[1:]
    later_s = sum((r["step"] - p["step"]) * tokens_per_step / r["train/tokens_per_s"] for p, r in zip(rows, later))
    later_tokens = (rows[-1]["step"] - rows[0]["step"]) * tokens_per_step
    return {"tokens_per_s": summary["mean_tokens_per_s"], "steps_s": steps_s, "wall_s": wall,
            "steady_tokens_per_s": later_tokens / later_s if later_s > 0 else None,
            "final_loss": summary["final_loss"], "losses": {r["step"]: r["train/loss"] for r in rows},
            "eval_loss": summary["eval_loss"]}


# ------------------------------------------------------------------------------------ Trainer

class BlockDataset(torch.utils.data.Dataset):
    def __init__(self, blocks: torch.Tensor) -> None:
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.blocks[i], "labels": self.blocks[i]}


def ours_batch_order(cfg, bundle) -> torch.Tensor:
    """The blocks our loop trains on, step after step, concatenated ([steps * batch, block])."""
    t = cfg.train
    batches = BlockBatches(bundle.blocks("train"), int(t.batch_size), int(t.grad_accum), 1, int(cfg.seed))
    return torch.cat([batches.get(s, m, 0) for s in range(int(t.max_steps)) for m in range(int(t.grad_accum))])


def run_trainer(cfg, bundle, tokenizer, cache: Path, blocks: torch.Tensor) -> dict:
    from transformers import Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    t = cfg.train
    n = int(t.max_steps)

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.begin = self.end = self.steady_begin = None
            self.losses: dict[int, float] = {}

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 0:
                self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == int(t.log_steps):
                self.steady_begin = time.perf_counter()
            if state.global_step == n:
                self.end = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses[state.global_step] = float(logs["loss"])

    model = load_model(cfg.model, tokenizer, cache, seed=int(cfg.seed))  # not timed
    model.config.use_cache = False
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="bench_train_hf_") as tmp:
        args = TrainingArguments(
            output_dir=tmp, use_cpu=True, seed=int(cfg.seed),
            per_device_train_batch_size=int(t.batch_size), gradient_accumulation_steps=int(t.grad_accum),
            max_steps=n, learning_rate=float(t.lr), weight_decay=float(t.weight_decay),
            adam_beta1=0.9, adam_beta2=0.95, adam_epsilon=1e-8, max_grad_norm=float(t.max_grad_norm),
            lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": float(t.min_lr_ratio)},
            warmup_steps=int(t.warmup_steps), logging_steps=int(t.log_steps),
            eval_strategy="no", save_strategy="no", report_to="none", disable_tqdm=True,
            train_sampling_strategy="sequential", dataloader_num_workers=0, dataloader_pin_memory=False)
        trainer = Trainer(model=model, args=args, train_dataset=BlockDataset(blocks), callbacks=[clock])
        for cb in (PrinterCallback, ProgressCallback):  # no log printing (ours prints nothing either)
            trainer.remove_callback(cb)
        out = trainer.train()
        optim = type(trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else trainer.optimizer)
        fused = any(g.get("fused") for g in trainer.optimizer.param_groups)
    tokens = n * int(t.batch_size) * int(t.grad_accum) * blocks.shape[1]
    steps_s = clock.end - clock.begin
    steady_tokens = (n - int(t.log_steps)) * int(t.batch_size) * int(t.grad_accum) * blocks.shape[1]
    return {"tokens_per_s": tokens / steps_s, "steps_s": steps_s, "train_runtime_s": out.metrics["train_runtime"],
            "steady_tokens_per_s": steady_tokens / (clock.end - clock.steady_begin),
            "final_loss": clock.losses.get(n), "losses": clock.losses,
            "eval_loss": eval_loss(model, bundle, int(t.batch_size), int(t.eval_batches)),
            "optimizer": f"{optim.__module__}.{optim.__name__}{' (fused)' if fused else ''}"}


def eval_loss(model, bundle, batch_size: int, eval_batches: int) -> float:
    """Mean next-token NLL on the eval blocks our loop's final evaluation uses (monitor.py)."""
    blocks = torch.from_numpy(bundle.blocks("eval")[:batch_size * eval_batches].astype(np.int64))
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(blocks), batch_size):
            batch = blocks[i:i + batch_size]
            logits = model(input_ids=batch).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
                                                    reduction="sum")
            total, count = total + float(nll), count + batch[:, 1:].numel()
    return total / count


# --------------------------------------------------------------------------------------- main

def fmt_losses(losses: dict) -> str:
    return " ".join(f"{losses[k]:.3f}" for k in sorted(losses))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=80, help="optimizer steps per comparison run")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each (alternating)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads for every run")
    ap.add_argument("--skip-default", action="store_true", help="skip part 2 (the embedded default)")
    args = ap.parse_args()

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("WANDB_SILENT", "true")
    register_configs()
    torch.set_num_threads(args.threads)
    cache = default_cache_dir()

    steps = args.steps
    cfg = compose_cfg([f"train.max_steps={steps}", f"train.eval_steps={steps}", "train.save_steps=0",
                       "train.log_steps=10"], cache)
    t = cfg.train
    tokenizer = load_tokenizer(cfg.model, cache)
    bundle = load_bundle(run_data_stage(cfg, tokenizer, cache))  # untimed
    blocks_all = bundle.blocks("train")
    tokens_per_step = int(t.batch_size) * int(t.grad_accum) * blocks_all.shape[1]

    # Same seed, same initial weights (load_model seeds its own RNG): check it once.
    a, b = load_model(cfg.model, tokenizer, cache, seed=int(cfg.seed)), load_model(cfg.model, tokenizer, cache,
                                                                                  seed=int(cfg.seed))
    same_init = all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    n_params = sum(p.numel() for p in a.parameters())
    del a, b

    print(f"tiny OLMo ({n_params / 1e6:.2f}M params, vocab {len(tokenizer)}), fp32 CPU, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}")
    print(f"data: {bundle.folder.name}, {len(blocks_all)} train blocks of {blocks_all.shape[1]} tokens")
    print(f"per run: {steps} steps x batch {t.batch_size} x grad_accum {t.grad_accum} x {blocks_all.shape[1]} "
          f"tokens = {steps * tokens_per_step} tokens; lr {t.lr}, warmup {t.warmup_steps}, cosine to "
          f"{t.min_lr_ratio} x lr, wd {t.weight_decay}, clip {t.max_grad_norm}; same initial weights: {same_init}")

    order = ours_batch_order(cfg, bundle)
    warm = compose_cfg(["train.max_steps=5", "train.eval_steps=5", "train.save_steps=0", "train.log_steps=5"], cache)
    run_ours(warm, bundle, cache)  # untimed: first-use costs of the process (both paths)
    run_trainer(warm, bundle, tokenizer, cache, ours_batch_order(warm, bundle))

    ours, hf = [], []
    for i in range(args.repeats):
        ours.append(run_ours(cfg, bundle, cache))
        hf.append(run_trainer(cfg, bundle, tokenizer, cache, order))
        print(f"  run {i + 1}: ours {ours[-1]['tokens_per_s']:7.0f} tok/s ({ours[-1]['steps_s']:.2f} s of steps, "
              f"{ours[-1]['wall_s']:.2f} s wall)   Trainer {hf[-1]['tokens_per_s']:7.0f} tok/s "
              f"({hf[-1]['steps_s']:.2f} s of steps, train_runtime {hf[-1]['train_runtime_s']:.2f} s)", flush=True)

    med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    ours_tps, hf_tps = med(ours, "tokens_per_s"), med(hf, "tokens_per_s")
    ratio = ours_tps / hf_tps
    fixed = med(ours, "wall_s") - med(ours, "steps_s")
    print(f"ours    (run_train_stage, chunked LM-head loss, torch AdamW):  median {ours_tps:7.0f} tokens/s "
          f"({med(ours, 'steps_s'):.2f} s for {steps} steps; after the first 10 steps "
          f"{med(ours, 'steady_tokens_per_s'):.0f} tokens/s)")
    print(f"          not timed: fixed costs of the stage (set-up, model load, final eval, checkpoint, export) "
          f"{fixed:.2f} s")
    print(f"Trainer (transformers.Trainer, standard loss, {hf[0]['optimizer']}): median {hf_tps:7.0f} tokens/s "
          f"({med(hf, 'steps_s'):.2f} s for {steps} steps; after the first 10 steps "
          f"{med(hf, 'steady_tokens_per_s'):.0f} tokens/s; train_runtime {med(hf, 'train_runtime_s'):.2f} s)")
    print(f"ratio ours / Trainer (median tokens/s): {ratio:.3f}  target >= {RATIO_TARGET}: "
          f"{'OK' if ratio >= RATIO_TARGET else 'OVER'}")
    print(f"training loss every 10 steps (run 1)\n  ours   : {fmt_losses(ours[0]['losses'])}\n"
          f"  Trainer: {fmt_losses(hf[0]['losses'])}")
    print(f"final training loss (mean of the last 10 steps, median over runs): ours {med(ours, 'final_loss'):.4f}, "
          f"Trainer {med(hf, 'final_loss'):.4f}")
    print(f"held-out eval loss of the trained model ({int(t.batch_size) * int(t.eval_batches)} eval blocks): "
          f"ours {med(ours, 'eval_loss'):.4f}, Trainer {med(hf, 'eval_loss'):.4f}")

    if args.skip_default:
        return
    default = compose_cfg([], cache)
    run_data_stage(default, tokenizer, cache)  # untimed (the same data folder: train.* is not in its key)
    with tempfile.TemporaryDirectory(prefix="bench_train_default_") as tmp:
        start = time.perf_counter()
        summary = run_train_stage(default, load_bundle(run_data_stage(default, tokenizer, cache)), Path(tmp),
                                  Tracker(), cache)
        wall = time.perf_counter() - start
    steps_s = summary["tokens"] / summary["mean_tokens_per_s"]
    d = default.train
    print(f"embedded default train stage ({summary['steps']} steps of {d.batch_size} x "
          f"{blocks_all.shape[1]} tokens, eval every {d.eval_steps}): {wall:.1f} s wall  target <= "
          f"{DEFAULT_TARGET_S:.0f} s: {'OK' if wall <= DEFAULT_TARGET_S else 'OVER'}")
    print(f"  steps {steps_s:.1f} s ({summary['mean_tokens_per_s']:.0f} tokens/s), other (set-up, model load, "
          f"evals, checkpoint, export) {wall - steps_s:.1f} s; final loss {summary['final_loss']:.3f}, "
          f"eval loss {summary['eval_loss']:.3f}")


if __name__ == "__main__":
    main()
