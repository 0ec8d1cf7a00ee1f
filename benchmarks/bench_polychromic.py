"""Polychromic RL throughput (issue #13): samples/s and updates/s at lam = 0 and lam = 1, and
what the set-level advantage costs per update.

    .venv/bin/python benchmarks/bench_polychromic.py [--updates 4] [--modes lora,full] [--threads N]
                                                     [--model smollm2_135m] [overrides ...]

The sweep's own settings (experiment=polychromic_sweep, seed 0: SmolLM2-135M-Instruct after its
cached SFT warm start, g2, 4 prompts x 8 samples per update, two PPO epochs, KL to the start),
one PolychromicTrainer per mode (all weights as the sweep, or LoRA), and in that same run the
updates alternate lam = 0, lam = 1 (the same model state for both, give or take one update), so
machine load hits both alike. Printed per mode and lam: the median over updates of the update
time, samples/s (samples / update time) and updates/s, split into rollouts (sampling and
verification), advantage (the set objective) and optimisation (the PPO epochs).

The set-level advantage's share: the median advantage time at lam = 1 over the median update
time at lam = 0 (target <= 10%), and, measured alone on the same rewards and outputs (500
repeats each), set_advantages at lam = 1 against the plain group-relative advantage r - mean(r).
The warm start and the data stage run first if not cached (untimed).
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from metaexamples.config import register_configs
from metaexamples.methods.polychromic import Polychromic, PolychromicTrainer, warm_start
from metaexamples.evaluation.problems import output_key
from metaexamples.methods.set_objective import set_advantages
from metaexamples.models import load_tokenizer
from metaexamples.paths import cache_dir as default_cache_dir
from metaexamples.tasks import make_task

CONF = str(Path(__file__).resolve().parents[1] / "conf")
TARGET = 0.10


def compose_cfg(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=["experiment=polychromic_sweep", "+polychromic_arm=product_1",
                                                         "logger=none", *overrides])


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=4, help="timed updates per lam and mode")
    parser.add_argument("--modes", default="lora,full", help="lora, full, or both (comma-separated)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=tiny method.n_samples=16")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")

    cfg = compose_cfg(args.overrides)
    cache = default_cache_dir(cfg.paths)
    task = make_task(cfg, load_tokenizer(cfg.model, cache), cache)
    task.prepare_data()
    start_cfg = cfg
    if cfg.method.warmup_steps > 0:
        t0 = time.perf_counter()
        path, info = warm_start(cfg, task)
        print(f"warm start: {path} ({'reused' if info['reused'] else f'built in {time.perf_counter() - t0:.0f} s'})")
        start_cfg = copy.deepcopy(cfg)
        with open_dict(start_cfg):
            start_cfg.model.path = path
    Polychromic().check(cfg, task)
    m = cfg.method
    print(f"model {cfg.model.name}, task {task.run_name()}: {m.prompts_per_update} prompts x {m.n_samples} samples "
          f"per update, sets of {m.set_size}, {m.ppo_epochs} PPO epochs, minibatch {m.minibatch_size}")

    from metaexamples.methods.sft import load_trainable

    summary = []
    for mode in [x.strip() for x in args.modes.split(",") if x.strip()]:
        mode_cfg = copy.deepcopy(start_cfg)
        with open_dict(mode_cfg):
            mode_cfg.train.lora.enabled = mode == "lora"
            if mode == "full" and mode_cfg.method.lr is not None and mode_cfg.method.lr > 1e-4:
                mode_cfg.method.lr = 1e-5
        model, tokenizer = load_trainable(mode_cfg, task)
        trainer = PolychromicTrainer(mode_cfg, task, model, tokenizer)
        trainer.update(0, lam=1.0)  # untimed: first-use costs
        rows: dict[float, list[dict]] = {0.0: [], 1.0: []}
        for i in range(args.updates):
            for lam in (0.0, 1.0):
                rows[lam].append(trainer.update(1 + 2 * i + int(lam), lam=lam))
        print(f"\n[{mode}] median over {args.updates} updates per lam")
        print(f"{'lam':>4} {'update s':>9} {'samples/s':>10} {'updates/s':>10} {'rollout s':>10} {'advantage s':>12} "
              f"{'optimise s':>11} {'reward':>7} {'diversity':>9}")
        for lam, rs in rows.items():
            print(f"{lam:4.1f} {median(rs, 'train/update_s'):9.2f} "
                  f"{statistics.median(r['train/samples'] / r['train/update_s'] for r in rs):10.2f} "
                  f"{statistics.median(1 / r['train/update_s'] for r in rs):10.4f} "
                  f"{median(rs, 'train/rollout_s'):10.2f} "
                  f"{median(rs, 'train/advantage_s'):12.4f} {median(rs, 'train/optimize_s'):11.2f} "
                  f"{median(rs, 'train/reward'):7.3f} {median(rs, 'train/diversity'):9.3f}")
        share = median(rows[1.0], "train/advantage_s") / median(rows[0.0], "train/update_s")
        ratio = median(rows[1.0], "train/update_s") / median(rows[0.0], "train/update_s")
        print(f"set-level advantage: {100 * share:.3f}% of an update (target <= {100 * TARGET:.0f}%: "
              f"{'met' if share <= TARGET else 'NOT met'}); update time lam=1 / lam=0: {ratio:.3f} "
              "(includes rollout-length differences)")
        summary.append((mode, median(rows[0.0], "train/update_s"), median(rows[1.0], "train/update_s")))
        del trainer, model

    # the set objective alone, on rollout-shaped inputs
    rng = np.random.default_rng(0)
    P, n = int(m.prompts_per_update), int(m.n_samples)
    rewards = rng.integers(0, 2, (P, n)).astype(float)
    keys = [[output_key(list(rng.integers(0, 5, rng.integers(4, 9))), []) for _ in range(n)] for _ in range(P)]
    for diversity in ("distinct", "edit"):
        t0 = time.perf_counter()
        for _ in range(500):
            set_advantages(rewards, keys, s=int(m.set_size), lam=1.0, form="product", diversity=diversity)
        t_set = (time.perf_counter() - t0) / 500
        t0 = time.perf_counter()
        for _ in range(500):
            rewards - rewards.mean(axis=1, keepdims=True)
        t_grpo = (time.perf_counter() - t0) / 500
        print(f"set_advantages alone ({diversity}, {P} prompts x {n} samples, sets of {m.set_size}): "
              f"{1000 * t_set:.2f} ms vs {1000 * t_grpo:.4f} ms for r - mean(r)")
    for mode, u0, u1 in summary:
        print(f"{mode}: {1 / u0:.4f} updates/s at lam=0, {1 / u1:.4f} at lam=1")


if __name__ == "__main__":
    main()
