"""task=procedural: generated arithmetic, RPN and bracket problems with exact answers,
answered directly or by a model-written Python program that the verifier runs in a sandbox.

Problems: kinds/ (one file per kind), difficulty (the one table), splits (train/val/test in
task.difficulty, ood above it). Prompts: answers.question_prompt, chat-formatted through the
tokenizer's chat template for chat models (model.chat), plain otherwise. Verifier:
verifier.py. Stages: data, train (warm start: SFT on the reference answers or programs,
prompt unscored), eval_verify (n samples per problem: accuracy, pass@k, verdicts; section
`verify`).
"""

from __future__ import annotations

from pathlib import Path

from metaexamples.data.cache import keyed_folder
from metaexamples.data.mixing import completion_examples
from metaexamples.errors import ConfigError, check_key
from metaexamples.sandbox import Sandbox
from metaexamples.tasks import JsonlSplitsData, Problem, ReportTable, SamplingSpec, SFTData, Verdict, VerifiedTask
from metaexamples.tasks.procedural.answers import ANSWER_FORMATS, question_prompt, target_text
from metaexamples.tasks.procedural.config import ProceduralConfig
from metaexamples.tasks.procedural.evaluate import run_eval_verify
from metaexamples.tasks.procedural.kinds import available
from metaexamples.tasks.procedural.splits import _difficulty_range, make_splits
from metaexamples.tasks.procedural.verifier import verify_texts

SPLITS = ("train", "val", "test", "ood")
DATA_FORMAT = 2  # bump when the generated problems change for the same config (2: hidden inputs, exact shares)
KIND_CHOICES = ("arithmetic", "rpn", "brackets", "all")
VERDICTS = ("correct", "shown_only", "wrong_answer", "no_answer", "no_code", "syntax_error", "runtime_error",
            "timeout", "memory", "output_limit", "forbidden")

REPORT_COLUMNS = [
    ("Run", "run"), ("Kind", "kind"), ("Answer", "answer"), ("Model", "model"), ("Seed", "seed"),
    ("Test Acc", "verify.test.accuracy"), ("Const Acc", "verify.test.baseline.accuracy"), ("pass@1", "verify.test.pass@1"), ("pass@5", "verify.test.pass@5"),
    ("pass@10", "verify.test.pass@10"), ("OOD Acc", "verify.ood.accuracy"), ("OOD pass@10", "verify.ood.pass@10"),
    ("Correct", "verify.test.verdicts.correct"), ("Shown Only", "verify.test.verdicts.shown_only"),
    ("Wrong", "verify.test.verdicts.wrong_answer"),
    ("No Answer", "verify.test.verdicts.no_answer"), ("No Code", "verify.test.verdicts.no_code"),
    ("Syntax", "verify.test.verdicts.syntax_error"), ("Runtime", "verify.test.verdicts.runtime_error"),
    ("Timeout", "verify.test.verdicts.timeout"), ("Memory", "verify.test.verdicts.memory"),
    ("Output", "verify.test.verdicts.output_limit"), ("Forbidden", "verify.test.verdicts.forbidden"),
]


