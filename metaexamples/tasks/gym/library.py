"""Reasoning Gym behind one small interface: dataset names (with the closest ones for a typo),
their configuration keys, difficulty levels from their curricula, a dataset (or a weighted
mixture, Reasoning Gym's composite dataset) at a level, and the dataset's own score_answer.

Level L of a dataset is its Reasoning Gym curriculum at global level L (every attribute at
level min(L, its last level)), turned into a configuration in the library's `upper_bound` mode:
each range attribute spans only its level's segment (basic_arithmetic at level 2: exactly 4
terms of 3 digits), so a higher level is a harder configuration, not a superset of the lower
ones. The library is imported on first use (it takes seconds), not when tasks are listed.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from functools import lru_cache

from metaexamples.errors import ConfigError

RESERVED = ("seed", "size")  # set by the task: every split is drawn with its own seed


@lru_cache(maxsize=None)
def _registry() -> tuple[dict, dict]:
    import reasoning_gym  # noqa: F401 - registers every dataset
    from reasoning_gym.factory import CURRICULA, DATASETS

    return DATASETS, CURRICULA


def names() -> list[str]:
    """Every Reasoning Gym dataset (not the composite wrapper itself)."""
    return sorted(n for n in _registry()[0] if n != "composite")


def check_name(name, key: str) -> str:
    """`name` if it is a dataset, else one line naming `key` with the closest names."""
    if not isinstance(name, str) or name not in names():
        close = difflib.get_close_matches(str(name), names(), n=5, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else f"available: {', '.join(names()[:8])}, ..."
        raise ConfigError(f"{key}: unknown Reasoning Gym dataset {name!r}; {hint} ({len(names())} datasets)")
    return name


def config_class(name: str) -> type:
    return _registry()[0][name][1]


def config_keys(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(config_class(name)) if f.name not in RESERVED]


def curriculum(name: str):
    """A fresh curriculum of the dataset, or None where it has none."""
    from reasoning_gym.factory import create_curriculum

    return create_curriculum(name) if name in _registry()[1] else None


def max_level(name: str) -> int | None:
    """The dataset's highest curriculum level, or None (no curriculum: no difficulty levels)."""
    c = curriculum(name)
    return None if c is None else max(len(a.levels) for a in c.attributes.values()) - 1


def level_keys(name: str) -> set[str]:
    """The configuration keys a curriculum level sets."""
    from reasoning_gym.coaching.attributes import RangeAttributeDefinition

    out: set[str] = set()
    for a in curriculum(name).attributes.values():
        out |= {a.lower_field_name, a.upper_field_name} if isinstance(a, RangeAttributeDefinition) else {a.field_name}
    return out


def check_config(name: str, config: dict, key: str, level: int | None) -> None:
    """Unknown keys, keys a curriculum level would override, and what the dataset's own
    validate() refuses: one line naming `key`.<config key>."""
    known = config_keys(name)
    for k in config:
        if k in RESERVED:
            raise ConfigError(f"{key}.{k}: set by the task (each split is drawn with its own seed and size)")
        if k not in known:
            close = difflib.get_close_matches(k, known, n=3, cutoff=0.5)
            raise ConfigError(f"{key}.{k}: {name} has no such configuration key; "
                              f"{'closest: ' + ', '.join(close) if close else 'keys: ' + ', '.join(known)}")
    if level is not None:
        clash = sorted(set(config) & level_keys(name))
        if clash:
            raise ConfigError(f"{key}.{clash[0]}: the curriculum level (task.levels) sets it for {name}; "
                              "set task.levels=null to configure it yourself")
    dataset_config(name, config, level, seed=0, size=1)


def dataset_config(name: str, config: dict, level: int | None, seed: int, size: int):
    """The dataset's configuration object: `config` over its defaults, at curriculum `level`
    (None: as given), validated by the dataset itself."""
    kwargs = {**config, "seed": seed, "size": size}
    try:
        if level is None:
            obj = config_class(name)(**kwargs)
        else:
            from reasoning_gym.coaching.base_curriculum import DefaultCurriculumContext, RangeAttributeMode

            c = curriculum(name)
            c.set_global_level(int(level))
            obj = c.generate_configuration(kwargs, DefaultCurriculumContext(mode=RangeAttributeMode.UPPER_BOUND))
        if hasattr(obj, "validate"):
            obj.validate()
    except (AssertionError, ValueError, TypeError) as exc:
        where = f" at level {level}" if level is not None else ""
        raise ConfigError(f"task.config: {name}{where} rejects its configuration ({exc or type(exc).__name__})") from None
    return obj


def plain_config(obj) -> dict:
    """A configuration object as keyword arguments (without seed and size)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in RESERVED}


def make_dataset(mixture: dict[str, float], configs: dict[str, dict], level: int | None, seed: int, size: int):
    """One dataset (a mixture of one) or Reasoning Gym's composite dataset of several, each
    at `level`, seeded `seed`, `size` items."""
    objs = {n: dataset_config(n, configs.get(n, {}), level, seed, size) for n in mixture}
    if len(mixture) == 1:
        [(name, obj)] = objs.items()
        return _registry()[0][name][0](config=obj)
    from reasoning_gym.composite import CompositeConfig, CompositeDataset, DatasetSpec

    specs = [DatasetSpec(name=n, weight=float(w), config=plain_config(objs[n])) for n, w in mixture.items()]
    return CompositeDataset(CompositeConfig(size=size, seed=seed, datasets=specs))


@lru_cache(maxsize=256)
def _scorer(name: str, config_json: str, level: int | None):
    return make_dataset({name: 1.0}, {name: json.loads(config_json)}, level, seed=0, size=1).score_answer


def scorer(name: str, config: dict, level: int | None):
    """The dataset's own score_answer(answer, entry), for entries drawn at `level`."""
    return _scorer(name, json.dumps(config, sort_keys=True), level)


__all__ = ["check_config", "check_name", "config_keys", "make_dataset", "max_level", "names", "scorer"]
