"""Training benchmark (issue #3): our loop against Hugging Face's Trainer, and the embedded default.

    .venv/bin/python benchmarks/bench_train.py [--steps 60] [--repeats 3] [--threads N]

1. Speed against `transformers.Trainer`. The `tiny` model (OLMo from scratch on the real
   offline SmolLM2 tokenizer, loaded with metaexamples.models.load_model, same seed so the same
   initial weights) is trained on the data stage's packed train blocks by
   - ours: method=sft on the grammar task, the real stage (accelerate, chunked fused
     LM-head + cross-entropy, its own AdamW and warmup-cosine schedule), and
   - Trainer: `transformers.Trainer` with the model's standard loss (full logits), its default
     AdamW implementation (fused on torch >= 2.8) with the same betas, eps, weight decay and
     grad clipping, and its `cosine_with_min_lr` schedule (same warmup steps, peak lr and floor;
     Trainer's warmup starts at lr 0 where ours starts at lr/(warmup+1), identical after warmup).
   Same batch size, block size, steps, thread count, fp32 on CPU, and the same batches in the
   same order: Trainer reads, sequentially, exactly the blocks our loop draws for each step.

   What is timed: only the optimisation steps, first step to last step, for both. Both log
   every step (ours: train.log_steps=1; Trainer: logging_steps=1), which gives one time per step.
   - ours: the stage's own figures: `mean_tokens_per_s` of its summary (its log windows,
     from just before the first step to the end of the last; evaluation and checkpoint saving
     are outside the windows) and `train/tokens_per_s` of each step's metrics row. Accelerate
     set-up, model loading, the final evaluation, the final checkpoint and the model export are
     not counted (shown as fixed costs).
   - Trainer: a callback: step k takes from on_step_end of step k-1 (on_step_begin for step 1)
     to on_step_end of step k. Model loading, Trainer construction and dataloader and optimizer
     set-up are not counted.
   No in-training evaluation (ours: train.eval_steps = steps, so it evaluates only after the
   last step, outside the timed windows; Trainer: eval_strategy=no) and no intermediate
   checkpoint (ours: train.save_steps=0, the final one is outside the timed windows; Trainer:
   save_strategy=no). Trainer's log printing is off; our tqdm bar stays (it is part of our loop).
   Runs alternate ours / Trainer `--repeats` times after one short untimed warm-up run of each
   (first-use costs of the process). Printed: the median over runs (target: ours / Trainer
   >= 0.95), the best run, and the rate at the median step time with all runs' steps pooled.
   On a shared machine the last two resist bursts of load from other processes; a warning is
   printed when runs of the same loop differ by more than 30%.
   The step-1 loss of both (the same weights and batch: equal), the training loss every 10
   steps, the final one, and the loss of each trained model on the same held-out eval blocks
   are printed, so one can see they learned the same.

2. The embedded default: the default config (Hydra compose over conf/, no overrides but the
   cache folder and logger=none), the train stage once; its wall time (what the pipeline
   reports as the train stage time, `time/train_s`). Target <= 90 s on the 2-core dev machine.

The data stage runs first, untimed (cached under $METAEXAMPLES_CACHE or paths.cache_dir).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from metaexamples.config import register_configs
from metaexamples.tasks.grammar.build import run_data_stage
from metaexamples.tasks.grammar.bundle import load_bundle
from metaexamples.io import read_jsonl
from metaexamples.models import load_model, load_tokenizer
from metaexamples.paths import cache_dir as default_cache_dir
from metaexamples.tracking import Tracker
from metaexamples.methods import make_method
from metaexamples.tasks.grammar import GrammarTask
from metaexamples.training import BlockBatches

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
    """The train stage (method=sft) in a fresh run folder. Step times from its own metrics (train.log_steps=1:
    one train/tokens_per_s row per step, each timing that step alone)."""
    with tempfile.TemporaryDirectory(prefix="bench_train_ours_") as tmp:
        start = time.perf_counter()
        summary = make_method("sft").train(cfg, GrammarTask(cfg, None, cache, bundle=bundle), Path(tmp), Tracker())
        wall = time.perf_counter() - start
        rows = [r for r in read_jsonl(Path(tmp) / "train" / "metrics.jsonl") if "train/loss" in r]
    assert [r["step"] for r in rows] == list(range(1, int(cfg.train.max_steps) + 1)), "train.log_steps must be 1"
    tokens_per_step = int(cfg.train.batch_size) * int(cfg.train.grad_accum) * bundle.blocks("train").shape[1]
    return {"tokens_per_s": summary["mean_tokens_per_s"], "steps_s": summary["tokens"] / summary["mean_tokens_per_s"],
            "step_s": [tokens_per_step / r["train/tokens_per_s"] for r in rows], "wall_s": wall,
            "losses": [r["train/loss"] for r in rows], "eval_loss": summary["eval_loss"]}


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
        """Step k's time: end of step k - end of step k-1 (step 1: from its on_step_begin)."""

        def __init__(self) -> None:
            self.marks: list[float] = []
            self.losses: dict[int, float] = {}

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 0:
                self.marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append(time.perf_counter())

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
        for cb in (PrinterCallback, ProgressCallback):  # no log dicts printed on stdout
            trainer.remove_callback(cb)
        out = trainer.train()
        optim = type(trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else trainer.optimizer)
        fused = any(g.get("fused") for g in trainer.optimizer.param_groups)
    tokens = n * int(t.batch_size) * int(t.grad_accum) * blocks.shape[1]
    assert len(clock.marks) == n + 1 and sorted(clock.losses) == list(range(1, n + 1)), "logging_steps must be 1"
    steps_s = clock.marks[-1] - clock.marks[0]
    return {"tokens_per_s": tokens / steps_s, "steps_s": steps_s, "train_runtime_s": out.metrics["train_runtime"],
            "step_s": [b - a for a, b in zip(clock.marks, clock.marks[1:])],
            "losses": [clock.losses[k] for k in range(1, n + 1)],
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

def windows(losses: list[float], size: int = 10) -> list[float]:
    """Mean loss over each window of `size` steps (what a log every `size` steps shows)."""
    return [statistics.fmean(losses[i:i + size]) for i in range(0, len(losses), size)]


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps per comparison run")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each (alternating)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads for every run")
    ap.add_argument("--skip-default", action="store_true", help="skip part 2 (the embedded default)")
    args = ap.parse_args()
    began = time.perf_counter()

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    register_configs()
    torch.set_num_threads(args.threads)
    cache = default_cache_dir()
    print(f"load average (1/5/15 min) at start: {load()}")

    steps = args.steps
    # log_steps=1: one timed row per step; eval only after the last step, no intermediate checkpoint.
    cfg = compose_cfg([f"train.max_steps={steps}", f"train.eval_steps={steps}", "train.save_steps=0",
                       "train.log_steps=1"], cache)
    t = cfg.train
    tokenizer = load_tokenizer(cfg.model, cache)
    bundle = load_bundle(run_data_stage(cfg, tokenizer, cache))  # untimed
    block = bundle.blocks("train").shape[1]
    tokens_per_step = int(t.batch_size) * int(t.grad_accum) * block

    # Same seed, same initial weights (load_model seeds its own RNG): checked once.
    a, b = (load_model(cfg.model, tokenizer, cache, seed=int(cfg.seed)) for _ in range(2))
    same_init = all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    n_params = sum(p.numel() for p in a.parameters())
    del a, b

    print(f"tiny OLMo ({n_params / 1e6:.2f}M params, vocab {len(tokenizer)}), fp32 CPU, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}, transformers {transformers_version()}")
    print(f"data: {bundle.folder.name}, {len(bundle.blocks('train'))} train blocks of {block} tokens")
    print(f"per run: {steps} steps x batch {t.batch_size} x grad_accum {t.grad_accum} x {block} tokens = "
          f"{steps * tokens_per_step} tokens; lr {t.lr}, warmup {t.warmup_steps}, cosine to {t.min_lr_ratio} x lr, "
          f"wd {t.weight_decay}, clip {t.max_grad_norm}; same batches in the same order; same initial weights: "
          f"{same_init}")

    order = ours_batch_order(cfg, bundle)
    warm = compose_cfg(["train.max_steps=5", "train.eval_steps=5", "train.save_steps=0", "train.log_steps=1"], cache)
    run_ours(warm, bundle, cache)  # untimed: first-use costs of the process, for both
    run_trainer(warm, bundle, tokenizer, cache, ours_batch_order(warm, bundle))

    ours, hf = [], []
    for i in range(args.repeats):
        ours.append(run_ours(cfg, bundle, cache))
        hf.append(run_trainer(cfg, bundle, tokenizer, cache, order))
        o, h = ours[-1], hf[-1]
        print(f"  run {i + 1}: ours {o['tokens_per_s']:6.0f} tok/s ({o['steps_s']:.2f} s of steps, "
              f"median step {1000 * statistics.median(o['step_s']):.0f} ms; stage wall {o['wall_s']:.2f} s)   "
              f"Trainer {h['tokens_per_s']:6.0f} tok/s ({h['steps_s']:.2f} s of steps, median step "
              f"{1000 * statistics.median(h['step_s']):.0f} ms; train_runtime {h['train_runtime_s']:.2f} s)",
              flush=True)

    med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    step_tps = lambda runs: tokens_per_step / statistics.median(s for r in runs for s in r["step_s"])  # noqa: E731
    print(f"ours    = method=sft (chunked LM-head + CE, torch AdamW, default implementation: for-loop on CPU)\n"
          f"Trainer = transformers.Trainer (the model's standard loss, {hf[0]['optimizer']})")
    print("tokens/s (steps only)                        ours  Trainer  ours/Trainer")
    lines = [(f"median of {args.repeats} runs, all {steps} steps", med(ours, "tokens_per_s"), med(hf, "tokens_per_s")),
             ("best run", max(r["tokens_per_s"] for r in ours), max(r["tokens_per_s"] for r in hf)),
             ("at the median step time, all runs pooled", step_tps(ours), step_tps(hf))]
    for i, (name, o, h) in enumerate(lines):
        verdict = f"  target >= {RATIO_TARGET}: {'OK' if o / h >= RATIO_TARGET else 'OVER'}" if i == 0 else ""
        print(f"  {name:41s} {o:6.0f}  {h:7.0f}  {o / h:12.3f}{verdict}")
    spread = max(max(r["tokens_per_s"] for r in x) / min(r["tokens_per_s"] for r in x) for x in (ours, hf))
    if spread > 1.3:
        print(f"  warning: runs of the same loop differ by up to {spread:.1f}x: other processes competed for the CPU; "
              f"the best run is the closest to the loops' own speed (rerun on a quiet machine)")
    print(f"not timed, ours: fixed costs of the stage (accelerate set-up, model load, final eval, final checkpoint, "
          f"model export) {med(ours, 'wall_s') - med(ours, 'steps_s'):.2f} s (median)")
    print(f"step-1 loss (same initial weights, same first batch): ours {ours[0]['losses'][0]:.5f}, "
          f"Trainer {hf[0]['losses'][0]:.5f}")
    print("training loss, mean of each 10 steps (run 1; Trainer's warmup starts at lr 0, ours at lr/(warmup+1)):")
    print("  ours   : " + " ".join(f"{x:.3f}" for x in windows(ours[0]["losses"])))
    print("  Trainer: " + " ".join(f"{x:.3f}" for x in windows(hf[0]["losses"])))
    final = lambda runs: statistics.median(statistics.fmean(r["losses"][-10:]) for r in runs)  # noqa: E731
    print(f"final training loss (mean of the last 10 steps, median of runs): ours {final(ours):.4f}, "
          f"Trainer {final(hf):.4f}")
    print(f"held-out loss of the trained model ({int(t.batch_size) * int(t.eval_batches)} eval blocks): "
          f"ours {med(ours, 'eval_loss'):.4f}, Trainer {med(hf, 'eval_loss'):.4f}")
    print(f"load average at the end of part 1: {load()}", flush=True)

    if not args.skip_default:
        embedded_default(tokenizer, cache, block)
    print(f"benchmark wall time: {time.perf_counter() - began:.0f} s")


