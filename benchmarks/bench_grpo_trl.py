"""Our lam = 0 update (method=polychromic, group-relative RL) against TRL's GRPOTrainer (issue #24):
samples per second, and the first update's advantages.

    .venv/bin/python benchmarks/bench_grpo_trl.py [--updates 3] [--threads 1] [overrides ...]

Both sides get the same: model (experiment=diversity_collapse's shared warm start of the tiny
model on its grammar and seed, built first if not cached, untimed), prompt (the grammar's
opening tag; TRL receives its decoded text and the benchmark checks it tokenizes back to the
same ids), reward function (the task's verifier on the completion's token ids), group size
(16 samples per prompt, 4 groups = 64 samples per update), completion length (the task's
max_new_tokens; TRL stops at the closing tag's last token, as our sampler stops at the tag),
sampling at temperature 1, two optimizer steps per update on one minibatch of 64 (our
ppo_epochs=2; TRL num_iterations=2, steps_per_generation=1), clip 0.2, KL 0.05 to the start,
the same learning rate, constant, on the CPU, in one process.

TRL's reward scaling is off (scale_rewards="none"), so its advantage is reward minus the group
mean, which is what lam = 0 computes: the first generation's rewards are recomputed through our
set_advantages and compared with TRL's advantages (max |difference| must be <= 1e-6).

Timing: our updates (PolychromicTrainer.update, rollouts + advantages + PPO steps), then TRL's
(one generation + two optimizer steps, from its step callbacks), then ours again, so a change of
machine load hits both; medians over updates, the first TRL update (its warm-up) left out.
Printed: samples/s each, the ratio ours / TRL, mean completion lengths (so unequal stopping
would show), and the advantage check. TRL is a benchmark dependency (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import copy
import logging
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
from metaexamples.methods.polychromic import PolychromicTrainer, warm_start
from metaexamples.evaluation.problems import output_key
from metaexamples.methods.set_objective import set_advantages
from metaexamples.models import load_tokenizer
from metaexamples.paths import cache_dir as default_cache_dir
from metaexamples.tasks import make_task

CONF = str(Path(__file__).resolve().parents[1] / "conf")
TOLERANCE = 1e-6


def compose_cfg(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=["experiment=diversity_collapse", "+diversity_arm=grpo",
                                                         "logger=none", *overrides])


def ours(cfg, task, updates: int, first_step: int) -> tuple[list[float], list[int]]:
    """(samples/s per update, completion lengths) of our lam = 0 updates."""
    from metaexamples.methods.sft import load_trainable

    model, tokenizer = load_trainable(cfg, task)
    trainer = PolychromicTrainer(cfg, task, model, tokenizer)
    rates, lengths = [], []
    for step in range(first_step, first_step + updates):
        row = trainer.update(step)
        rates.append(row["train/samples"] / row["train/update_s"])
        lengths += [len(r.tokens) for r, _ in trainer._last_rollouts]
    return rates, lengths


def trl_run(cfg, task, model_dir: str, updates: int, work: Path) -> dict:
    """TRL's GRPOTrainer on the same settings: samples/s per update, completion lengths, and the
    first generation's rewards, completion outputs and advantages."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    m = cfg.method
    groups, n = int(m.prompts_per_update), int(m.n_samples)
    problem = task.problems("train")[0]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    prompt_text = tokenizer.decode(problem.prompt_ids)
    assert tokenizer(prompt_text, add_special_tokens=False)["input_ids"] == list(problem.prompt_ids), \
        "the decoded prompt does not tokenize back to the same ids"
    spec = task.sampling(cfg.decoding)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.generation_config.eos_token_id = [int(spec.stop_ids[-1])]  # stop at the closing tag, as ours

    seen: dict = {"rewards": [], "keys": [], "lengths": []}

    def verifier_reward(prompts, completions, completion_ids, **kwargs) -> list[float]:
        ids = [list(map(int, c)) for c in completion_ids]
        verdicts = task.verify_many([problem] * len(ids), ids)
        seen["rewards"].append([v.reward for v in verdicts])
        seen["keys"].append([output_key(v.extracted, c) for v, c in zip(verdicts, ids)])
        seen["lengths"] += [len(c) for c in ids]
        return [float(v.reward) for v in verdicts]

    args = GRPOConfig(
        output_dir=str(work / "trl"), per_device_train_batch_size=groups * n, num_generations=n,
        steps_per_generation=1, num_iterations=int(m.ppo_epochs), max_completion_length=int(spec.max_new_tokens),
        temperature=float(cfg.decoding.temperature), top_p=1.0, top_k=0, beta=float(m.kl_coef),
        epsilon=float(m.clip_eps), learning_rate=float(m.lr or cfg.train.lr), lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=float(cfg.train.weight_decay), max_grad_norm=float(cfg.train.max_grad_norm),
        scale_rewards="none", loss_type="dapo", max_steps=int(m.ppo_epochs) * updates, use_cpu=True,
        report_to="none", logging_steps=1, save_strategy="no", seed=int(cfg.seed), dataloader_num_workers=0,
        gradient_accumulation_steps=1, bf16=False, disable_tqdm=True)
    data = Dataset.from_dict({"prompt": [prompt_text] * (groups * updates * 4)})
    trainer = GRPOTrainer(model=model, reward_funcs=verifier_reward, args=args, train_dataset=data,
                          processing_class=tokenizer)
    first: dict = {}
    generate = trainer._generate_and_score_completions

    def capture(inputs):
        out = generate(inputs)
        if not first:
            first["advantages"] = out["advantages"].detach().cpu().double().numpy().copy()
        return out

    trainer._generate_and_score_completions = capture
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t0)

    trainer.add_callback(Clock())
    trainer.train()
    per_update = [sum(times[i:i + int(m.ppo_epochs)]) for i in range(0, len(times), int(m.ppo_epochs))]
    return {"rates": [groups * n / t for t in per_update], "lengths": seen["lengths"],
            "rewards": np.array(seen["rewards"][0], dtype=np.float64), "keys": seen["keys"][0],
            "advantages": first["advantages"], "groups": groups, "n": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3, help="timed updates per side (and per block of ours)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (e.g. grammar=g3 seed=1)")
    a = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(a.threads)
    cfg = compose_cfg([f"train.num_threads={a.threads}", *a.overrides])
    cache = default_cache_dir(cfg.get("paths"))
    task = make_task(cfg, load_tokenizer(cfg.model, cache), cache)
    task.prepare_data()
    model_dir, _ = warm_start(cfg, task)
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.model = OmegaConf.merge(cfg.model, {"path": model_dir})
        cfg.method.lr = float(cfg.method.lr or cfg.train.lr)
        cfg.train.min_lr_ratio = 1.0
        cfg.train.warmup_steps = 0

    rates_a, len_a = ours(cfg, task, a.updates, 0)
    with tempfile.TemporaryDirectory() as tmp:
        trl = trl_run(cfg, task, model_dir, a.updates + 1, Path(tmp))
    rates_b, len_b = ours(cfg, task, a.updates, a.updates)
    our_rate = statistics.median(rates_a + rates_b)
    trl_rate = statistics.median(trl["rates"][1:])

    rewards = trl["rewards"].reshape(trl["groups"], trl["n"])
    keys = [trl["keys"][g * trl["n"]:(g + 1) * trl["n"]] for g in range(trl["groups"])]
    m = cfg.method
    mine = set_advantages(rewards, keys, s=int(m.set_size), lam=0.0, form=m.form, diversity=m.diversity,
                          max_sets=int(m.max_sets)).advantage
    gap = float(np.abs(mine - trl["advantages"]).max())
    print(f"model {cfg.model.name} (warm start {model_dir}), grammar {cfg.grammar.name}, seed {cfg.seed}, "
          f"{a.threads} thread(s); {trl['groups']} groups x {trl['n']} samples per update, "
          f"max {task.sampling(cfg.decoding).max_new_tokens} new tokens")
    print(f"ours  lam=0 : {our_rate:.2f} samples/s (median of {len(rates_a + rates_b)} updates: "
          f"{', '.join(f'{r:.2f}' for r in rates_a + rates_b)}); mean completion {np.mean(len_a + len_b):.1f} tokens")
    print(f"TRL GRPO    : {trl_rate:.2f} samples/s (median of {len(trl['rates']) - 1} updates after the first: "
          f"{', '.join(f'{r:.2f}' for r in trl['rates'])}); mean completion {np.mean(trl['lengths']):.1f} tokens")
    print(f"ratio ours / TRL: {our_rate / trl_rate:.2f}x (target >= 1)")
    print(f"first update: {len(mine)} advantages, rewards mean {rewards.mean():.3f}, nonzero advantages "
          f"{int((np.abs(trl['advantages']) > 0).sum())}; max |ours - TRL| = {gap:.2e} "
          f"({'equal' if gap <= TOLERANCE else 'NOT equal'} within {TOLERANCE:g})")


if __name__ == "__main__":
    main()
