"""method=polychromic: on-policy RL on the task's verifier whose objective scores *sets* of
samples (mean reward x diversity), with one set-level advantage per sample.

Why not `loss = quality_loss - lam * diversity(decoded texts)`: that diversity is a number with
no gradient, so the bonus shifts the loss value and changes no weight. Here diversity enters
the *advantages* that weight each sample's log-probability gradient, so it acts on the weights
(tests/methods/test_polychromic.py checks the gradients differ).

One update (train.max_steps of them), read top to bottom in `PolychromicTrainer.update`:
1. rollouts: `method.prompts_per_update` training problems, `method.n_samples` (n) completions
   each from the current policy (evaluation/rollout, the one sampler, decoding group settings),
   each scored by the task's verifier (reward in [0, 1]);
2. advantages (methods/set_objective): sets of size `method.set_size` (s) from each prompt's n
   samples, each scored f(S) = R(S) * D(S)^lam (`method.form=product`) or
   R(S) + lam * D(S) (`additive`), D = `method.diversity` (distinct | edit); a sample's
   advantage is the mean score of the sets that contain it minus the mean over the prompt's
   sets (rescaled so that lam = 0 is exactly reward minus the group mean, as GRPO);
3. `method.ppo_epochs` passes over the rollouts in minibatches of `method.minibatch_size`
   sequences, each an optimizer step on the clipped policy-gradient loss plus a KL penalty to
   the starting model, averaged over the minibatch's completion tokens:
       ratio = exp(logp - logp_old)       (logp_old: the policy that sampled, before the update)
       pg    = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)       eps = method.clip_eps
       kl    = exp(logp_ref - logp) - (logp_ref - logp) - 1  (k3: unbiased, >= 0) x method.kl_coef
   (logp_ref: the starting model: LoRA adapters disabled, or a frozen copy when training all
   weights). Every forward runs with dropout off, so the ratio is exactly 1 at a fresh batch.
4. one row to run_dir/train/metrics.jsonl and W&B: train/reward, train/diversity,
   train/set_score, train/kl, train/entropy, train/clip_frac, train/loss, train/lr, and timings.

The optimizer (AdamW), the warmup-cosine schedule (stepped once per update), accelerate,
LoRA, checkpoints (train.save_steps; resume with train.resume) and the final export to
run_dir/model/ (plain HF, LoRA merged) are the SFT loop's own helpers (training/).

Starting point: `model.*` (e.g. model.path= an SFT checkpoint), or with `method.warmup_steps` > 0
a short SFT run on the task's sft_data() first, cached under the cache folder by its settings,
so the jobs of a sweep share one warm start (`warm_start`).
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from metaexamples.data.cache import build_once, cached_sha256, keyed_folder
from metaexamples.errors import ConfigError, check_key
from metaexamples.evaluation.problems import output_key
from metaexamples.evaluation.rollout import novel_flags, rollout_rows, rollouts
from metaexamples.evaluation.sets import strip_completion
from metaexamples.evaluation.trained_on import TRAINED_ON
from metaexamples.io import append_jsonl, read_json, read_jsonl, write_json, write_jsonl
from metaexamples.methods import Method
from metaexamples.methods.curriculum import Curriculum, CurriculumConfig, check_curriculum
from metaexamples.methods.polychromic_report import JOB_COLUMNS, comparison_report
from metaexamples.methods.set_objective import DIVERSITIES, FORMS, set_advantages
from metaexamples.methods.sft import SFT, load_trainable
from metaexamples.models.head import plain_linear_head
from metaexamples.schemas import result_config
from metaexamples.tasks import ReportTable
from metaexamples.tracking import Tracker, flatten
from metaexamples.training import Progress, TrainingRun, run_fingerprint

log = logging.getLogger(__name__)


@dataclass
class PolychromicConfig(CurriculumConfig):  # method.curriculum* (methods/curriculum.py)
    lam: float = 1.0  # weight of the diversity term; 0 = plain group-relative RL
    form: str = "product"  # product: R * D^lam | additive: R + lam * D (set_objective.set_score)
    diversity: str = "distinct"  # distinct | edit (methods/set_objective.py)
    n_samples: int = 8  # n: samples per prompt per update (>= 4)
    set_size: int = 4  # s: samples per set, 2 <= s < n
    max_sets: int = 2000  # all C(n, s) sets up to this many, else this many sampled
    prompts_per_update: int = 4
    ppo_epochs: int = 2  # passes over each update's rollouts
    minibatch_size: int = 16  # sequences per optimizer step
    clip_eps: float = 0.2
    kl_coef: float = 0.05
    lr: Optional[float] = None  # null = train.lr
    rollout_batch_size: int = 64  # sampler batch
    # warm start: SFT steps on the task's sft_data() before RL (0 = start from model.*), cached
    warmup_steps: int = 0
    warmup_lr: float = 1e-4
    warmup_batch_size: int = 4
    warmup_seed: int = 0  # the warm start's own seed: sweep jobs of every seed share it
    budget: Optional[int] = None  # sampled completions the run must use (updates x prompts x n); null = unchecked


ROLLOUT_COLUMNS = ("update", "slot", "id", "sample", "text", "verdict", "reward", "advantage")


# --- the policy's log-probabilities -----------------------------------------------------------------
class Policy(nn.Module):
    """Wraps a causal LM (as `.model`, what checkpoint export expects): forward(batch) ->
    (log p of each completion token, the entropy of its distribution), flat over the batch's
    completion tokens. The output layer runs on completion positions only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._no_split_modules = getattr(model, "_no_split_modules", None)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        decoder, weight = plain_linear_head(self.model)
        if decoder is not None:
            hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            logits = (hidden[rows, cols] @ weight.t()).float()
        else:
            logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits[rows, cols].float()
        logp_all = torch.log_softmax(logits, dim=-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        return logp_all.gather(1, targets[:, None]).squeeze(1), entropy.detach()


@dataclass
class Batch:
    """Rollouts as tensors: right-padded prompt+completion rows; the completion tokens flat
    (row, position that predicts it, token), and the sample each token belongs to."""

    ids: torch.Tensor
    mask: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    targets: torch.Tensor

    @staticmethod
    def build(seqs: list[tuple[list[int], list[int]]], pad: int, device) -> "Batch":
        width = max(len(p) + len(c) for p, c in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        rows, cols, targets = [], [], []
        for i, (p, c) in enumerate(seqs):
            ids[i, :len(p) + len(c)] = torch.tensor(list(p) + list(c), dtype=torch.long)
            mask[i, :len(p) + len(c)] = 1
            rows += [i] * len(c)
            cols += range(len(p) - 1, len(p) + len(c) - 1)
            targets += list(c)
        t = lambda x: torch.tensor(x, dtype=torch.long, device=device)  # noqa: E731
        return Batch(ids.to(device), mask.to(device), t(rows), t(cols), t(targets))

    def args(self) -> tuple:
        return self.ids, self.mask, self.rows, self.cols, self.targets


def clipped_pg_loss(logp: torch.Tensor, old: torch.Tensor, ref: torch.Tensor | None, adv: torch.Tensor,
                    clip_eps: float, kl_coef: float) -> tuple[torch.Tensor, dict]:
    """The per-token loss (flat tensors over completion tokens; `adv` per token), averaged over
    the tokens: PPO's clipped policy gradient + kl_coef * k3 KL to the reference."""
    ratio = torch.exp(logp - old)
    pg = -torch.minimum(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)
    if ref is not None and kl_coef > 0:
        d = ref - logp
        kl = torch.exp(d) - d - 1
    else:
        kl = torch.zeros_like(logp)
    loss = (pg + kl_coef * kl).mean()
    stats = {"kl": kl.detach().mean(), "clip_frac": ((ratio.detach() - 1).abs() > clip_eps).float().mean()}
    return loss, stats


# --- the warm start -----------------------------------------------------------------------------------
WARM_MIN_LR_RATIO = 0.1


def warm_start(cfg, task) -> tuple[str, dict]:
    """(folder of the warm model, summary): method.warmup_steps SFT steps on task.sft_data()
    with the SFT loop itself (all weights, whatever train.lora says for RL; the final loss and
    the task's monitor as SFT logs them, not to W&B), cached under
    <cache>/data/polychromic-warmup-<hash of the model, the task's data and the warmup settings>,
    so every sweep job with the same settings reuses it (the grammar task's data, and so the
    warm start, depend on the seed)."""
    from omegaconf import OmegaConf

    m = cfg.method
    # The warm start's schedule is its own (10% warmup, cosine to WARM_MIN_LR_RATIO), so methods
    # whose own train.* schedules differ (expert iteration, polychromic) share one start; what
    # else of train.* changes its result is in the key.
    key = {"model": OmegaConf.to_container(cfg.model, resolve=True), "data": task.data_summary(),
           "steps": int(m.warmup_steps), "lr": float(m.warmup_lr), "batch_size": int(m.warmup_batch_size),
           "seed": int(m.warmup_seed), "min_lr_ratio": WARM_MIN_LR_RATIO,
           "train": {k: cfg.train[k] for k in ("weight_decay", "max_grad_norm", "precision")}}
    folder = keyed_folder(task.cache, "polychromic-warmup", key)
    built = {"now": False}

    def build(tmp: Path) -> None:
        warm = copy.deepcopy(cfg)
        warm.train = OmegaConf.merge(cfg.train, {
            "max_steps": int(m.warmup_steps), "lr": float(m.warmup_lr), "batch_size": int(m.warmup_batch_size),
            "grad_accum": 1, "save_steps": 0, "resume": False, "warmup_steps": max(1, int(m.warmup_steps) // 10),
            "eval_steps": int(m.warmup_steps), "lora": {"enabled": False}, "min_lr_ratio": WARM_MIN_LR_RATIO})
        warm.seed = int(m.warmup_seed)
        log.info("polychromic: warm start, %d SFT steps -> %s", m.warmup_steps, folder)
        summary = SFT().train(warm, task, tmp, Tracker())
        shutil.rmtree(tmp / "checkpoints", ignore_errors=True)  # the optimizer state is not needed
        files = {f"model/{p.name}": cached_sha256(p, p.stat())
                 for p in sorted((tmp / "model").iterdir()) if p.is_file()}
        write_json(tmp / "manifest.json", {"key": key, "train": summary, "files": files})
        built["now"] = True

    build_once(folder, build)
    summary = read_json(folder / "manifest.json")["train"]
    return str(folder / "model"), {"folder": str(folder), "steps": summary.get("steps"),
                                   "final_loss": summary.get("final_loss"), "reused": not built["now"]}


# --- the method ------------------------------------------------------------------------------------------

class Polychromic(Method):
    name = "polychromic"
    needs_verifier = True
    config_schema = PolychromicConfig

    @classmethod
    def check_config(cls, cfg, task_cls) -> None:
        """Before any stage: every setting `check` tests is decided by the config alone, and an
        equal-budget arm samples what it says."""
        super().check_config(cfg, task_cls)
        cls().check(cfg, task_cls)
        _check_warm_start(cfg.method)
        cls.check_budget(cfg)

    @staticmethod
    def check_budget(cfg) -> None:
        """method.budget (sampled completions) must be what the settings sample: an arm of an
        equal-budget comparison that samples more or fewer is refused before any stage runs."""
        m = cfg.method
        if m.budget is not None:
            used = int(cfg.train.max_steps) * int(m.prompts_per_update) * int(m.n_samples)
            check_key(used == int(m.budget), "method.budget",
                      f"polychromic samples {cfg.train.max_steps} updates (train.max_steps) x {m.prompts_per_update} "
                      f"prompts x {m.n_samples} = {used} completions, not the budget {m.budget}")

    def check(self, cfg, task) -> None:
        super().check(cfg, task)
        check_curriculum(cfg)
        m = cfg.method
        check_key(m.lam >= 0, "method.lam", f"must be >= 0, got {m.lam}")
        check_key(m.form in FORMS, "method.form", f"unknown {m.form!r}; available: {', '.join(FORMS)}")
        check_key(m.diversity in DIVERSITIES, "method.diversity",
                  f"unknown {m.diversity!r}; available: {', '.join(DIVERSITIES)}")
        check_key(m.set_size >= 2, "method.set_size", f"must be >= 2 (a set of one has no diversity), got {m.set_size}")
        check_key(m.n_samples > m.set_size, "method.n_samples",
                  f"n ({m.n_samples}) must be larger than method.set_size ({m.set_size}): with n <= s no sample "
                  "has a set credit of its own")
        check_key(m.n_samples >= 4, "method.n_samples", f"must be >= 4, got {m.n_samples}")
        for key in ("prompts_per_update", "ppo_epochs", "minibatch_size", "rollout_batch_size", "max_sets"):
            check_key(m[key] > 0, f"method.{key}", f"must be positive, got {m[key]}")
        check_key(m.clip_eps > 0, "method.clip_eps", f"must be positive, got {m.clip_eps}")
        check_key(m.kl_coef >= 0, "method.kl_coef", f"must be >= 0, got {m.kl_coef}")
        check_key(m.lr is None or m.lr > 0, "method.lr", f"must be positive, got {m.lr}")
        check_key(m.warmup_steps >= 0, "method.warmup_steps", f"must be >= 0, got {m.warmup_steps}")
        self.check_budget(cfg)

    def train(self, cfg, task, run_dir: Path, tracker) -> dict:
        from omegaconf import OmegaConf, open_dict

        self.check(cfg, task)
        warmup = None
        job_cfg = cfg  # what decides the result, stored in checkpoints (the warm start is a function of it)
        if cfg.method.warmup_steps > 0:
            path, warmup = warm_start(cfg, task)
            cfg = copy.deepcopy(cfg)
            with open_dict(cfg):
                cfg.model = OmegaConf.merge(cfg.model, {"path": path})
        model, tokenizer = load_trainable(cfg, task)
        trainer = PolychromicTrainer(cfg, task, model, tokenizer, job_cfg=job_cfg)
        summary = trainer.run(Path(run_dir), tracker)
        return {**summary, "warmup": warmup}

    @classmethod
    def report_tables(cls) -> list:
        return [ReportTable("Polychromic RL: eval_sets per job (mean [95% bootstrap interval over prompts])",
                            "sets", JOB_COLUMNS)]

    @classmethod
    def report_plots(cls, rows: list[dict], out_dir: Path) -> list[str]:
        """The comparison against lam = 0 (polychromic_comparison.md/.json/.png) and pass@k
        against k per arm (polychromic_pass_at_k.png)."""
        return comparison_report(rows, Path(out_dir))  # methods/polychromic_report.py


class SampleProgress(Progress):
    """The scaffold's update counter and the completions sampled so far (saved with each checkpoint)."""

    def __init__(self) -> None:
        super().__init__()
        self.samples = 0

    def state_dict(self) -> dict:
        return {**super().state_dict(), "samples": self.samples}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.samples = int(state["samples"])


# the figures of the progress bar and lines
HEADLINE = (("reward", "train/reward", ".3f"), ("diversity", "train/diversity", ".3f"), ("kl", "train/kl", ".4f"),
            ("s/update", "train/update_s", ".1f"))
ROLLOUTS = "train/rollouts.jsonl"


class PolychromicTrainer:
    """The RL loop (one instance per run) on the training scaffold (training/scaffold.py):
    `update(step)` is one scaffold step (a rollout batch and its optimizer steps); `run` drives
    it with the scaffold's resume, logging, checkpoints and final export."""

    def __init__(self, cfg, task, model, tokenizer, job_cfg=None) -> None:
        from peft import PeftModel

        self.cfg, self.task, self.tokenizer = cfg, task, tokenizer
        self.m, t = cfg.method, cfg.train
        # one optimizer step per minibatch: no accelerate-side gradient accumulation
        self.scaffold = TrainingRun(t, tokenizer, name="polychromic", unit="update", grad_accum=1)
        self.accelerator = self.scaffold.accelerator
        self.lora = isinstance(model, PeftModel)
        # the KL reference: the starting weights (LoRA: the same model with adapters off)
        self.reference = None
        if self.m.kl_coef > 0 and not self.lora:
            self.reference = Policy(copy.deepcopy(model)).eval().requires_grad_(False).to(self.accelerator.device)
        lr = float(self.m.lr if self.m.lr is not None else t.lr)
        # dropout off throughout
        self.policy = self.scaffold.prepare(Policy(model).eval(), lr, int(t.max_steps), SampleProgress())
        self.progress = self.scaffold.progress
        self.fingerprint = _fingerprint(job_cfg if job_cfg is not None else cfg, self.accelerator.num_processes)
        self.curriculum = Curriculum(cfg, task)  # off: every training problem, as ever
        if self.curriculum.enabled:
            self.scaffold.also_checkpoint(self.curriculum)
        self.problems = task.problems("train")
        if not self.problems:
            raise ConfigError(f"task={task.name}: no training problems to sample from")
        eos = tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        self.stop = list(task.sampling(cfg.decoding).stop_ids)
        self._last_rollouts: list = []  # (rollout, advantage) of the last update
        self.rewarded: list = []  # outputs of every sample rewarded so far (novelty counts them as known)
        self._last_novel: list = []

    @property
    def model(self):
        return self.accelerator.unwrap_model(self.policy).model

    def batch_problems(self, step: int) -> list:
        """This rank's share of update `step`'s prompts: a seeded permutation per pass over the
        training problems, read in order."""
        acc, per = self.accelerator, int(self.m.prompts_per_update)
        pool = self.curriculum.pool(self.problems)
        n = len(pool)
        first = step * per
        picked = []
        for p in range(first, first + per):
            epoch, offset = divmod(p, n)
            order = np.random.default_rng([int(self.cfg.seed), epoch]).permutation(n)
            picked.append(pool[order[offset]])
        return picked[acc.process_index::acc.num_processes]

    def _logps(self, policy, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            return policy(*batch.args())[0]

    def update(self, step: int, lam: float | None = None) -> dict:
        """One update: rollouts, set advantages, ppo_epochs x minibatch optimizer steps."""
        m, acc = self.m, self.accelerator
        lam = float(m.lam) if lam is None else lam
        n = int(m.n_samples)
        t0 = time.perf_counter()
        problems = self.batch_problems(step)
        done = rollouts(self.model, self.tokenizer, self.task, problems, n, self.cfg.decoding,
                        seed=int(self.cfg.seed) * 1_000_003 + step, batch_size=int(m.rollout_batch_size))
        t1 = time.perf_counter()
        rewards = np.array([r.verdict.reward for r in done], dtype=np.float64).reshape(len(problems), n)
        keys = [[output_key(r.verdict.extracted, self.strip(r.tokens)) for r in done[p * n:(p + 1) * n]]
                for p in range(len(problems))]
        adv = set_advantages(rewards, keys, s=int(m.set_size), lam=lam, form=m.form, diversity=m.diversity,
                             max_sets=int(m.max_sets), seed=int(self.cfg.seed) * 1_000_003 + step)
        t2 = time.perf_counter()

        batch = Batch.build([(r.problem.prompt_ids, r.tokens) for r in done], self.pad, acc.device)
        token_adv = torch.tensor(adv.advantage, dtype=torch.float32, device=acc.device)[batch.rows]
        n_mb = math.ceil(len(done) / int(m.minibatch_size))
        # logp_old: the sampling policy. With one minibatch its first forward pass is that policy
        # (nothing has been updated yet), so no extra pass is needed.
        old = self._logps(self.policy, batch) if n_mb > 1 else None
        ref = None
        if m.kl_coef > 0:
            if self.lora:
                with self.model.disable_adapter():
                    ref = self._logps(self.policy, batch)
            else:
                ref = self._logps(self.reference, batch)
        rng = np.random.default_rng([int(self.cfg.seed), step, 7])
        sums = {"loss": 0.0, "kl": 0.0, "clip_frac": 0.0, "entropy": 0.0, "grad_norm": 0.0}
        count = 0
        for _epoch in range(int(m.ppo_epochs)):
            order = rng.permutation(len(done))
            for start in range(0, len(done), int(m.minibatch_size)):
                pick = np.sort(order[start:start + int(m.minibatch_size)])
                if n_mb == 1:
                    mb, tok = batch, torch.arange(len(batch.targets), device=acc.device)
                else:
                    mb = Batch.build([(done[i].problem.prompt_ids, done[i].tokens) for i in pick], self.pad, acc.device)
                    # the minibatch's tokens inside the full batch's flat token order
                    tok = torch.cat([torch.nonzero(batch.rows == int(i)).squeeze(1) for i in pick])
                logp, entropy = self.policy(*mb.args())
                if old is None:
                    old = logp.detach()
                loss, stats = clipped_pg_loss(logp, old[tok], ref[tok] if ref is not None else None, token_adv[tok],
                                              float(m.clip_eps), float(m.kl_coef))
                norm = self.scaffold.optimize(loss)
                norm = torch.zeros(()) if norm is None else norm
                for k, v in (("loss", loss.detach()), ("kl", stats["kl"]), ("clip_frac", stats["clip_frac"]),
                             ("entropy", entropy.mean()), ("grad_norm", norm)):
                    sums[k] += float(v)
                count += 1
        lr = self.scaffold.advance_schedule()
        t3 = time.perf_counter()
        distinct = np.mean([len(set(k)) / n for k in keys])
        row = {"train/reward": adv.reward, "train/diversity": adv.diversity, "train/set_score": adv.set_score,
               **{f"train/{k}": v / count for k, v in sums.items()}, "train/lr": lr,
               "train/distinct_outputs": float(distinct),
               "train/adv_diversity_abs": float(np.abs(adv.diversity_part).mean()),
               "train/samples": len(done), "train/rollout_s": t1 - t0, "train/advantage_s": t2 - t1,
               "train/optimize_s": t3 - t2, "train/update_s": t3 - t0}
        row.update(rollout_metrics(self.task, done, self.rewarded))
        self._last_novel = novel_flags(self.task, done, self.rewarded)
        self.rewarded += rewarded_outputs(done)
        self._last_rollouts = [(r, a) for r, a in zip(done, adv.advantage)]
        return row

    def strip(self, tokens: list[int]) -> list[int]:
        """The completion without its stop sequence or EOS."""
        return strip_completion(tokens, self.stop, self.tokenizer.eos_token_id)

    def run(self, run_dir: Path, tracker) -> dict:
        """Every update from the run folder's last checkpoint (train.resume) or the start, logged
        to train/metrics.jsonl, W&B and train/rollouts.jsonl (cut back to the checkpoint on
        resume, with the rewarded outputs read back from it); the model to run_dir/model/.
        Returns results.json's `train` section."""
        scaffold, m_n = self.scaffold, int(self.m.n_samples)
        rollouts_path = run_dir / ROLLOUTS
        scaffold.start(run_dir, tracker, self.fingerprint, logs={ROLLOUTS: "update"})
        if scaffold.resumed_from is not None and rollouts_path.exists():
            self.rewarded = rewarded_from_file(rollouts_path, self.progress.step)

        def step(index: int) -> dict:
            update = index + 1
            row = self.update(index)
            self.progress.samples += row["train/samples"]
            row = {**row, "train/samples_per_s": row["train/samples"] / row["train/update_s"],
                   "train/updates_per_s": 1.0 / row["train/update_s"],
                   **self.curriculum.check(self.model, self.tokenizer, update, run_dir)}
            if scaffold.main:
                for i, ((r, a), novel) in enumerate(zip(self._last_rollouts, self._last_novel)):
                    append_jsonl(rollouts_path, rollout_record(update, i, m_n, r, a, novel))
            return row

        # no checkpoint after the last update unless train.save_steps says so: model/ is the result
        scaffold.drive(step, HEADLINE, checkpoint_at_end=False)
        if scaffold.main and self._last_rollouts:
            tracker.table("train/rollouts", ROLLOUT_COLUMNS,
                          [[self.progress.step, i // m_n, r.problem.id, r.sample, r.text, r.verdict.kind,
                            r.verdict.reward, float(a)]
                           for i, (r, a) in enumerate(self._last_rollouts[:int(self.cfg.logger.log_samples)])])
        scaffold.export()
        if scaffold.main:  # what the model was rewarded on is not novel in eval_gen / eval_sets (methods.trained_on)
            write_trained_on(run_dir, self.rewarded)
        m, rows = self.m, scaffold.rows
        seconds = sum(r["train/update_s"] for r in rows)
        first, final = (rows[0], rows[-1]) if rows else ({}, {})
        return {
            "steps": self.progress.step, "updates": self.progress.step, "samples": self.progress.samples,
            "lam": float(m.lam), "form": m.form, "diversity": m.diversity, "n_samples": int(m.n_samples),
            "set_size": int(m.set_size), "kl_coef": float(m.kl_coef), "ppo_epochs": int(m.ppo_epochs),
            "final_loss": final.get("train/loss"),
            "first_reward": first.get("train/reward"), "final_reward": final.get("train/reward"),
            "final_diversity": final.get("train/diversity"), "final_kl": final.get("train/kl"),
            "final_entropy": final.get("train/entropy"),
            "samples_per_s": sum(r["train/samples"] for r in rows) / seconds if seconds else None,
            "updates_per_s": len(rows) / seconds if seconds else None,
            "mean_update_s": seconds / len(rows) if rows else None,
            **scaffold.summary(),
        }


# --- rollouts as records, and what was rewarded ------------------------------------------------------
def rollout_record(update: int, index: int, n: int, r, advantage: float, novel=None) -> dict:
    """One rollouts.jsonl row. (update, slot, sample) addresses it: slot = the group (the prompt's
    place in the update), since one prompt can be drawn twice in an update (fewer training
    prompts than method.prompts_per_update) and (update, id, sample) then repeats. novel: a
    rewarded output outside the task's known outputs and everything rewarded before the update."""
    return {"update": update, "slot": index // n, "id": r.problem.id, "sample": r.sample, "text": r.text,
            "verdict": r.verdict.kind, "reward": r.verdict.reward, "extracted": r.verdict.extracted,
            "novel": novel, "advantage": float(advantage)}


def rewarded_outputs(done) -> list:
    """The extracted outputs of the samples with a positive reward (what an update reinforced)."""
    return [r.verdict.extracted for r in done if r.verdict.reward > 0 and r.verdict.extracted is not None]


def rewarded_from_file(path: Path, up_to: int) -> list:
    """rewarded_outputs of rollouts.jsonl's updates <= up_to (after a resume)."""
    return [row["extracted"] for row in read_jsonl(path)
            if row["update"] <= up_to and row["reward"] > 0 and row.get("extracted") is not None]


def write_trained_on(run_dir: Path, rewarded: list) -> None:
    unique = list({repr(x): x for x in rewarded}.values())
    write_jsonl(Path(run_dir) / TRAINED_ON, [{"extracted": x} for x in unique])


def rollout_metrics(task, done, rewarded: list) -> dict:
    """The update's samples: the task's figures (grammars: validity, unique and novel valid, novel
    counting every earlier rewarded output as known), as rollout/*."""
    return flatten("rollout", task.sample_metrics(rollout_rows(done), rewarded))


# --- resuming and checks before any stage ----------------------------------------------------------
def _fingerprint(job_cfg, world: int) -> dict:
    """What decides a polychromic run's result (the job's config: task, model, method, train,
    seed), stored in each checkpoint and compared on resume, as for SFT."""
    job = result_config(job_cfg) if "task" in job_cfg and "seed" in job_cfg else None
    return run_fingerprint(job_cfg.train, world, job)


def _check_warm_start(m) -> None:
    """The warm start's settings (read only with method.warmup_steps > 0, checked always: the
    config alone decides them)."""
    check_key(m.warmup_lr > 0, "method.warmup_lr", f"must be positive, got {m.warmup_lr}")
    check_key(m.warmup_batch_size > 0, "method.warmup_batch_size", f"must be positive, got {m.warmup_batch_size}")
    check_key(m.warmup_seed >= 0, "method.warmup_seed", f"must be >= 0, got {m.warmup_seed}")


__all__ = ["Polychromic", "PolychromicConfig", "PolychromicTrainer", "Policy", "clipped_pg_loss", "warm_start"]
