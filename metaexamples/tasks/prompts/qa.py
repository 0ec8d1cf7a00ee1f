"""What task=prompts and task=gym share: text prompts with a reward on the model's answer.

A subclass supplies the data (`prepare_data` / `load_data` writing train/val/test/ood JSONL rows)
and `judge_many(rows, texts) -> [Verdict]`; this base turns rows into prompts (chat or plain, an
optional system prompt), serves problems and reference completions, packs the SFT data, and
runs the eval_verify stage.

A row: {"id", "prompt" (the user message), "answer" (the reference answer text, or None),
"group" (what the breakdown is by: a dataset, a field's value), "level" (an int difficulty, or
None), ...}. Problem.meta carries "kind" (= group) and "difficulty" (= level), as the
procedural task's problems, so a curriculum reads both tasks alike.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from metaexamples.data.mixing import completion_examples
from metaexamples.errors import ConfigError, check_key
from metaexamples.evaluation.metrics import verified_metrics
from metaexamples.evaluation.rollout import rollouts
from metaexamples.io import write_json, write_jsonl
from metaexamples.schemas import TaskConfig
from metaexamples.tasks import JsonlSplitsData, Problem, SamplingSpec, SFTData, Verdict, VerifiedTask
from metaexamples.tasks.procedural import ProceduralTask

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test", "ood")
SAMPLE_COLUMNS = ("split", "id", "group", "level", "expected", "text", "extracted", "verdict", "reward")


@dataclass
class QAConfig(TaskConfig):
    """The keys every prompt -> answer task has."""

    prompt_format: str = "auto"  # auto (chat template for model.chat models) | chat | plain
    block_size: int = 256  # SFT: prompt + reference answer pairs packed into blocks of this many tokens
    max_new_tokens: int = 64  # completion budget
    # evaluation (stage eval_verify)
    eval_splits: List[str] = field(default_factory=lambda: ["test", "ood"])
    n_samples: int = 10  # samples per problem (pass@k needs n >= k)
    pass_k: List[int] = field(default_factory=lambda: [1, 5, 10])
    show_failures: int = 3  # failed completions kept per verdict kind in results.json
    eval_problems: Optional[int] = None  # problems per evaluated split; null = all


class QATask(JsonlSplitsData, VerifiedTask):
    """The shared half of task=prompts and task=gym (no `name`: not a task of its own)."""

    eval_stages = {"eval_verify": "verify"}

    # -- what a subclass provides (and _folder, data_description: JsonlSplitsData) -----------
    def system_prompt(self) -> str | None:
        return None

    def stop_text(self) -> str | None:
        """Text that ends a completion (besides EOS), or None."""
        return None

    def target_text(self, row: dict) -> str | None:
        """A correct completion of the row (the SFT target), or None where it has none."""
        return None if row.get("answer") is None else str(row["answer"])

    def judge_many(self, rows: list[dict], texts: list[str]) -> list:
        raise NotImplementedError

    def sizes(self) -> dict[str, int]:
        raise NotImplementedError

    # -- checks shared by both --------------------------------------------------------------
    @classmethod
    def check_qa_config(cls, cfg, sizes: dict[str, int] | None) -> None:
        """Range checks of the QAConfig keys; `sizes` (split -> count) where the config alone
        knows them, so an empty evaluation split is refused before any stage runs."""
        t = cfg.task
        check_key(t.prompt_format in ("auto", "chat", "plain"), "task.prompt_format",
                  f"unknown {t.prompt_format!r}; available: auto, chat, plain")
        for key in ("block_size", "max_new_tokens", "n_samples"):
            check_key(t[key] > 0, f"task.{key}", f"must be positive, got {t[key]}")
        check_key(t.eval_problems is None or t.eval_problems > 0, "task.eval_problems",
                  f"must be positive (or null: all), got {t.eval_problems}")
        for k in t.pass_k:
            check_key(1 <= k <= t.n_samples, "task.pass_k", f"pass@{k} needs 1 <= k <= task.n_samples ({t.n_samples})")
        for split in t.eval_splits:
            check_key(split in SPLITS, "task.eval_splits", f"unknown split {split!r}; available: {', '.join(SPLITS)}")
            if sizes is not None and "eval_verify" in cfg.stages:
                check_key(sizes.get(split, 0) > 0, "task.eval_splits", f"split {split!r} is empty")

    # -- data (folder, load_data, data_summary, rows: JsonlSplitsData) ------------------------

    # -- prompts and problems ---------------------------------------------------------------
    use_chat = ProceduralTask.use_chat  # one rule for chat vs plain prompts (task.prompt_format)

    def prompt_text(self, row: dict) -> str:
        system = self.system_prompt()
        if self.use_chat():
            messages = ([{"role": "system", "content": system}] if system else []) + \
                [{"role": "user", "content": row["prompt"]}]
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return (f"{system}\n\n" if system else "") + f"{row['prompt']}\n"

    def prompt_ids(self, row: dict) -> list[int]:
        return self.tokenizer(self.prompt_text(row), add_special_tokens=False)["input_ids"]

    def problems(self, split: str, limit: int | None = None) -> list[Problem]:
        """Split train, val ("heldout" for methods), test or ood."""
        rows = self.rows("val" if split == "heldout" else split)[:limit]
        return [Problem(id=r["id"], prompt_ids=self.prompt_ids(r), answer=r.get("answer"),
                        meta={"row": r, "kind": r.get("group"), "difficulty": r.get("level")}) for r in rows]

    def reference_completion(self, problem: Problem) -> list[int] | None:
        text = self.target_text(problem.meta["row"])
        if text is None:
            return None
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]

    def sampling(self, dec) -> SamplingSpec:
        stop = self.stop_text()
        ids = self.tokenizer(stop, add_special_tokens=False)["input_ids"] if stop else []
        return SamplingSpec(stop_ids=ids, constraint=None, max_new_tokens=int(self.cfg.task.max_new_tokens))

    def verify(self, problem: Problem, completion_ids: list[int]):
        return self.verify_many([problem], [completion_ids])[0]

    def verify_many(self, problems: list[Problem], completions: list[list[int]]) -> list:
        texts = [self.tokenizer.decode(c, skip_special_tokens=True) for c in completions]
        return self.judge_many([p.meta["row"] for p in problems], texts)

    # -- training ---------------------------------------------------------------------------
    def sft_data(self) -> SFTData:
        """Each training row's prompt and reference answer, EOS-terminated; only the answer is
        scored. Rows without a reference answer are left out."""
        pairs = [(p.prompt_ids, ref) for p in self.problems("train")
                 if (ref := self.reference_completion(p)) is not None]
        if not pairs:
            raise ConfigError(f"task={self.name}: no training row has a reference answer to fine-tune on")
        return completion_examples(pairs, int(self.cfg.task.block_size), self.tokenizer)

    # -- evaluation -------------------------------------------------------------------------
    def baselines(self, rows: list[dict]) -> dict:
        """Rewards a model earns without solving anything, beside the real figures: the most
        common training answer for every problem ("constant") and the question echoed back
        ("echo"), both judged by the task's own verifier."""
        answers = Counter(str(r["answer"]) for r in self.rows("train") if r.get("answer") is not None)
        out = {}
        if answers:
            constant = answers.most_common(1)[0][0]
            out["constant"] = self._mean_reward(rows, [self.wrap(constant)] * len(rows))
        out["echo"] = self._mean_reward(rows, [self.wrap(r["prompt"]) for r in rows])
        return out

    def wrap(self, answer: str) -> str:
        """An answer as a completion in the format the prompt asks for."""
        return answer

    def _mean_reward(self, rows: list[dict], texts: list[str]) -> float | None:
        if not rows:
            return None
        return sum(v.reward for v in self.judge_many(rows, texts)) / len(rows)

    def evaluate(self, stage: str, model, tokenizer, run_dir: Path, tracker) -> dict:
        self.tokenizer = tokenizer
        return run_eval_verify(self, model, run_dir, tracker)


