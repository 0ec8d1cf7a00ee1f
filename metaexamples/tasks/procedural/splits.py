"""Train / val / test / ood splits of procedural problems, deterministic in the seed.

train, val and test draw a (kind, difficulty) cell uniformly from `kinds` x [lo, hi]; ood draws
from the ood difficulty range, which lies above the training one. No question appears twice, in a
split or across splits. The splits are drawn in the order test, val, ood, train, each from its own
`random.Random` seeded with a string, so the evaluation splits do not change when n_train does.

A split asking for more problems than its range allows fails with a ConfigError naming its key:
up front when every cell's capacity is counted exactly, otherwise once every cell has produced
only duplicates for many consecutive draws (never an endless loop).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from metaexamples.errors import ConfigError
from metaexamples.tasks.procedural.difficulty import MAX_DIFFICULTY, MIN_DIFFICULTY
from metaexamples.tasks.procedural.kinds import available, get_kind

SPLITS = ("train", "val", "test", "ood")
_ORDER = ("test", "val", "ood", "train")
# A cell gives up after this many consecutive duplicate draws (more where its capacity is known
# and small: collecting the last few of N distinct problems takes several N draws).
DUP_LIMIT = 2000
_DUP_LIMIT_MAX = 20_000


def _difficulty_range(value, key: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ConfigError(f"{key}: expected [lo, hi], got {value!r}")
    lo, hi = value[0], value[1]
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{key}: expected integers [lo, hi], got {list(value)!r}")
        if not MIN_DIFFICULTY <= v <= MAX_DIFFICULTY:
            raise ConfigError(f"{key}: difficulties are {MIN_DIFFICULTY}-{MAX_DIFFICULTY}, got [{lo}, {hi}]")
    if lo > hi:
        raise ConfigError(f"{key}: empty range [{lo}, {hi}] (lo > hi)")
    return lo, hi


def _kinds(kinds) -> list[str]:
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, Sequence) or not kinds:
        raise ConfigError(f"task.kind: no kind given; available: {', '.join(available())}")
    for k in kinds:
        get_kind(k)
    return sorted(set(kinds))


def _sizes(sizes) -> dict[str, int]:
    if not isinstance(sizes, Mapping):
        raise ConfigError(f"task.sizes: expected a mapping of {', '.join(SPLITS)} to counts, got {sizes!r}")
    out = dict.fromkeys(SPLITS, 0)
    for split, n in sizes.items():
        if split not in SPLITS:
            raise ConfigError(f"task.n_{split}: unknown split {split!r}; available: {', '.join(SPLITS)}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"task.n_{split}: must be a non-negative integer, got {n!r}")
        out[split] = n
    return out


def _rng(seed, split: str) -> random.Random:
    return random.Random(f"metaexamples.procedural/{seed}/{split}")


def make_splits(kinds, difficulty, ood_difficulty=None, sizes=None, seed=0) -> dict[str, list[dict]]:
    """{"train": [...], "val": [...], "test": [...], "ood": [...]} of problem dicts.

    kinds: kind names (or one name); difficulty, ood_difficulty: [lo, hi] (inclusive; ood may be
    None when sizes["ood"] is 0); sizes: {"train": n, "val": n, "test": n, "ood": n} (missing: 0).
    """
    names = _kinds(kinds)
    lo, hi = _difficulty_range(difficulty, "task.difficulty")
    n = _sizes(sizes if sizes is not None else {})
    ranges = {"train": (lo, hi), "val": (lo, hi), "test": (lo, hi)}
    if ood_difficulty is None:
        if n["ood"]:
            raise ConfigError(f"task.ood_difficulty: required when task.n_ood > 0 (got n_ood={n['ood']})")
    else:
        olo, ohi = _difficulty_range(ood_difficulty, "task.ood_difficulty")
        if olo <= hi:
            raise ConfigError(f"task.ood_difficulty: [{olo}, {ohi}] must lie above task.difficulty "
                              f"[{lo}, {hi}] (ood lo > {hi})")
        ranges["ood"] = (olo, ohi)

    seen: set[str] = set()
    used: dict[tuple[str, int], int] = {}  # problems taken per (kind, difficulty) cell
    index: dict[tuple[str, int], int] = {}  # ids count per cell over all splits, so they are unique
    done: list[str] = []
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for split in _ORDER:
        if n[split]:
            out[split] = _draw(split, n[split], names, ranges[split], _rng(seed, split), seen, used, index, done)
            done.append(split)
    return out


def _draw(split, want, names, rng_range, rng, seen, used, index, done) -> list[dict]:
    key = f"task.n_{split}"
    lo, hi = rng_range
    cells = [(k, d) for k in names for d in range(lo, hi + 1)]
    caps = {c: get_kind(c[0]).capacity(c[1]) for c in cells}
    where = f"difficulty [{lo}, {hi}] of kind{'s' if len(names) > 1 else ''} {', '.join(names)}"
    if all(cap is not None for cap in caps.values()):
        total = sum(caps.values())
        taken = sum(used.get(c, 0) for c in cells)
        if want > total - taken:
            extra = f" ({taken} of them already in {', '.join(done)})" if taken else ""
            raise ConfigError(f"{key}: asked for {want} problems but {where} allows only {total} distinct ones{extra}")
    limits = {c: DUP_LIMIT if cap is None else max(DUP_LIMIT, min(100 * cap, _DUP_LIMIT_MAX))
              for c, cap in caps.items()}
    dups = dict.fromkeys(cells, 0)
    active = [c for c in cells if caps[c] is None or used.get(c, 0) < caps[c]]
    problems: list[dict] = []
    while len(problems) < want:
        if not active:
            taken = sum(used.get(c, 0) for c in cells) - len(problems)
            extra = f", {taken} of them already in {', '.join(done)}" if taken else ""
            raise ConfigError(f"{key}: asked for {want} problems but {where} allows only about "
                              f"{taken + len(problems)} distinct ones (gave up after {DUP_LIMIT}+ "
                              f"consecutive duplicate draws{extra})")
        cell = rng.choice(active)
        kind, d = cell
        problem = get_kind(kind).generate(rng, d, index.get(cell, 0))
        question = problem["question"]
        if question in seen:
            dups[cell] += 1
            if dups[cell] >= limits[cell]:
                active.remove(cell)
            continue
        seen.add(question)
        dups[cell] = 0
        index[cell] = index.get(cell, 0) + 1
        used[cell] = used.get(cell, 0) + 1
        problems.append(problem)
        if caps[cell] is not None and used[cell] >= caps[cell]:
            active.remove(cell)
    return problems
