"""task=numeric: arithmetic expressions and unit conversions answered by purpose-built numeric
models (`model=numeric_token_only`, `numeric_token_only_reversed`, `numeric_hybrid`,
`numeric_hybrid_log_linear`, `numeric_hybrid_algebraic`, `numeric_fluxem`;
metaexamples/models/numeric), scored by exact match (numeric answers only), relative error,
dimensional correctness and unit match, and can_add boolean accuracy (docs/tasks/numeric.md).

Data (`data.py`, ground truth exact or from pint, `units.py`): `task.dataset` = arithmetic |
units, `task.preset` = small | full, split sizes overridable per split (`task.sizes`); the
data stage writes each split as JSONL into a content-keyed cache folder with a manifest of
sha256s (same seed, byte-identical files; no test question in train). Training: method=sft
through the one loop, on batches and an objective this task supplies for its models
(`sft_setup`). Evaluation: stage eval_numeric (section `numeric`, `evaluate.py`).

The task takes only numeric models (`model_kinds`); any other task refuses them, both with one
line naming `model` (config.validate compares `models.loading.model_kind` with the task's
`model_kinds`).
"""

from __future__ import annotations

from pathlib import Path

from metaexamples.data.cache import keyed_folder
from metaexamples.errors import ConfigError, check_key
from metaexamples.tasks import JsonlSplitsData, ReportTable, Task
from metaexamples.tasks.numeric.config import NumericConfig

# This task's data, training and evaluation modules are imported inside the methods that use
# them: they load the numeric models package (transformers model classes, seconds of start-up)
# that every CLI run would otherwise pay for, numeric or not.

DATA_FORMAT = 1  # bump when the generated problems change for the same config
CUSTOM_SPLIT = "custom"  # task.questions, scored at evaluation (not cached, never trained on)

REPORT_COLUMNS = [
    ("Run", "run"), ("Dataset", "dataset"), ("Model", "model"), ("Readout", "numeric.readout"), ("Preset", "preset"),
    ("Seed", "seed"),
    ("test_id EM", "numeric.test_id.exact_match"), ("test_id rel err", "numeric.test_id.rel_error_median"),
    ("ood_magnitude EM", "numeric.test_ood_magnitude.exact_match"),
    ("ood_magnitude rel err", "numeric.test_ood_magnitude.rel_error_median"),
    ("ood_length/types", "numeric.ood_structure.split"),
    ("ood_length/types EM", "numeric.ood_structure.exact_match"),
    ("ood_length/types rel err", "numeric.ood_structure.rel_error_median"),
    ("dim. correct (ood_types)", "numeric.test_ood_types.dimensional_correctness"),
    ("unit match (ood_types)", "numeric.test_ood_types.unit_match"),
    ("can_add acc (test_id)", "numeric.test_id.bool_accuracy"),
    ("can_add acc (ood_types)", "numeric.test_ood_types.bool_accuracy"),
    ("unparseable", "numeric.n_unparseable"),
]


