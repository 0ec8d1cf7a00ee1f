"""task=gym: any Reasoning Gym dataset (or a weighted mixture) as a task with a verifier.

Data: splits.make_splits (train/val/test at task.levels, ood at the harder task.ood_levels),
cached with a manifest like every task's data. Prompt: Reasoning Gym's own system prompt
(task.system_prompt names one of reasoning_gym.utils.SYSTEM_PROMPTS; default "direct"), which
asks for the answer between <answer> and </answer>, then the question. Verifier: the answer is
read with reasoning_gym.utils.extract_answer (the last <answer>...</answer>, as the library's
own eval.py does) and scored by the dataset's own score_answer, unchanged: a reward in [0, 1];
verdicts correct (1), partial (between), wrong (0), no_answer (no tags), score_error (the
library's scorer raised). Stages: data, train (any method; SFT on <answer>reference</answer>),
eval_verify, eval_sets.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from metaexamples.data.cache import keyed_folder
from metaexamples.errors import check_key
from metaexamples.tasks import ReportTable, Verdict
from metaexamples.tasks.gym import library
from metaexamples.tasks.gym.config import GymConfig
from metaexamples.tasks.gym.splits import make_splits
from metaexamples.tasks.prompts.qa import SPLITS, QATask, graded

DATA_FORMAT = 2  # bump when the drawn rows change for the same config (2: levels uniform over rows)

REPORT_COLUMNS = [
    ("Run", "run"), ("Datasets", "datasets"), ("Levels", "levels"), ("OOD levels", "ood_levels"), ("Model", "model"),
    ("Seed", "seed"), ("Test reward", "verify.test.accuracy"), ("Test solved", "verify.test.solved"),
    ("pass@1", "verify.test.pass@1"), ("pass@10", "verify.test.pass@10"), ("OOD reward", "verify.ood.accuracy"),
    ("OOD solved", "verify.ood.solved"), ("Echo baseline", "verify.test.baselines.echo"),
    ("Constant baseline", "verify.test.baselines.constant"), ("Correct", "verify.test.verdicts.correct"),
    ("Partial", "verify.test.verdicts.partial"), ("Wrong", "verify.test.verdicts.wrong"),
    ("No answer", "verify.test.verdicts.no_answer"),
]


def mixture_of(t) -> dict[str, float]:
    """{dataset: weight}: task.datasets if given, else {task.dataset: 1.0}."""
    mix = OmegaConf.to_container(t.datasets, resolve=True) if t.datasets else {}
    return {str(k): float(v) for k, v in mix.items()} if mix else {str(t.dataset): 1.0}


def configs_of(t, mixture: dict[str, float]) -> dict[str, dict]:
    """Each dataset's configuration keys: task.config (one dataset), task.config.<name> (a mixture)."""
    config = OmegaConf.to_container(t.config, resolve=True) if t.config else {}
    if len(mixture) == 1 and not t.datasets:
        return {next(iter(mixture)): config}
    return {n: dict(config.get(n) or {}) for n in mixture}


def _levels(value, key: str) -> list:
    """[lo, hi] -> [lo, ..., hi]; null -> [None]."""
    if value is None:
        return [None]
    value = list(value)
    check_key(len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value), key,
              f"expected [lo, hi] (integers) or null, got {value}")
    check_key(0 <= value[0] <= value[1], key, f"expected 0 <= lo <= hi, got {value}")
    return list(range(value[0], value[1] + 1))


