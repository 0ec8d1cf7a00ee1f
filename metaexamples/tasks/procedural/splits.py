"""Train / val / test / ood splits of procedural problems, deterministic in the seed.

Every split has exact shares, not drawn ones: kinds equally often (to one problem), within a
kind each difficulty of [lo, hi] equally often, and within a (kind, difficulty) cell of a kind
with bool answers (brackets) half of each answer; ood uses the ood difficulty range, which lies
above the training one. Each stratum is filled by drawing from its own kind and difficulty until
the question is new (redrawing a random cell instead would skew the shares toward the cells with
more distinct problems). No question appears twice, in a split or across splits; the problems are
shuffled. Each problem gets HIDDEN_TESTS hidden inputs (Kind.hidden_tests) from a second stream.
The splits are drawn in the order test, val, ood, train, each from its own `random.Random` seeded
with a string, so the evaluation splits do not change when n_train does.

A split asking for more problems than its range allows fails with a ConfigError naming its key:
up front where a stratum's capacity is counted exactly, otherwise once a stratum has produced only
known questions for many consecutive draws (never an endless loop).
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
HIDDEN_TESTS = 5  # hidden inputs per problem (Kind.hidden_tests): a program is judged on these too


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
    used: dict[tuple, int] = {}  # problems taken per (kind, difficulty, answer) stratum
    index: dict[tuple[str, int], int] = {}  # ids count per cell over all splits, so they are unique
    done: list[str] = []
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for split in _ORDER:
        if n[split]:
            out[split] = _draw(split, n[split], names, ranges[split], _rng(seed, split), seen, used, index, done,
                               _rng(seed, f"{split}/hidden"))
            done.append(split)
    return out


def _allocate(n: int, parts: list, rng: random.Random) -> dict:
    """`n` split over `parts` as evenly as possible: each gets n // len(parts), and a random
    choice of them one more (so the shares are exact, not drawn)."""
    base, extra = divmod(n, len(parts))
    lucky = set(rng.sample(range(len(parts)), extra))
    return {part: base + (i in lucky) for i, part in enumerate(parts)}


def _quotas(want: int, names: list[str], lo: int, hi: int, rng: random.Random) -> dict[tuple, int]:
    """Problems per (kind, difficulty, answer) stratum: kinds uniform, then difficulties uniform
    within a kind, then, for kinds with bool answers, half of each answer in every cell and over
    the kind (to one problem; answer None: any)."""
    out: dict[tuple, int] = {}
    for kind, n_kind in _allocate(want, names, rng).items():
        answers = rng.sample(["True", "False"], 2)  # which answer an odd cell's extra problem has, alternating,
        for d, n_cell in _allocate(n_kind, list(range(lo, hi + 1)), rng).items():  # so the kind is even too
            if get_kind(kind).capacity_by_answer(d) is None:
                out[(kind, d, None)] = n_cell
                continue
            out[(kind, d, answers[0])] = n_cell - n_cell // 2
            out[(kind, d, answers[1])] = n_cell // 2
            if n_cell % 2:
                answers.reverse()
    return out


def _capacity(stratum: tuple) -> int | None:
    kind, d, answer = stratum
    k = get_kind(kind)
    return k.capacity(d) if answer is None else k.capacity_by_answer(d)[answer]


def _describe(stratum: tuple) -> str:
    kind, d, answer = stratum
    return f"kind {kind} at difficulty {d}" + ("" if answer is None else f" with answer {answer}")


def _draw(split, want, names, rng_range, rng, seen, used, index, done, hidden_rng) -> list[dict]:
    """`want` problems of the split in exact quotas per stratum (`_quotas`), each drawn from its
    own kind and difficulty until it is a question not seen before, then shuffled."""
    key = f"task.n_{split}"
    lo, hi = rng_range
    quotas = _quotas(want, names, lo, hi, rng)
    for stratum, n in quotas.items():  # up front where the capacity is counted exactly
        cap = _capacity(stratum)
        taken = used.get(stratum, 0)
        if cap is not None and n > cap - taken:
            extra = f" ({taken} of them already in {', '.join(done)})" if taken else ""
            raise ConfigError(f"{key}: asked for {want} problems, {n} of them of {_describe(stratum)}, "
                              f"but it allows only {cap} distinct ones{extra}")
    problems: list[dict] = []
    for stratum, n in quotas.items():
        kind, d, answer = stratum
        k, cell = get_kind(kind), (kind, d)
        cap = _capacity(stratum)
        limit = DUP_LIMIT if cap is None else max(DUP_LIMIT, min(100 * cap, _DUP_LIMIT_MAX))
        misses = got = 0
        while got < n:
            problem = k.generate(rng, d, index.get(cell, 0))
            if problem["question"] in seen or (answer is not None and problem["answer"] != answer):
                misses += 1
                if misses >= limit:
                    raise ConfigError(f"{key}: asked for {want} problems, {n} of them of {_describe(stratum)}, "
                                      f"but found only {used.get(stratum, 0)} distinct ones (gave up after "
                                      f"{limit} consecutive draws of known questions)")
                continue
            misses = 0
            seen.add(problem["question"])
            index[cell] = index.get(cell, 0) + 1
            used[stratum] = used.get(stratum, 0) + 1
            problem["hidden"] = k.hidden_tests(hidden_rng, d, problem, HIDDEN_TESTS)
            problems.append(problem)
            got += 1
    rng.shuffle(problems)
    return problems
