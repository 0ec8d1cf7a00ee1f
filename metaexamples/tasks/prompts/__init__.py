"""task=prompts: a researcher's own prompts (a JSONL file) and reward function.

task.path: one JSON object per line with a prompt (task.prompt_key), optionally a reference
answer (task.answer_key: what SFT trains on), and anything else (the reward function sees the
whole row). task.reward: `module:function` or `path/to/file.py:function`, called as
fn(completion_text, row) in this process (the researcher's code, not the model's) and returning
a float in [0, 1] (correct at 1, partial between, wrong at 0), a verdict string ("correct" = 1,
any other = 0 under that name), a (reward, verdict) pair, or a Verdict. A reward that raises is
that sample's `reward_error`, one that returns anything else (a non-number, NaN, outside
[0, 1]) its `reward_invalid`: both reward 0, with the error in `extracted`; the run goes on.
Splits: by a field (task.split_key: train / val / test / ood per row) or by seeded fractions
(task.fractions). Stages: data, train (any method), eval_verify, eval_sets.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import numbers
import random
import sys
from pathlib import Path

from omegaconf import OmegaConf

from metaexamples.data.cache import keyed_folder
from metaexamples.errors import ConfigError, check_key
from metaexamples.io import file_sha256
from metaexamples.tasks import ReportTable, Verdict
from metaexamples.tasks.prompts.config import PromptsConfig
from metaexamples.tasks.prompts.qa import SPLITS, QATask, graded

DATA_FORMAT = 1

REPORT_COLUMNS = [
    ("Run", "run"), ("File", "path"), ("Reward", "reward"), ("Model", "model"), ("Seed", "seed"),
    ("Test reward", "verify.test.accuracy"), ("Test solved", "verify.test.solved"), ("pass@1", "verify.test.pass@1"),
    ("Echo baseline", "verify.test.baselines.echo"), ("Constant baseline", "verify.test.baselines.constant"),
    ("Correct", "verify.test.verdicts.correct"), ("Partial", "verify.test.verdicts.partial"),
    ("Wrong", "verify.test.verdicts.wrong"), ("Reward errors", "verify.test.verdicts.reward_error"),
    ("Invalid rewards", "verify.test.verdicts.reward_invalid"),
]


def load_reward(spec: str):
    """The function named by `module:function` or `file.py:function`; ConfigError naming
    task.reward if it cannot be imported or is not callable."""
    module, sep, fn = str(spec).rpartition(":")
    check_key(bool(sep and module and fn), "task.reward", f"expected module:function or file.py:function, got {spec!r}")
    try:
        if module.endswith(".py"):
            path = Path(module).expanduser().resolve()
            check_key(path.is_file(), "task.reward", f"{path}: no such file")
            spec_obj = importlib.util.spec_from_file_location(f"metaexamples_reward_{path.stem}", path)
            mod = importlib.util.module_from_spec(spec_obj)
            spec_obj.loader.exec_module(mod)
        else:
            if "" not in sys.path:  # a module beside the working directory, as `python -m` would find it
                sys.path.insert(0, "")
            mod = importlib.import_module(module)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to import the user's module is bad input
        raise ConfigError(f"task.reward: cannot import {module} ({type(exc).__name__}: {exc})") from None
    func = getattr(mod, fn, None)
    check_key(callable(func), "task.reward", f"{module} has no function {fn!r}")
    return func


def read_rows(cfg_task) -> list[dict]:
    """The JSONL file's rows (numbered from 1), each with a non-empty prompt string: else one
    line naming task.path and the line."""
    check_key(cfg_task.path is not None, "task.path", "required: a JSONL file of prompts (task.path=<file.jsonl>)")
    path = Path(cfg_task.path).expanduser()
    check_key(path.is_file(), "task.path", f"{path}: no such file")
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"task.path: {path} line {n} is not JSON ({exc})") from None
            check_key(isinstance(row, dict), "task.path", f"{path} line {n} is not a JSON object")
            prompt = row.get(cfg_task.prompt_key)
            check_key(isinstance(prompt, str) and prompt.strip() != "", "task.path",
                      f"{path} line {n} has no prompt (a non-empty string under {cfg_task.prompt_key!r})")
            rows.append({"line": n, "row": row})
    check_key(bool(rows), "task.path", f"{path} has no rows")
    first: dict[str, int] = {}
    for line in rows:  # problems are told apart by id (pass@k, the samples files)
        if "id" in line["row"]:
            rid = str(line["row"]["id"])
            check_key(rid not in first, "task.path",
                      f"{path} line {line['line']} repeats id {rid!r} of line {first.get(rid)}")
            first[rid] = line["line"]
    return rows


def make_splits(lines: list[dict], t, seed: int) -> dict[str, list[dict]]:
    """Rows by split: by the split field, or seeded fractions (train, val, test; no ood)."""
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    if t.split_key is None:
        order = list(range(len(lines)))
        random.Random(f"metaexamples.prompts/{seed}").shuffle(order)
        fractions = OmegaConf.to_container(t.fractions, resolve=True)
        start = 0
        for split in ("train", "val", "test"):
            end = len(order) if split == "test" else start + round(fractions.get(split, 0.0) * len(order))
            out[split] = [lines[i] for i in order[start:end]]
            start = end
    else:
        for line in lines:
            out[line["row"][t.split_key]].append(line)
    return {s: [_stored(line, t) for line in rows] for s, rows in out.items()}


def _stored(line: dict, t) -> dict:
    row = line["row"]
    return {"id": str(row.get("id", f"line-{line['line']}")), "prompt": row[t.prompt_key],
            "answer": row.get(t.answer_key), "group": row.get(t.group_key) if t.group_key else None,
            "level": row.get(t.level_key) if t.level_key else None, "row": row}


def as_verdict(value) -> Verdict:
    """What a reward function returned, as a Verdict (reward_invalid where it is not one of
    the accepted forms)."""
    if isinstance(value, Verdict):
        value = (value.reward, value.kind)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        reward = value[0]
        if isinstance(reward, numbers.Real) and not isinstance(reward, bool) and 0.0 <= float(reward) <= 1.0:
            return Verdict(reward=float(reward), kind=value[1])
    elif isinstance(value, str) and value:
        return Verdict(reward=float(value == "correct"), kind=value)
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)) and 0.0 <= float(value) <= 1.0:
        return graded(float(value), None)
    return Verdict(reward=0.0, kind="reward_invalid", extracted=f"returned {value!r}"[:200])


class PromptsTask(QATask):
    name = "prompts"
    config_schema = PromptsConfig
    report_tables = [ReportTable("Prompts and a reward function", "verify", REPORT_COLUMNS)]
    summary_keys = [("test mean reward", "verify.test.accuracy"), ("test solved", "verify.test.solved"),
                    ("test pass@1", "verify.test.pass@1")]

    def __init__(self, cfg, tokenizer=None, cache: Path | None = None) -> None:
        super().__init__(cfg, tokenizer, cache)
        self._reward = None

    # -- identity -------------------------------------------------------------------------
    def run_name(self) -> str:
        return f"prompts-{Path(str(self.cfg.task.path)).stem}-{self.cfg.model.name}"

    def header(self) -> dict:
        return {"path": self.cfg.task.path, "reward": self.cfg.task.reward}

    def tags(self) -> list[str]:
        return ["prompts"]

    @staticmethod
    def sort_key(row: dict) -> tuple:
        return (str(row.get("path") or ""), row.get("model") or "")

    @classmethod
    def check_config(cls, cfg) -> None:
        t = cfg.task
        lines = read_rows(t)
        check_key(t.reward is not None, "task.reward", "required: module:function or file.py:function")
        load_reward(t.reward)
        if t.split_key is not None:
            for line in lines:
                check_key(line["row"].get(t.split_key) in SPLITS, "task.split_key",
                          f"{t.path} line {line['line']}: {t.split_key}={line['row'].get(t.split_key)!r}, "
                          f"expected one of {', '.join(SPLITS)}")
        else:
            fractions = OmegaConf.to_container(t.fractions, resolve=True)
            for split, share in fractions.items():
                check_key(split in ("train", "val", "test"), f"task.fractions.{split}",
                          "unknown split; fractions are of train, val, test (ood only by task.split_key)")
                check_key(0 <= share <= 1, f"task.fractions.{split}", f"must be in [0, 1], got {share}")
            check_key(sum(fractions.values()) <= 1 + 1e-9, "task.fractions",
                      f"must sum to at most 1 (test gets the rest), got {sum(fractions.values()):g}")
        if t.level_key is not None:
            for line in lines:
                value = line["row"].get(t.level_key)
                check_key(isinstance(value, int) and not isinstance(value, bool), "task.level_key",
                          f"{t.path} line {line['line']}: {t.level_key}={value!r} is not an integer")
        sizes = {s: len(rows) for s, rows in make_splits(lines, t, int(cfg.seed)).items()}
        cls.check_qa_config(cfg, sizes)

    # -- data -----------------------------------------------------------------------------
    def data_key(self) -> dict:
        t = self.cfg.task
        keys = ("prompt_key", "answer_key", "split_key", "group_key", "level_key")
        return {"format": DATA_FORMAT, "file_sha256": file_sha256(Path(t.path).expanduser()),
                **{k: t[k] for k in keys}, "fractions": OmegaConf.to_container(t.fractions, resolve=True),
                "seed": int(self.cfg.seed)}

    def _folder(self) -> Path:
        return keyed_folder(self.cache, f"prompts-{Path(str(self.cfg.task.path)).stem}"[:60], self.data_key())

    def prepare_data(self) -> Path:
        t = self.cfg.task
        return self.splits.prepare(DATA_FORMAT, self.data_key(),
                                   lambda: make_splits(read_rows(t), t, int(self.cfg.seed)))

    def data_description(self) -> str:
        return f"task=prompts path={self.cfg.task.path}"

    # -- prompts and the reward -------------------------------------------------------------
    def system_prompt(self) -> str | None:
        return self.cfg.task.system_prompt

    def stop_text(self) -> str | None:
        return self.cfg.task.stop

    def judge_many(self, rows: list[dict], texts: list[str]) -> list[Verdict]:
        if self._reward is None:
            self._reward = load_reward(self.cfg.task.reward)
        out = []
        for row, text in zip(rows, texts):
            try:
                value = self._reward(text, row["row"])
            except Exception as exc:  # noqa: BLE001 - the user's reward failing on one sample is that sample's verdict
                out.append(Verdict(reward=0.0, kind="reward_error", extracted=f"{type(exc).__name__}: {exc}"[:200]))
                continue
            out.append(as_verdict(value))
        return out


__all__ = ["PromptsTask", "as_verdict", "load_reward"]
