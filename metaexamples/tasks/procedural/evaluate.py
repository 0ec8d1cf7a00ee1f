"""stage=eval_verify: n samples per problem of each evaluation split (task.eval_splits), each
verified; accuracy, unbiased pass@k, the verdict histogram, accuracy per kind x difficulty.

Definitions (results.json `verify.<split>`):
  accuracy         correct samples / all samples (the mean reward; pass@1's plain estimate)
  pass@k           mean over problems of 1 - C(n-c, k) / C(n, k) (HumanEval's unbiased
                   estimator), n = task.n_samples, c = correct samples of the problem
  verdicts         samples per verdict kind
  by_kind_difficulty  {kind: {difficulty: accuracy}}
  baseline         the best constant answer per kind, judged by the verifier's rule, beside the
                   model: {"accuracy": a reply of each kind's best constant to every problem,
                   "by_kind": {kind: {"answer", "accuracy", "model_accuracy"}}}; the constant is
                   the kind's most frequent answer in the split (ties: the first in sort order),
                   so no constant does better on it. Program answers: a constant program is
                   correct only where the shown and every hidden answer equal it (never, as
                   the hidden answers are drawn); "accuracy_on_shown_input" is what it would
                   score on the shown input alone.
  examples         up to task.show_failures failed completions per verdict kind
Writes run_dir/eval_verify/completions.jsonl (one row per sample: split, problem id, kind,
difficulty, sample index, expected answer, completion text, extracted answer, verdict,
reward, log-probability) and metrics.json, so every figure can be recomputed.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path

from metaexamples.evaluation.metrics import verified_metrics
from metaexamples.evaluation.rollout import rollouts
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


def constant_baseline(problems: list[dict], rows: list[dict], answer_format: str) -> dict:
    """The best constant answer per kind over `problems` (split rows, with "hidden" for
    programs) beside the model's accuracy per kind in the completion `rows`."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for p in problems:
        by_kind[p["kind"]].append(p)
    model: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        model[r["kind"]].append(r["reward"])
    out: dict = {"by_kind": {}}
    right_total = 0
    for kind, ps in sorted(by_kind.items()):
        counts = Counter(p["answer"] for p in ps)
        best = min(counts, key=lambda a: (-counts[a], a))
        right = counts[best]
        entry = {"answer": best}
        if answer_format == "program":
            entry["accuracy_on_shown_input"] = right / len(ps)
            right = sum(p["answer"] == best and all(t["answer"] == best for t in p["hidden"]) for p in ps)
        entry["accuracy"] = right / len(ps)
        entry["model_accuracy"] = sum(model[kind]) / len(model[kind]) if model[kind] else None
        out["by_kind"][kind] = entry
        right_total += right
    out["accuracy"] = right_total / len(problems) if problems else 0.0
    return out


def run_eval_verify(task, model, run_dir: Path, tracker) -> dict:
    cfg, t = task.cfg, task.cfg.task
    out_dir = Path(run_dir) / "eval_verify"
    n, ks = int(t.n_samples), [int(k) for k in t.pass_k]
    section: dict = {"answer": t.answer, "n_samples": n, "prompt_format": "chat" if task.use_chat() else "plain",
                     "decoding": cfg.decoding.name, "max_new_tokens": task.sampling(cfg.decoding).max_new_tokens}
    all_rows: list[dict] = []
    for split in t.eval_splits:
        problems = task.problems(split)
        done = rollouts(model, task.tokenizer, task, problems, n, cfg.decoding, seed=int(cfg.seed),
                        batch_size=int(cfg.eval.gen_batch_size))
        rows = [{"split": split, "id": r.problem.id, "kind": r.problem.meta["kind"],
                 "difficulty": r.problem.meta["difficulty"], "sample": r.sample,
                 "question": r.problem.meta["row"]["question"], "expected": r.problem.answer, "text": r.text,
                 "extracted": r.verdict.extracted, "verdict": r.verdict.kind, "reward": r.verdict.reward,
                 "logprob": r.logprob} for r in done]
        section[split] = split_metrics(rows, ks, int(t.show_failures))
        section[split]["baseline"] = constant_baseline([p.meta["row"] for p in problems], rows, t.answer)
        all_rows += rows
        m = section[split]
        log.info("eval_verify %s: accuracy %.3f (best constant answer per kind %.3f), %s, verdicts %s", split,
                 m["accuracy"], m["baseline"]["accuracy"], ", ".join(f"pass@{k} {m[f'pass@{k}']:.3f}" for k in ks),
                 m["verdicts"])

    write_jsonl(out_dir / "completions.jsonl", all_rows)
    write_json(out_dir / "metrics.json", section)
    n_log = int(cfg.logger.log_samples)
    tracker.table("verify/samples", TABLE_COLUMNS, [[r[c] for c in TABLE_COLUMNS] for r in all_rows[:n_log]])
    return section