def embedded_default(tokenizer, cache: Path, block: int) -> None:
    default = compose_cfg([], cache)
    # Untimed; the same data folder as part 1 (train.* is not part of the data key).
    default_bundle = load_bundle(run_data_stage(default, tokenizer, cache))
    with tempfile.TemporaryDirectory(prefix="bench_train_default_") as tmp:
        start = time.perf_counter()
        task = GrammarTask(default, None, cache, bundle=default_bundle)
        summary = make_method("sft").train(default, task, Path(tmp), Tracker())
        wall = time.perf_counter() - start
    steps_s = summary["tokens"] / summary["mean_tokens_per_s"]
    d = default.train
    print(f"embedded default, train stage ({summary['steps']} steps of {d.batch_size} x {block} tokens, eval every "
          f"{d.eval_steps} steps, final checkpoint and export): {wall:.1f} s wall  target <= {DEFAULT_TARGET_S:.0f} s: "
          f"{'OK' if wall <= DEFAULT_TARGET_S else 'OVER'}")
    print(f"  of which steps {steps_s:.1f} s ({summary['mean_tokens_per_s']:.0f} tokens/s), the rest (set-up, model "
          f"load, evaluations, checkpoint, export) {wall - steps_s:.1f} s; final loss {summary['final_loss']:.3f}, "
          f"eval loss {summary['eval_loss']:.3f}; load average {load()}")


def transformers_version() -> str:
    import transformers

    return transformers.__version__


if __name__ == "__main__":
    main()
