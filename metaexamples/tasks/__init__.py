"""Tasks: what the model is asked and how an answer is judged (the `task` config group).

Two contracts and one registry. Shared code (the pipeline, results.json, W&B, the sweep
report, the training methods) talks to a task only through them and never branches on a
task's name. A new task is one package here (a `Task` or `VerifiedTask` subclass that sets
`name`) plus one YAML in conf/task/.

`Task`, what every task gives:
- its data: `prepare_data()` builds (or reuses) its cached data folder, `load_data()` reads an
  existing one; `data_summary()` is results.json's `data` section;
- what supervised fine-tuning reads (`sft_data()`, `sft_setup()`) and an optional monitor;
- its evaluation stages (`eval_stages`: stage name -> results.json section) and `evaluate`;
- its identity (run name, results header fields, W&B tags) and its report tables.

`VerifiedTask(Task)`, a task whose answers a verifier judges, adds problems per split
(`problems(split)`: prompt token ids, expected answer, metadata such as kind and difficulty),
how to sample them (`sampling(dec)`) and the *verifier*, `verify(problem, completion) ->
Verdict` (a reward in [0, 1] and a named verdict kind): what the self-improvement and diversity
methods train on and the shared eval_sets stage measures. Methods that need one test
`issubclass(task_cls, VerifiedTask)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from metaexamples.data.jsonl_splits import JsonlSplits
from metaexamples.data.mixing import SFTData
from metaexamples.errors import ConfigError
from metaexamples.evaluation.problems import Problem, SamplingSpec, Verdict
from metaexamples.launch import process_state
from metaexamples.registry import Registry
from metaexamples.training import BlockBatches
from metaexamples.training.loss import CausalLMLoss


@dataclass
class ReportTable:
    """A sweep-report table: rows are jobs of this task that have `section` in results.json;
    columns are (header, dotted results key)."""

    title: str
    section: str
    columns: list[tuple[str, str]]


@dataclass
class ReportSection:
    """A sweep-report section a task computes from its jobs' rows (e.g. statistics over seeds):
    a title, an optional table (headers, rows of cells) and markdown lines after it."""

    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class Task:
    """The contract. Subclasses set `name`, `eval_stages` and `report_tables` and implement
    the methods below; the defaults say what is optional."""

    name: ClassVar[str] = ""
    config_schema: ClassVar[type | None] = None  # dataclass of the task's keys (task.*); None = name only
    group_schemas: ClassVar[dict[str, type]] = {}  # schemas of the task's own config groups
    eval_stages: ClassVar[dict[str, str]] = {}  # stage -> results.json section (also the W&B prefix)
    report_tables: ClassVar[list[ReportTable]] = []
    # the key figures printed when a run ends: (label, dotted results.json key); empty = the
    # first figures of each report table
    summary_keys: ClassVar[list[tuple[str, str]]] = []
    constraints: ClassVar[tuple[str, ...]] = ("none",)  # decoding.constraint values it understands
    # kinds of model it trains and evaluates (models.loading.model_kind: "causal_lm" = Hugging Face
    # causal LMs, "numeric" = task=numeric's own models); config.validate refuses any other
    model_kinds: ClassVar[tuple[str, ...]] = ("causal_lm",)

    def __init__(self, cfg, tokenizer=None, cache: Path | None = None) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.cache = Path(cache) if cache is not None else None

    # -- identity -------------------------------------------------------------------------
    def run_name(self) -> str:
        raise NotImplementedError

    def header(self) -> dict:
        """Fields that say what ran, for results.json and the report (beside model, seed...)."""
        return {}

    def tags(self) -> list[str]:
        return [self.name]

    @staticmethod
    def sort_key(row: dict) -> tuple:
        """Order of this task's rows (results.json dicts) in the sweep report."""
        return ()

    @classmethod
    def report_plots(cls, rows: list[dict], out_dir: Path) -> list[str]:
        """Draw this task's sweep plots from its jobs' results.json rows; return file names."""
        return []

    @classmethod
    def report_sections(cls, rows: list[dict]) -> list[ReportSection]:
        """Sections written after the task's tables in report.md (and logged to W&B)."""
        return []

    @classmethod
    def check_config(cls, cfg) -> None:
        """Range checks of the task's own keys (and of decoding as the task reads it), before
        any stage runs: raise a one-line ConfigError naming the key."""

    # -- data -----------------------------------------------------------------------------
    def prepare_data(self) -> Path:
        raise NotImplementedError

    def load_data(self) -> Path:
        """The existing data folder for this config; ConfigError naming the stage if missing."""
        raise NotImplementedError

    def data_summary(self) -> dict:
        return {}

    # -- training -------------------------------------------------------------------------
    def sft_data(self) -> SFTData:
        raise ConfigError(f"task={self.name}: has no supervised training data")

    def sft_setup(self, model, tokenizer, cfg):
        """What method=sft trains `model` on: (batches, objective factory). `batches.get(step,
        micro, rank)` is one micro-batch (a tensor, or a tuple of tensors), a function of its
        arguments so a resumed run continues exactly; `batches.blocks.shape[1]` is its width in
        tokens; `objective(model)` is an nn.Module whose forward(*batch) is the loss. Default:
        BlockBatches of `sft_data()` under the next-token loss; a task with its own models
        (task=numeric) supplies its own."""
        t, data = cfg.train, self.sft_data()
        batches = BlockBatches(data.blocks, int(t.batch_size), int(t.grad_accum), process_state().num_processes,
                               int(cfg.seed), labels=data.labels)
        return batches, CausalLMLoss

    def check_model(self, model, tokenizer) -> None:
        """Refuse a model whose tokenizer does not match the task's data."""

    def monitor(self, batch_size: int, eval_batches: int):
        """An in-training evaluation callable(model_wrapper, accelerator) -> metrics, or None."""
        return None

    # -- evaluation -----------------------------------------------------------------------
    @classmethod
    def all_eval_stages(cls) -> dict[str, str]:
        """Every evaluation stage a run of this task may name (a VerifiedTask adds the shared ones)."""
        return dict(cls.eval_stages)

    def evaluate(self, stage: str, model, tokenizer, run_dir: Path, tracker) -> dict:
        raise NotImplementedError


