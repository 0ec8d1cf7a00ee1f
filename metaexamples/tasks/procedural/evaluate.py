"""stage=eval_verify: n samples per problem of each evaluation split (task.eval_splits), each
verified; accuracy, unbiased pass@k, the verdict histogram, accuracy per kind x difficulty.

Definitions (results.json `verify.<split>`):
  accuracy         correct samples / all samples (the mean reward; pass@1's plain estimate)
  pass@k           mean over problems of 1 - C(n-c, k) / C(n, k) (HumanEval's unbiased
                   estimator), n = task.n_samples, c = correct samples of the problem
  verdicts         samples per verdict kind
  by_kind_difficulty  {kind: {difficulty: accuracy}}
  examples         up to task.show_failures failed completions per verdict kind
Writes run_dir/eval_verify/completions.jsonl (one row per sample: split, problem id, kind,
difficulty, sample index, expected answer, completion text, extracted answer, verdict,
reward, log-probability) and metrics.json, so every figure can be recomputed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from metaexamples.evaluation.metrics import verified_metrics
from metaexamples.io import write_json, write_jsonl

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("split", "id", "kind", "difficulty", "expected", "text", "extracted", "verdict")


def split_metrics(rows: list[dict], ks: list[int], show: int) -> dict:
    """The metrics of one split from its completion rows."""
    cells: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        cells[r["kind"]][str(r["difficulty"])].append(r["reward"])
    examples: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["verdict"] != "correct" and len(examples[r["verdict"]]) < show:
            examples[r["verdict"]].append({k: r[k] for k in ("id", "question", "expected", "text", "extracted")})
    return {
        **verified_metrics(rows, ks),
        "by_kind_difficulty": {k: {d: sum(v) / len(v) for d, v in sorted(ds.items(), key=lambda x: int(x[0]))}
                               for k, ds in sorted(cells.items())},
        "examples": dict(examples),
    }


def run_eval_verify(task, model, run_dir: Path, tracker) -> dict:
    from metaexamples.evaluation.rollout import rollouts

    cfg, t = task.cfg, task.cfg.task
    out_dir = Path(run_dir) / "eval_verify"
    n, ks = int(t.n_samples), [int(k) for k in t.pass_k]
    section: dict = {"answer": t.answer, "n_samples": n, "prompt_format": "chat" if task.use_chat() else "plain",
                     "decoding": cfg.decoding.name, "max_new_tokens": task.sampling(cfg.decoding).max_new_tokens}
    all_rows: list[dict] = []
    for split in t.eval_splits:
        done = rollouts(model, task.tokenizer, task, task.problems(split), n, cfg.decoding, seed=int(cfg.seed),
                        batch_size=int(cfg.eval.gen_batch_size))
        rows = [{"split": split, "id": r.problem.id, "kind": r.problem.meta["kind"],
                 "difficulty": r.problem.meta["difficulty"], "sample": r.sample,
                 "question": r.problem.meta["row"]["question"], "expected": r.problem.answer, "text": r.text,
                 "extracted": r.verdict.extracted, "verdict": r.verdict.kind, "reward": r.verdict.reward,
                 "logprob": r.logprob} for r in done]
        section[split] = split_metrics(rows, ks, int(t.show_failures))
        all_rows += rows
        m = section[split]
        log.info("eval_verify %s: accuracy %.3f, %s, verdicts %s", split, m["accuracy"],
                 ", ".join(f"pass@{k} {m[f'pass@{k}']:.3f}" for k in ks), m["verdicts"])

    write_jsonl(out_dir / "completions.jsonl", all_rows)
    write_json(out_dir / "metrics.json", section)
    n_log = int(cfg.logger.log_samples)
    tracker.table("verify/samples", TABLE_COLUMNS, [[r[c] for c in TABLE_COLUMNS] for r in all_rows[:n_log]])
    return section