class ProceduralTask(JsonlSplitsData, VerifiedTask):
    name = "procedural"
    config_schema = ProceduralConfig
    eval_stages = {"eval_verify": "verify"}
    report_tables = [ReportTable("Procedural Problems", "verify", REPORT_COLUMNS)]
    summary_keys = [("test accuracy", "verify.test.accuracy"),
                    ("test best constant answer", "verify.test.baseline.accuracy"), ("test pass@1", "verify.test.pass@1"),
                    ("test pass@10", "verify.test.pass@10"), ("ood accuracy", "verify.ood.accuracy"),
                    *[(f"test {k} {label}", f"verify.test.baseline.by_kind.{k}.{v}") for k in available()
                      for label, v in (("accuracy", "model_accuracy"), ("best constant", "accuracy"))]]

    # -- identity -------------------------------------------------------------------------
    def run_name(self) -> str:
        t = self.cfg.task
        return f"procedural-{t.kind}-{t.answer}-{self.cfg.model.name}"

    def header(self) -> dict:
        t = self.cfg.task
        return {"kind": t.kind, "answer": t.answer, "difficulty": list(t.difficulty),
                "ood_difficulty": list(t.ood_difficulty)}

    def tags(self) -> list[str]:
        return ["procedural", self.cfg.task.kind, self.cfg.task.answer]

    @staticmethod
    def sort_key(row: dict) -> tuple:
        return (row.get("kind") or "", row.get("answer") or "", row.get("model") or "")

    @classmethod
    def check_config(cls, cfg) -> None:
        t = cfg.task
        check_key(t.kind in KIND_CHOICES, "task.kind", f"unknown {t.kind!r}; available: {', '.join(KIND_CHOICES)}")
        check_key(t.answer in ANSWER_FORMATS, "task.answer",
                  f"unknown {t.answer!r}; available: {', '.join(ANSWER_FORMATS)}")
        check_key(t.prompt_format in ("auto", "chat", "plain"), "task.prompt_format",
                  f"unknown {t.prompt_format!r}; available: auto, chat, plain")
        check_key(t.sandbox in ("auto", "bubblewrap", "process"), "task.sandbox",
                  f"unknown {t.sandbox!r}; available: auto, bubblewrap, process")
        lo, hi = _difficulty_range(list(t.difficulty), "task.difficulty")
        _difficulty_range(list(t.ood_difficulty), "task.ood_difficulty")
        check_key(t.ood_difficulty[0] > hi, "task.ood_difficulty",
                  f"{list(t.ood_difficulty)} must lie above task.difficulty [{lo}, {hi}]")
        for split in SPLITS:
            check_key(t[f"n_{split}"] >= 0, f"task.n_{split}", f"must be >= 0, got {t[f'n_{split}']}")
        for split in t.eval_splits:
            check_key(split in SPLITS, "task.eval_splits", f"unknown split {split!r}; available: {', '.join(SPLITS)}")
            check_key(t[f"n_{split}"] > 0, "task.eval_splits", f"split {split!r} is empty (task.n_{split}=0)")
        check_key(t.n_samples > 0, "task.n_samples", f"must be positive, got {t.n_samples}")
        for k in t.pass_k:
            check_key(1 <= k <= t.n_samples, "task.pass_k", f"pass@{k} needs 1 <= k <= task.n_samples ({t.n_samples})")
        check_key(t.max_new_tokens is None or t.max_new_tokens > 0, "task.max_new_tokens",
                  f"must be positive, got {t.max_new_tokens}")
        for key in ("timeout_s", "memory_mb", "max_output_bytes", "block_size"):
            check_key(t[key] > 0, f"task.{key}", f"must be positive, got {t[key]}")
        check_key(t.workers >= 0, "task.workers", f"must be >= 0, got {t.workers}")
        _check_nonempty(t)
        if t.sandbox == "bubblewrap":  # asked for explicitly: refuse now, not after training
            Sandbox(backend="bubblewrap", workers=1).close()

    # -- data -----------------------------------------------------------------------------
    def data_key(self) -> dict:
        t = self.cfg.task
        return {"format": DATA_FORMAT, "kinds": self.kinds(), "difficulty": list(t.difficulty),
                "ood_difficulty": list(t.ood_difficulty), "sizes": self.sizes(), "seed": int(self.cfg.seed)}

    def kinds(self) -> list[str]:
        return available() if self.cfg.task.kind == "all" else [self.cfg.task.kind]

    def sizes(self) -> dict[str, int]:
        return {s: int(self.cfg.task[f"n_{s}"]) for s in SPLITS}

    def _folder(self) -> Path:
        return keyed_folder(self.cache, f"procedural-{self.cfg.task.kind}", self.data_key())

    def data_description(self) -> str:
        return f"task=procedural kind={self.cfg.task.kind}"

    def prepare_data(self) -> Path:
        key = self.data_key()
        return self.splits.prepare(DATA_FORMAT, key, lambda: make_splits(
            key["kinds"], key["difficulty"], key["ood_difficulty"], key["sizes"], key["seed"]))

    # -- prompts, problems and the verifier -----------------------------------------------
    def use_chat(self) -> bool:
        fmt = self.cfg.task.prompt_format
        if fmt == "auto":
            return bool(self.cfg.model.get("chat")) and bool(getattr(self.tokenizer, "chat_template", None))
        if fmt == "chat" and not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(f"task.prompt_format: chat, but the tokenizer of model={self.cfg.model.name} "
                              "has no chat template; use task.prompt_format=plain")
        return fmt == "chat"

    def prompt_ids(self, row: dict) -> list[int]:
        text = question_prompt(row, self.cfg.task.answer)
        if self.use_chat():
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                      add_generation_prompt=True, tokenize=False)
        else:
            text += "\nAnswer: " if self.cfg.task.answer == "direct" else "\n"
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def problems(self, split: str, limit: int | None = None) -> list[Problem]:
        """Split train, val ("heldout" for methods), test or ood."""
        rows = self.rows("val" if split == "heldout" else split)[:limit]
        return [Problem(id=r["id"], prompt_ids=self.prompt_ids(r), answer=r["answer"],
                        meta={"row": r, "kind": r["kind"], "difficulty": r["difficulty"]}) for r in rows]

    def reference_completion(self, problem: Problem) -> list[int]:
        """The reference answer (or program, fenced) and EOS: what warm start trains on."""
        text = target_text(problem.meta["row"], self.cfg.task.answer)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]

    def sampling(self, dec) -> SamplingSpec:
        """Completions end at EOS (the chat turn's end); no constraint."""
        t = self.cfg.task
        budget = t.max_new_tokens if t.max_new_tokens is not None else (24 if t.answer == "direct" else 192)
        return SamplingSpec(stop_ids=[], constraint=None, max_new_tokens=int(budget))

    def verify(self, problem: Problem, completion_ids: list[int]) -> Verdict:
        return self.verify_many([problem], [completion_ids])[0]

    def verify_many(self, problems: list[Problem], completions: list[list[int]]) -> list[Verdict]:
        texts = [self.tokenizer.decode(c, skip_special_tokens=True) for c in completions]
        return verify_texts(self.cfg.task, [p.meta["row"] for p in problems], texts)

    # -- training -------------------------------------------------------------------------
    def sft_data(self) -> SFTData:
        """Warm start: each training problem's prompt and reference target (the answer, or the
        reference program in a fence), EOS-terminated; only the target is scored."""
        pairs = [(p.prompt_ids, self.reference_completion(p)) for p in self.problems("train")]
        if not pairs:
            raise ConfigError("task.n_train: the warm-start set is empty; raise task.n_train")
        return completion_examples(pairs, int(self.cfg.task.block_size), self.tokenizer)

    # -- evaluation -----------------------------------------------------------------------
    def evaluate(self, stage: str, model, tokenizer, run_dir: Path, tracker) -> dict:
        self.tokenizer = tokenizer
        return run_eval_verify(self, model, run_dir, tracker)


__all__ = ["ProceduralTask"]


def _check_nonempty(t) -> None:
    """Settings under which eval_verify would evaluate or report nothing."""
    check_key(len(t.eval_splits) > 0, "task.eval_splits", "is empty: eval_verify would evaluate nothing; "
              "e.g. task.eval_splits=[test,ood]")
    check_key(len(t.pass_k) > 0, "task.pass_k", "is empty: no pass@k would be reported; e.g. task.pass_k=[1]")
    check_key(t.show_failures >= 0, "task.show_failures", f"must be >= 0, got {t.show_failures}")
