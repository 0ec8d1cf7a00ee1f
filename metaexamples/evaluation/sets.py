"""stage=eval_sets (section `sets`), shared by every task with a verifier: n samples per
held-out prompt, then how often and how differently the model succeeds.

Prompts: task.problems("heldout", limit=eval.set_problems); n = eval.set_samples samples each
(the decoding group's settings, the task's stop and constraint; evaluation/rollout), each verified.
Per prompt (then the mean over prompts, with a 95% percentile-bootstrap interval over prompts,
evaluation/stats.py; with a single prompt an interval over prompts has zero width, so there the
interval resamples the prompt's samples instead, `ci_over` says which, and Self-BLEU and
semantic, which compare every sample with every other, get no interval):
- pass@k for k in eval.set_ks: the unbiased estimator 1 - C(n-c, k)/C(n, k), c = samples with
  reward 1 (evaluation/metrics.pass_at_k);
- accuracy: mean reward;
- distinct_1, distinct_2: Distinct-n of the prompt's samples (evaluation/diversity.py: pooled
  unique / all n-grams of completion tokens, stop sequence and EOS removed); corpus_distinct_1/2:
  the same over every sample of the run (one number, no interval);
- self_bleu: Self-BLEU (diversity.self_bleu: each sample against the prompt's others, 0-1);
- coverage: distinct correct outputs (reward 1; output = the verifier's `extracted`, else the
  completion tokens); where the task knows its training outputs (`Task.known_outputs`: the
  grammar task's training strings and what a method fine-tuned on) only novel ones count:
  distinct novel valid strings.
  distinct_correct: the same without the novelty condition; novel_share: the share of correct
  samples (not distinct ones) that are novel (None where the task has no novelty);
- semantic: mean pairwise cosine distance of the model's own mean-pooled final hidden states of
  the prompt's samples (diversity.completion_embeddings, in batches of eval.batch_size).
Writes run_dir/eval_sets/samples.jsonl (one row per sample: prompt id, seed, sample index,
prompt and completion tokens, the tokens the metrics read ("units"), text, reward, verdict,
extracted, novel, logprob), embeddings.npy (row i = sample i's pooled hidden state) and
metrics.json; `metrics_from_samples` recomputes every figure from those two files.

`compare` is the paired comparison of arms (e.g. a method's settings) against a baseline arm,
over (seed, prompt) units, that sweep reports use.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from metaexamples.errors import ConfigError, check_key
from metaexamples.evaluation.diversity import (completion_embeddings, distinct_n, mean_pairwise_cosine_distance,
                                               self_bleu)
from metaexamples.evaluation.metrics import pass_at_k
from metaexamples.evaluation.stats import bootstrap_ci, compare_arms
from metaexamples.evaluation.problems import output_key
from metaexamples.evaluation.rollout import rollouts
from metaexamples.evaluation.sampling import find_subsequence
from metaexamples.evaluation.trained_on import trained_on
from metaexamples.io import atomic_path, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

PER_PROMPT = ("accuracy", "distinct_1", "distinct_2", "self_bleu", "coverage", "distinct_correct", "novel_share",
              "semantic")
SAMPLE_COLUMNS = ("id", "sample", "text", "verdict", "reward", "novel")


def output_of(row: dict) -> tuple:
    """The comparable output of a sample row (as evaluation/problems.output_key)."""
    return output_key(row["extracted"], row["units"])


def strip_completion(tokens: Sequence[int], stop: Sequence[int], eos: int | None) -> list[int]:
    """Completion tokens before the stop sequence (or EOS)."""
    tokens = list(tokens)
    at = find_subsequence(tokens, list(stop)) if stop else -1
    if at >= 0:
        return tokens[:at]
    if eos is not None and eos in tokens:
        return tokens[:tokens.index(eos)]
    return tokens


def prompt_metrics(rows: list[dict], embeddings: np.ndarray | None, ks: Sequence[int],
                   pairwise: bool = True) -> dict:
    """Every per-prompt figure for one prompt's sample rows (and their embeddings);
    pairwise=False leaves Self-BLEU and semantic out (None)."""
    n = len(rows)
    c = sum(r["reward"] >= 1.0 for r in rows)
    units = [r["units"] for r in rows]
    correct = [output_of(r) for r in rows if r["reward"] >= 1.0]
    novel = [output_of(r) for r in rows if r["reward"] >= 1.0 and r.get("novel") is not False]
    out = {f"pass@{k}": pass_at_k(n, c, k) for k in ks if k <= n}
    out.update({"accuracy": float(np.mean([r["reward"] for r in rows])),
                "distinct_1": distinct_n(units, 1), "distinct_2": distinct_n(units, 2),
                "self_bleu": self_bleu(units) if pairwise else None, "coverage": float(len(set(novel))),
                "distinct_correct": float(len(set(correct))),
                "novel_share": len(novel) / len(correct) if correct and any(r.get("novel") is not None for r in rows)
                else None,
                "semantic": mean_pairwise_cosine_distance(embeddings) if pairwise and embeddings is not None
                and len(embeddings) else None})
    return out


def per_prompt(rows: list[dict], embeddings: np.ndarray | None, ks: Sequence[int]) -> dict[str, dict]:
    """{prompt id: prompt_metrics}, prompts in first-seen order."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r["id"], []).append(i)
    return {pid: prompt_metrics([rows[i] for i in idx], embeddings[idx] if embeddings is not None else None, ks)
            for pid, idx in groups.items()}