class VerifiedTask(Task):
    """A task whose answers a verifier judges: problems to sample from, how to sample a
    completion, and a verdict per completion. What the verifier-driven methods
    (expert_iteration, polychromic) and the shared eval_sets stage need; `methods` and
    `config` test for it with isinstance/issubclass, never by a task's name.

    Every verified task serves at least two splits of problems: "train" (what a method trains
    on) and "heldout" (what a method is judged on, never trained on)."""

    def problems(self, split: str, limit: int | None = None) -> list[Problem]:
        """The problems of a split (prompt token ids, expected answer, metadata such as kind and
        difficulty), in a fixed order; the first `limit` of them."""
        raise NotImplementedError

    def sampling(self, dec) -> SamplingSpec:
        """Stop sequence, constraint and budget for sampling completions under decoding `dec`."""
        raise NotImplementedError

    def verify(self, problem: Problem, completion_ids: list[int]) -> Verdict:
        """A reward in [0, 1] and a named verdict kind for one completion."""
        raise NotImplementedError

    def verify_many(self, problems: list[Problem], completions: list[list[int]]) -> list[Verdict]:
        """Verdicts in order; a task that can batch (a sandbox pool) overrides this."""
        return [self.verify(p, c) for p, c in zip(problems, completions)]

    def reference_completion(self, problem: Problem) -> list[int] | None:
        """A correct completion's token ids (the reference answer or program), where the task
        has one (procedural problems); None where it has none (grammar generation)."""
        return None

    def sample_metrics(self, rows: list[dict], seen: list = ()) -> dict:
        """Task-specific figures over verified samples (rows with "verdict", "extracted"),
        beside accuracy and pass@k; e.g. novelty for grammars. `seen`: the extracted outputs
        a method has fine-tuned the model on (its own training data, which novelty must count
        as known, like the task's training data)."""
        return {}

    def known_outputs(self, seen=()) -> frozenset | None:
        """The outputs novelty counts as known (the task's training outputs plus `seen`, what a
        method fine-tuned the model on); None where the task has no notion of novelty."""
        return None

    @classmethod
    def all_eval_stages(cls) -> dict[str, str]:
        """The task's own evaluation stages, plus the shared ones every verified task gets
        (eval_sets: n samples per held-out problem; pass@k and diversity)."""
        return {**cls.eval_stages, **SHARED_VERIFIER_STAGES}


# the shared evaluation stages every verified task gets: stage -> results.json section
SHARED_VERIFIER_STAGES = {"eval_sets": "sets"}


REGISTRY = Registry(Task, __name__, "task.name", "task")


def available() -> list[str]:
    return REGISTRY.available()


def task_class(name: str) -> type[Task]:
    return REGISTRY.get(name)


def make_task(cfg, tokenizer, cache: Path) -> Task:
    return task_class(cfg.task.name)(cfg, tokenizer, cache)


class JsonlSplitsData:
    """The data half of a task whose data is rows in JSONL splits (`splits`, a
    data.jsonl_splits.JsonlSplits): where it is, loading it, its summary and its rows. The
    task provides `_folder()` and `data_description()`; its `prepare_data` calls
    `self.splits.prepare`."""

    def _folder(self) -> Path:
        """The data folder for this config (`data.cache.keyed_folder`)."""
        raise NotImplementedError

    def data_description(self) -> str:
        """What the data is, for the error when it is missing (e.g. "task=prompts path=...")."""
        raise NotImplementedError

    @cached_property
    def splits(self) -> JsonlSplits:
        return JsonlSplits(self._folder, self.data_description)

    @property
    def folder(self) -> Path | None:
        return self.splits.folder

    def load_data(self) -> Path:
        return self.splits.load()

    def data_summary(self) -> dict:
        return {"folder": str(self.folder), "counts": self.splits.manifest()["counts"]}

    def rows(self, split: str) -> list[dict]:
        return self.splits.rows(split)


__all__ = ["JsonlSplitsData", "SHARED_VERIFIER_STAGES", "Problem", "ReportSection", "ReportTable", "SFTData", "SamplingSpec", "Task",
           "Verdict", "VerifiedTask", "available", "make_task", "task_class"]
