"""Contract tests across the axes: every task x method pair and every experiment preset
composes and validates or is refused in one line, and every option and key the docs (README,
docs/, the YAML comments) name exists, so the docs cannot drift from the configs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from metaexamples import methods, tasks
from metaexamples.config import validate
from metaexamples.errors import ConfigError
from metaexamples.schemas import MOVED_KEYS

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "metaexamples" / "conf"
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
YAML_FILES = sorted(CONF.rglob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
PAIRS = [(t, m) for t in tasks.available() for m in methods.available()]


def _validated_or_refused(cfg) -> None:
    try:
        validate(cfg)
    except ConfigError as exc:  # a refusal is fine, but one line naming what to change
        assert "\n" not in str(exc).strip() and str(exc).strip(), repr(str(exc))


@pytest.mark.parametrize("task,method", PAIRS, ids=[f"{t}-{m}" for t, m in PAIRS])
def test_every_task_method_pair_composes_and_validates_or_is_refused(compose_cfg, tmp_path, task, method):
    cfg = compose_cfg([f"task={task}", f"method={method}"], cache_dir=tmp_path)
    assert cfg.task.name == task and cfg.method.name == method
    _validated_or_refused(cfg)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_preset_composes_and_validates_or_is_refused(compose_cfg, tmp_path, experiment):
    cfg = compose_cfg([f"experiment={experiment}"], cache_dir=tmp_path)
    _validated_or_refused(cfg)


def _texts():
    for path in DOC_FILES + YAML_FILES:
        yield path.relative_to(ROOT), path.read_text(encoding="utf-8")


# `group=option` (also `+group=option` and `group=a,b` sweeps) where `group` is a config group
GROUP_OPTION = re.compile(r"(?<![\w./$-])\+?([a-z_]+(?:/[a-z_]+)?)=([A-Za-z0-9_,]+)(?![\w,*])")  # not a glob (meta_*)
# `a.b.c=` a dotted config key given a value on the command line
DOTTED_KEY = re.compile(r"(?<![\w./$+-])\+?((?:[a-z_]+\.)+[a-z_0-9]+)=(?!=)")


# Options the docs name on purpose although no shipped YAML has them
NOT_SHIPPED = {
    "grammar=g9": "the unknown-option error example",
    "grammar=bogus": "the refused-sweep error example",
    "experiment=arithmetic_tiny": "the unknown-preset error example",
    "task=reverse": "the worked new task on the Extending page",
    "method=dpo": "the worked new method on the Extending page",
    "model=tiny_wide": "a user's own preset in the Usage page's search-path example",
    "grammar=g2_long": "a user's own preset in the Usage page's search-path example",
}


def _groups() -> set[str]:
    found = {p.relative_to(CONF).parent.as_posix() for p in YAML_FILES}
    return {g for g in found if g not in (".", "") and not g.startswith("schema")}


def test_every_option_named_in_the_docs_exists():
    groups, missing = _groups(), []
    for where, text in _texts():
        for group, values in GROUP_OPTION.findall(text):
            if group not in groups:
                continue
            for value in values.split(","):
                named = f"{group}={value}"
                if value and named not in NOT_SHIPPED and not (CONF / group / f"{value}.yaml").exists():
                    missing.append(f"{where}: {group}={value}")
    assert not missing, "options named in the docs that do not exist:\n" + "\n".join(sorted(set(missing)))


def _all_composed(compose_cfg, cache_dir) -> list[DictConfig]:
    cfgs = [compose_cfg([f"task={t}", f"method={m}"], cache_dir=cache_dir) for t, m in PAIRS]
    cfgs += [compose_cfg([f"experiment={e}"], cache_dir=cache_dir) for e in EXPERIMENTS]
    return cfgs


def _exists(cfg, dotted: str) -> bool:
    node = cfg
    for part in dotted.split("."):
        if isinstance(node, DictConfig):
            if part not in node:
                # a free-form mapping (no schema keys, e.g. a dataset's own settings) takes any key
                return len(node) == 0 or not OmegaConf.is_struct(node)
            node = node._get_node(part)
            node = node if isinstance(node, (DictConfig, ListConfig)) else None
        else:
            return node is not None
    return True


def test_every_dotted_key_named_in_the_docs_exists(compose_cfg, tmp_path):
    cfgs = _all_composed(compose_cfg, tmp_path)
    tops = set().union(*(c.keys() for c in cfgs))
    missing = []
    for where, text in _texts():
        for key in set(DOTTED_KEY.findall(text)):
            top = key.split(".")[0]
            if top == "hydra" or top not in tops:  # Hydra's own keys, and dotted words in prose
                continue
            if key in MOVED_KEYS and f"moved to {MOVED_KEYS[key][0]}" in text:  # the refusal shown as such
                continue
            if not any(_exists(c, key) for c in cfgs):
                missing.append(f"{where}: {key}")
    assert not missing, "keys named in the docs that no config has:\n" + "\n".join(sorted(missing))