# Figures that compare every sample with every other: too slow to recompute per resample.
PAIRWISE = ("self_bleu", "semantic")


def sample_bootstrap(rows: list[dict], names: Sequence[str], ks: Sequence[int], n_boot: int,
                     alpha: float = 0.05, seed: int = 0) -> dict[str, tuple[float, float]]:
    """{name: (lo, hi)}: percentile intervals of one prompt's figures over resamples of its
    samples (with replacement, seeded); the pairwise figures are left out."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in names if name not in PAIRWISE}
    for _ in range(n_boot):
        resample = [rows[i] for i in rng.integers(0, len(rows), len(rows))]
        values = prompt_metrics(resample, None, ks, pairwise=False)
        for name in draws:
            if values.get(name) is not None:
                draws[name].append(values[name])
    return {name: tuple(float(q) for q in np.quantile(v, [alpha / 2, 1 - alpha / 2]))
            for name, v in draws.items() if v}


def metrics_from_samples(rows: list[dict], embeddings: np.ndarray | None, ks: Sequence[int],
                         n_boot: int = 2000, seed: int = 0, sample_boot: int = 400) -> dict:
    """The section's figures from the samples file's rows (and embeddings.npy). Intervals over
    prompts; with one prompt over `sample_boot` resamples of its samples (`ci_over`)."""
    prompts = per_prompt(rows, embeddings, ks)
    names = [f"pass@{k}" for k in ks] + list(PER_PROMPT)
    over_samples = len(prompts) == 1
    out: dict = {"problems": len(prompts), "samples": len(rows),
                 "samples_per_problem": len(rows) // max(1, len(prompts)),
                 "corpus_distinct_1": distinct_n([r["units"] for r in rows], 1),
                 "corpus_distinct_2": distinct_n([r["units"] for r in rows], 2),
                 "ci_over": "samples" if over_samples else "prompts", "ci": {}, "display": {}}
    within = sample_bootstrap(rows, names, ks, sample_boot, seed=seed) if over_samples else {}
    for name in names:
        ci = bootstrap_ci([p.get(name) for p in prompts.values()], n_boot=n_boot, seed=seed)
        if over_samples:
            ci["lo"], ci["hi"] = within.get(name, (None, None))
        out[name] = ci["mean"]
        out["ci"][name] = {"lo": ci["lo"], "hi": ci["hi"]}
        out["display"][name] = "-" if ci["mean"] is None else f"{ci['mean']:.4g}" if ci["lo"] is None else \
            f"{ci['mean']:.4g} [{ci['lo']:.4g}, {ci['hi']:.4g}]"
    verdicts: dict[str, int] = {}
    for r in rows:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    out["verdicts"] = dict(sorted(verdicts.items()))
    return out


def run_eval_sets(cfg, task, model, tokenizer, run_dir: Path, tracker) -> dict:
    e = cfg.eval
    n, ks = int(e.set_samples), [int(k) for k in e.set_ks]
    check_key(e.set_problems > 0, "eval.set_problems", f"must be positive, got {e.set_problems}")
    check_key(n >= 2, "eval.set_samples", f"must be >= 2 (Self-BLEU compares a sample with the others), got {n}")
    for k in ks:
        check_key(1 <= k <= n, "eval.set_ks", f"pass@{k} needs 1 <= k <= eval.set_samples ({n})")
    problems = task.problems("heldout", limit=int(e.set_problems))
    if not problems:
        raise ConfigError(f"eval.set_problems: task={task.name} has no held-out problems")
    out_dir = Path(run_dir) / "eval_sets"
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    stop = task.sampling(cfg.decoding).stop_ids
    done = rollouts(model, tokenizer, task, problems, n, cfg.decoding, seed=int(cfg.seed) + 7919,
                    batch_size=int(e.gen_batch_size))
    train_outputs = task.known_outputs(trained_on(run_dir))  # None: the task has no novelty
    rows = []
    for r in done:
        extracted = r.verdict.extracted
        novel = None
        if train_outputs is not None and r.verdict.reward >= 1.0 and extracted is not None:
            novel = (tuple(extracted) if isinstance(extracted, list) else extracted) not in train_outputs
        rows.append({"id": r.problem.id, "seed": int(cfg.seed), "sample": r.sample,
                     "prompt": list(r.problem.prompt_ids), "tokens": list(r.tokens), "units": strip_completion(r.tokens, stop, eos), "text": r.text,
                     "reward": float(r.verdict.reward), "verdict": r.verdict.kind, "extracted": extracted,
                     "novel": novel, "logprob": r.logprob})
    embeddings = completion_embeddings(model, [r["prompt"] for r in rows], [r["units"] for r in rows],
                                       int(e.batch_size), pad)
    section = metrics_from_samples(rows, embeddings, ks, seed=int(cfg.seed))
    section["novelty"] = train_outputs is not None
    section["heldout_prompts_in_train"] = prompts_in_train(task, problems)
    write_jsonl(out_dir / "samples.jsonl", rows)
    with atomic_path(out_dir / "embeddings.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, embeddings)
    write_json(out_dir / "metrics.json", section)
    n_log = int(cfg.logger.log_samples)
    tracker.table("sets/samples", SAMPLE_COLUMNS, [[r[c] for c in SAMPLE_COLUMNS] for r in rows[:n_log]])
    log.info("eval_sets: %d prompts x %d samples: %s", len(problems), n,
             ", ".join(f"{k} {section[k]:.4g}" for k in [f"pass@{k}" for k in ks] + list(PER_PROMPT)
                       if section.get(k) is not None))
    return section


def prompts_in_train(task, problems) -> int:
    """How many held-out prompts are also training prompts (0 = disjoint). Where they are not
    disjoint (a grammar without seed symbols has one prompt) held-out can only mean unseen
    outputs: coverage counts novel strings only."""
    train = {tuple(p.prompt_ids) for p in task.problems("train")}
    shared = sum(tuple(p.prompt_ids) in train for p in problems)
    if shared:
        log.warning("eval_sets: %d of %d held-out prompts are training prompts; held-out means unseen outputs "
                    "(coverage counts novel ones only)", shared, len(problems))
    return shared


def load_samples(job_dir: Path) -> tuple[list[dict], np.ndarray | None]:
    """A job's eval_sets samples and embeddings (None if embeddings.npy is missing)."""
    folder = Path(job_dir) / "eval_sets"
    rows = read_jsonl(folder / "samples.jsonl")
    emb = folder / "embeddings.npy"
    return rows, (np.load(emb) if emb.exists() else None)