def graded(reward: float, extracted) -> Verdict:
    """A reward in [0, 1] as a verdict: correct (1), partial (between), wrong (0)."""
    kind = "correct" if reward >= 1.0 else ("partial" if reward > 0.0 else "wrong")
    return Verdict(reward=float(reward), kind=kind, extracted=extracted)


def split_metrics(rows: list[dict], ks: list[int], show: int) -> dict:
    """One split's figures from its sample rows: verified_metrics (accuracy = mean reward,
    pass@k counts reward 1), `solved` (share of samples with reward 1), mean reward by group
    and level, and up to `show` failed samples per verdict."""
    cells: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        cells[str(r["group"])][str(r["level"])].append(r["reward"])
    examples: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["verdict"] != "correct" and len(examples[r["verdict"]]) < show:
            examples[r["verdict"]].append({k: r[k] for k in ("id", "prompt", "expected", "text", "extracted")})
    return {**verified_metrics(rows, ks),
            "solved": sum(r["reward"] >= 1.0 for r in rows) / len(rows) if rows else 0.0,
            "by_group_level": {g: {lv: sum(v) / len(v) for lv, v in sorted(ls.items())} for g, ls in sorted(cells.items())},
            "examples": dict(examples)}


def run_eval_verify(task: QATask, model, run_dir: Path, tracker) -> dict:
    """stage=eval_verify: task.n_samples samples per problem of each task.eval_splits split;
    writes eval_verify/completions.jsonl (one row per sample) and metrics.json."""
    cfg, t = task.cfg, task.cfg.task
    n, ks = int(t.n_samples), [int(k) for k in t.pass_k]
    section: dict = {"n_samples": n, "prompt_format": "chat" if task.use_chat() else "plain",
                     "decoding": cfg.decoding.name, "max_new_tokens": int(t.max_new_tokens)}
    all_rows: list[dict] = []
    for split in t.eval_splits:
        problems = task.problems(split, limit=t.eval_problems)
        done = rollouts(model, task.tokenizer, task, problems, n, cfg.decoding, seed=int(cfg.seed),
                        batch_size=int(cfg.eval.gen_batch_size))
        rows = [{"split": split, "id": r.problem.id, "group": r.problem.meta["kind"],
                 "level": r.problem.meta["difficulty"], "sample": r.sample, "prompt": r.problem.meta["row"]["prompt"],
                 "expected": r.problem.answer, "text": r.text, "extracted": r.verdict.extracted,
                 "verdict": r.verdict.kind, "reward": r.verdict.reward, "logprob": r.logprob} for r in done]
        section[split] = {**split_metrics(rows, ks, int(t.show_failures)),
                          "baselines": task.baselines([p.meta["row"] for p in problems])}
        all_rows += rows
        m = section[split]
        log.info("eval_verify %s: mean reward %.3f, solved %.3f, %s, verdicts %s (baselines %s)", split,
                 m["accuracy"], m["solved"], ", ".join(f"pass@{k} {m[f'pass@{k}']:.3f}" for k in ks if f"pass@{k}" in m),
                 m["verdicts"], m["baselines"])
    out_dir = Path(run_dir) / "eval_verify"
    write_jsonl(out_dir / "completions.jsonl", all_rows)
    write_json(out_dir / "metrics.json", section)
    n_log = int(cfg.logger.log_samples)
    tracker.table("verify/samples", SAMPLE_COLUMNS, [[r[c] for c in SAMPLE_COLUMNS] for r in all_rows[:n_log]])
    return section


__all__ = ["QAConfig", "QATask", "SPLITS", "graded", "run_eval_verify", "split_metrics"]