class NumericTask(JsonlSplitsData, Task):
    name = "numeric"
    config_schema = NumericConfig
    model_kinds = ("numeric",)
    eval_stages = {"eval_numeric": "numeric"}
    report_tables = [ReportTable("Numeric", "numeric", REPORT_COLUMNS)]
    summary_keys = [("test_id exact match", "numeric.test_id.exact_match"),
                    ("test_id rel err (median)", "numeric.test_id.rel_error_median"),
                    ("ood_magnitude exact match", "numeric.test_ood_magnitude.exact_match"),
                    ("ood_magnitude rel err (median)", "numeric.test_ood_magnitude.rel_error_median"),
                    ("ood_length/types exact match", "numeric.ood_structure.exact_match"),
                    ("dim. correct (ood_types)", "numeric.test_ood_types.dimensional_correctness"),
                    ("unit match (ood_types)", "numeric.test_ood_types.unit_match"),
                    ("can_add acc (ood_types)", "numeric.test_ood_types.bool_accuracy")]

    def __init__(self, cfg, tokenizer=None, cache: Path | None = None) -> None:
        super().__init__(cfg, tokenizer, cache)
        self._custom: list[dict] | None = None

    # -- identity -------------------------------------------------------------------------
    def run_name(self) -> str:
        return f"numeric-{self.cfg.task.dataset}-{self.cfg.model.name}"

    def header(self) -> dict:
        t = self.cfg.task
        m = self.cfg.model
        arch = m.get("arch") or {}
        hybrid = m.get("source") == "numeric" and "hybrid" in str(arch.get("model_type", m.get("name")))
        return {"dataset": t.dataset, "preset": t.preset,
                "readout": (arch.get("readout") or "regression") if hybrid else None}

    def tags(self) -> list[str]:
        return ["numeric", str(self.cfg.task.dataset), str(self.cfg.task.preset)]

    @staticmethod
    def sort_key(row: dict) -> tuple:
        return (row.get("dataset") or "", row.get("model") or "", row.get("preset") or "")

    @classmethod
    def report_plots(cls, rows: list[dict], out_dir: Path) -> list[str]:
        from metaexamples.tasks.numeric.evaluate import report_plot

        return report_plot(rows, out_dir)

    @classmethod
    def check_config(cls, cfg) -> None:
        from metaexamples.tasks.numeric.data import DATASETS, PRESETS, SPLITS, answer_question, resolve_spec

        t = cfg.task
        check_key(t.dataset in DATASETS, "task.dataset",
                  f"unknown dataset {t.dataset!r}; available: {', '.join(DATASETS)}")
        check_key(t.preset in PRESETS, "task.preset", f"unknown preset {t.preset!r}; available: {', '.join(PRESETS)}")
        spec = resolve_spec(t.preset, cls.spec_of(t))
        if t.dataset == "arithmetic":
            check_key(spec["ood_length"][0] > spec["max_ops"], "task.ood_length",
                      f"{list(spec['ood_length'])} must be longer than training's 1..{spec['max_ops']} operations "
                      "(task.max_ops)")
        splits = SPLITS[t.dataset]
        for split, n in (t.sizes or {}).items():
            if n is None:
                continue
            check_key(split in splits or split == "test", f"task.sizes.{split}",
                      f"{split} is not a split of task.dataset={t.dataset} (its splits: {', '.join(splits)})")
            check_key(isinstance(n, int) and not isinstance(n, bool) and n > 0, f"task.sizes.{split}",
                      f"split {split!r} would be empty ({n!r}); sizes must be positive")
        for split in t.eval_splits or []:
            check_key(split in splits[1:] or split == CUSTOM_SPLIT, "task.eval_splits",
                      f"unknown split {split!r} for task.dataset={t.dataset}; available: {', '.join(splits[1:])}, "
                      f"{CUSTOM_SPLIT}")
        if t.eval_splits is not None:
            check_key(len(t.eval_splits) > 0, "task.eval_splits", "is empty; null scores every test split")
            check_key(CUSTOM_SPLIT not in t.eval_splits or len(t.questions) > 0, "task.eval_splits",
                      f"split {CUSTOM_SPLIT!r} is empty: it holds task.questions, and there are none")
        for i, question in enumerate(t.questions):
            try:
                answer_question(question)
            except ConfigError as exc:
                raise ConfigError(f"task.questions[{i}]: {exc}") from None
        check_key(not cfg.train.lora.enabled, "train.lora.enabled",
                  "LoRA is for Hugging Face causal LMs; the numeric models train in full (set it to false)")

    # -- data -----------------------------------------------------------------------------
    @staticmethod
    def spec_of(t) -> dict:
        """The dataset options as set in task.* (None = default), plain Python values."""
        from omegaconf import OmegaConf

        from metaexamples.tasks.numeric.data import SPEC_DEFAULTS

        out = {}
        for key in SPEC_DEFAULTS:
            value = t.get(key)
            out[key] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        return out

    def spec(self) -> dict:
        from metaexamples.tasks.numeric.data import resolve_spec

        return resolve_spec(self.cfg.task.preset, self.spec_of(self.cfg.task))

    def sizes(self) -> dict[str, int]:
        from metaexamples.tasks.numeric.data import PRESETS, SPLITS

        t = self.cfg.task
        preset = PRESETS[t.preset]
        sizes = {k: v for k, v in (t.sizes or {}).items() if v is not None}
        test = int(sizes.pop("test", preset["test"]))  # task.sizes.test: every test split
        out = {s: int(preset["train"]) if s == "train" else test for s in SPLITS[t.dataset]}
        out.update({str(k): int(v) for k, v in sizes.items() if k in out})
        return out

    def data_key(self) -> dict:
        t = self.cfg.task
        spec = {k: list(v) if isinstance(v, tuple) else v for k, v in self.spec().items()}
        return {"format": DATA_FORMAT, "dataset": t.dataset, "preset": t.preset, "sizes": self.sizes(),
                "spec": spec, "seed": int(self.cfg.seed)}

    def _folder(self) -> Path:
        return keyed_folder(self.cache, f"numeric-{self.cfg.task.dataset}", self.data_key())

    def data_description(self) -> str:
        return f"task=numeric dataset={self.cfg.task.dataset}"

    def prepare_data(self) -> Path:
        from metaexamples.tasks.numeric.data import make_numeric_splits

        key = self.data_key()
        return self.splits.prepare(DATA_FORMAT, key, lambda: make_numeric_splits(
            key["dataset"], key["preset"], key["seed"], sizes=key["sizes"], spec=key["spec"]))

    def data_summary(self) -> dict:
        manifest = self.splits.manifest()
        return {"folder": str(self.folder), "dataset": self.cfg.task.dataset, "preset": self.cfg.task.preset,
                "counts": manifest["counts"], "files": manifest["files"]}

    def rows(self, split: str) -> list[dict]:
        """The problems of a split (dicts, `data.py`); `custom` = task.questions."""
        from metaexamples.tasks.numeric.data import answer_question

        if split != CUSTOM_SPLIT:
            return super().rows(split)
        if self._custom is None:
            self._custom = [{"id": f"custom-{i:05d}", "dataset": self.cfg.task.dataset, "split": split,
                             "question": q, **answer_question(q)} for i, q in enumerate(self.cfg.task.questions)]
        return self._custom

    def eval_splits(self) -> list[str]:
        from metaexamples.tasks.numeric.data import SPLITS

        t = self.cfg.task
        splits = list(t.eval_splits) if t.eval_splits is not None else list(SPLITS[t.dataset][1:])
        if t.questions and CUSTOM_SPLIT not in splits:
            splits.append(CUSTOM_SPLIT)
        return splits

    # -- training -------------------------------------------------------------------------
    def check_model(self, model, tokenizer) -> None:
        from metaexamples.models.numeric import NumericHybridModel, NumericTokenOnlyForCausalLM

        if not isinstance(model, (NumericHybridModel, NumericTokenOnlyForCausalLM)):
            raise ConfigError(f"model: task=numeric trains the numeric models (model=numeric_token_only, "
                              f"numeric_hybrid, numeric_fluxem, ...), not {type(model).__name__}")

    def sft_setup(self, model, tokenizer, cfg):
        """Every training problem collated for this model once; micro-batches addressed by
        (step, micro-batch, rank) like BlockBatches; the objective is the model's own loss."""
        from metaexamples.launch import process_state
        from metaexamples.tasks.numeric.training import numeric_sft_setup

        t = cfg.train
        return numeric_sft_setup(model, self.rows("train"), int(t.batch_size), int(t.grad_accum),
                                 process_state().num_processes, int(cfg.seed))

    # -- evaluation -----------------------------------------------------------------------
    def evaluate(self, stage: str, model, tokenizer, run_dir: Path, tracker) -> dict:
        from metaexamples.tasks.numeric.evaluate import run_eval_numeric

        self.check_model(model, tokenizer)
        return run_eval_numeric(self, model, Path(run_dir), tracker)


__all__ = ["NumericTask"]