class GymTask(QATask):
    name = "gym"
    config_schema = GymConfig
    report_tables = [ReportTable("Reasoning Gym", "verify", REPORT_COLUMNS)]
    summary_keys = [("test mean reward", "verify.test.accuracy"), ("test solved", "verify.test.solved"),
                    ("test pass@1", "verify.test.pass@1"), ("ood mean reward", "verify.ood.accuracy")]

    # -- identity -------------------------------------------------------------------------
    def run_name(self) -> str:
        return f"gym-{'+'.join(mixture_of(self.cfg.task))}-{self.cfg.model.name}"

    def header(self) -> dict:
        t = self.cfg.task
        mix = mixture_of(t)
        names = ", ".join(mix) if len(mix) == 1 else ", ".join(f"{n} {w:g}" for n, w in mix.items())
        return {"datasets": names, "levels": self.levels(), "ood_levels": self.ood_levels()}

    def tags(self) -> list[str]:
        return ["gym", *mixture_of(self.cfg.task)]

    @staticmethod
    def sort_key(row: dict) -> tuple:
        return (str(row.get("datasets") or ""), row.get("model") or "")

    def levels(self) -> list:
        return _levels(self.cfg.task.levels, "task.levels")

    def ood_levels(self) -> list:
        """task.ood_levels, or the level above task.levels; [] where there is none."""
        t = self.cfg.task
        if t.ood_levels is not None:
            return _levels(t.ood_levels, "task.ood_levels")
        if t.levels is None:
            return []
        return [self.levels()[-1] + 1]

    @classmethod
    def check_config(cls, cfg) -> None:
        t = cfg.task
        task = cls(cfg)
        check_key(t.datasets is None or OmegaConf.is_dict(t.datasets), "task.datasets",
                  f"expected a mapping {{name: weight}}, got {t.datasets!r}")
        check_key(t.config is None or OmegaConf.is_dict(t.config), "task.config",
                  f"expected a mapping {{key: value}}, got {t.config!r}")
        for name, weight in (t.datasets or {}).items():
            check_key(isinstance(weight, (int, float)) and not isinstance(weight, bool), f"task.datasets.{name}",
                      f"weight must be a number, got {weight!r}")
        mixture = mixture_of(t)
        for name, weight in mixture.items():
            library.check_name(name, f"task.datasets.{name}" if t.datasets else "task.dataset")
            check_key(weight > 0, f"task.datasets.{name}", f"weight must be positive, got {weight:g}")
        if t.datasets and t.config:
            for name in OmegaConf.to_container(t.config, resolve=True):
                check_key(name in mixture, f"task.config.{name}",
                          "not a dataset of the mixture; with task.datasets, task.config.<dataset>.<key> configures one")
        configs = configs_of(t, mixture)
        levels, ood = task.levels(), task.ood_levels()
        check_key(t.system_prompt in cls.system_prompts(), "task.system_prompt",
                  f"unknown {t.system_prompt!r}; Reasoning Gym's: {', '.join(cls.system_prompts())}")
        for split in SPLITS:
            check_key(t[f"n_{split}"] >= 0, f"task.n_{split}", f"must be >= 0, got {t[f'n_{split}']}")
        for name in mixture:
            top = library.max_level(name)
            if levels != [None]:
                check_key(top is not None, "task.levels",
                          f"{name} has no difficulty levels (no Reasoning Gym curriculum); set task.levels=null")
                check_key(levels[-1] <= top, "task.levels",
                          f"{name}'s curriculum has levels 0-{top}, got [{levels[0]}, {levels[-1]}]")
            for level in levels:
                library.check_config(name, configs[name], "task.config" + (f".{name}" if t.datasets else ""), level)
            if t.n_ood > 0:
                check_key(bool(ood), "task.n_ood", "task.levels=null leaves no harder configuration; "
                          "set task.ood_levels=[lo,hi] or task.n_ood=0")
                check_key(top is not None and ood[-1] <= top, "task.ood_levels",
                          f"{name} has {'no curriculum' if top is None else f'levels 0-{top}'}; "
                          f"ood needs {ood} (lower task.levels, or task.n_ood=0)")
                if levels != [None]:
                    check_key(ood[0] > levels[-1], "task.ood_levels",
                              f"[{ood[0]}, {ood[-1]}] must lie above task.levels [{levels[0]}, {levels[-1]}]")
                for level in ood:
                    library.check_config(name, configs[name], "task.config", level)
        cls.check_qa_config(cfg, {s: int(t[f"n_{s}"]) for s in SPLITS})

    @staticmethod
    def system_prompts() -> list[str]:
        from reasoning_gym.utils import SYSTEM_PROMPTS

        return sorted(SYSTEM_PROMPTS)

    # -- data -----------------------------------------------------------------------------
    def sizes(self) -> dict[str, int]:
        return {s: int(self.cfg.task[f"n_{s}"]) for s in SPLITS}

    def data_key(self) -> dict:
        from importlib.metadata import version

        mixture = mixture_of(self.cfg.task)
        return {"format": DATA_FORMAT, "library": version("reasoning-gym"), "datasets": mixture,
                "config": configs_of(self.cfg.task, mixture), "levels": self.levels(), "ood_levels": self.ood_levels(),
                "sizes": self.sizes(), "seed": int(self.cfg.seed)}

    def _folder(self) -> Path:
        return keyed_folder(self.cache, "gym-" + "+".join(mixture_of(self.cfg.task))[:60], self.data_key())

    def prepare_data(self) -> Path:
        key = self.data_key()
        return self.splits.prepare(DATA_FORMAT, key, lambda: make_splits(
            key["datasets"], key["config"], key["levels"], key["ood_levels"] or [None], key["sizes"], key["seed"]))

    def data_description(self) -> str:
        return f"task=gym datasets={'+'.join(mixture_of(self.cfg.task))}"

    # -- prompts and the verifier -----------------------------------------------------------
    def system_prompt(self) -> str:
        from reasoning_gym.utils import SYSTEM_PROMPTS

        return SYSTEM_PROMPTS[self.cfg.task.system_prompt]

    def stop_text(self) -> str:
        return "</answer>"

    def wrap(self, answer: str) -> str:
        return f"<answer>{answer}</answer>"

    def target_text(self, row: dict) -> str | None:
        return None if row.get("answer") is None else self.wrap(row["answer"])

    def judge_many(self, rows: list[dict], texts: list[str]) -> list[Verdict]:
        from reasoning_gym.utils import extract_answer

        configs = configs_of(self.cfg.task, mixture_of(self.cfg.task))
        out = []
        for row, text in zip(rows, texts):
            answer = extract_answer(text)
            if answer is None:
                out.append(Verdict(reward=0.0, kind="no_answer", extracted=None))
                continue
            try:
                reward = float(library.scorer(row["group"], configs.get(row["group"], {}), row["level"])(answer, row["entry"]))
            except Exception as exc:  # noqa: BLE001 - the library's scorer failing on one answer is that answer's verdict
                out.append(Verdict(reward=0.0, kind="score_error", extracted=f"{answer} ({type(exc).__name__}: {exc})"))
                continue
            out.append(graded(reward, answer))
        return out


__all__ = ["GymTask"]