def compare(jobs: Sequence[dict], arm_of: Callable[[dict], str], baseline: str, metrics: Sequence[str],
            ks: Sequence[int], n_boot: int = 2000, n_perm: int = 10000) -> dict:
    """Paired comparison of every arm with `baseline` over (seed, prompt id) units present in
    both. `jobs`: dicts with "seed", "output_dir" (a job folder holding eval_sets/) and whatever
    `arm_of` reads. Returns {arm: {"jobs", "units", metric: {"mean", "lo", "hi", "diff", "diff_lo",
    "diff_hi", "p", "ratio"}}} (mean/lo/hi: the arm's mean over its units and its interval;
    diff: mean of arm - baseline over paired units, its interval and sign-flip p; ratio: arm
    mean / baseline mean over the paired units)."""
    units: dict[str, dict[tuple, dict]] = {}
    counts: dict[str, int] = {}
    for job in jobs:
        rows, emb = load_samples(Path(job["output_dir"]))
        arm = arm_of(job)
        counts[arm] = counts.get(arm, 0) + 1
        for pid, values in per_prompt(rows, emb, ks).items():
            units.setdefault(arm, {}).setdefault((job.get("seed"), pid), values)
    compared = compare_arms(units, baseline, metrics, n_boot=n_boot, n_perm=n_perm)
    out = {arm: {"jobs": counts[arm], **entry} for arm, entry in compared.items()}
    return out


__all__ = ["compare", "load_samples", "metrics_from_samples", "per_prompt", "prompt_metrics", "run_eval_sets",
           "strip_completion"]
