"""Train / val / test / ood splits of Reasoning Gym problems, deterministic in the seed.

Each split draws from its own datasets, one per level, seeded from (seed, split, level), so no
two splits share a generator stream; a problem's level is drawn uniformly from the split's
levels (train/val/test: task.levels, ood: task.ood_levels; [None] = the dataset's configuration
as given), then that level's generator runs to its next question not drawn before. No question
appears twice, in a split or across splits: the splits are drawn in the order test, val, ood,
train (the evaluation splits do not change with n_train). Levels are uniform over a split's
rows until one runs out of new questions; within a level, a mixture's datasets follow the
composite's weights over draws (a dataset with few distinct questions ends below its weight).
A split that cannot find enough distinct questions within DRAWS_PER_PROBLEM draws per problem
fails with one line naming its key.

Every stored entry is checked to survive the JSON round trip of the cache: the dataset's
score_answer must give its reference answer the same reward on the stored entry as on the
generated one (a dataset whose metadata does not survive is refused, never scored wrongly).
"""

from __future__ import annotations

import json
import random
import zlib

from metaexamples.errors import ConfigError
from metaexamples.tasks.gym import library

ORDER = ("test", "val", "ood", "train")
DRAWS_PER_PROBLEM = 20


def _seed(seed: int, split: str, level) -> int:
    return zlib.crc32(f"metaexamples.gym/{seed}/{split}/{level}".encode())


def draw_split(split: str, want: int, levels: list, mixture: dict[str, float], configs: dict[str, dict],
               seed: int, seen: set[str]) -> list[dict]:
    """`want` rows of `split`, their questions added to `seen`."""
    if want == 0:
        return []
    rng = random.Random(f"metaexamples.gym/{seed}/{split}")
    cap = DRAWS_PER_PROBLEM * want + 100
    sources = {lv: library.make_dataset(mixture, configs, lv, _seed(seed, split, lv), cap) for lv in levels}
    index = dict.fromkeys(levels, 0)
    active = list(levels)
    rows: list[dict] = []
    while len(rows) < want:
        if not active:
            where = ", ".join(mixture) + (f" at level{'s' if len(levels) > 1 else ''} {levels}" if levels != [None] else "")
            raise ConfigError(f"task.n_{split}: asked for {want} problems but {where} gave only {len(rows)} new "
                              f"distinct questions in {cap} draws per level; lower task.n_{split} or pick harder levels")
        level = rng.choice(active)
        entry = None
        while level in active:  # this level's next new question: levels stay uniform over rows
            candidate = sources[level][index[level]]
            index[level] += 1
            if index[level] >= cap:
                active.remove(level)
            if candidate["question"] not in seen:
                entry = candidate
                break
        if entry is None:
            continue
        seen.add(entry["question"])
        name = entry["metadata"].get("source_dataset") or next(iter(mixture))
        rows.append({"id": f"{split}-{len(rows)}", "prompt": entry["question"], "answer": entry["answer"],
                     "group": name, "level": level, "entry": entry})
    return rows


def check_round_trip(rows: list[dict], configs: dict[str, dict]) -> None:
    for row in rows:
        if row["answer"] is None:
            continue
        score = library.scorer(row["group"], configs.get(row["group"], {}), row["level"])
        stored = json.loads(json.dumps(row["entry"]))
        before, after = score(row["answer"], row["entry"]), score(row["answer"], stored)
        if before != after:
            raise ConfigError(f"task.dataset: {row['group']}'s entries do not survive being stored as JSON "
                              f"(its score_answer gives its own answer {before} in memory, {after} stored); "
                              "this dataset is not supported")


def make_splits(mixture: dict[str, float], configs: dict[str, dict], levels: list, ood_levels: list,
                sizes: dict[str, int], seed: int) -> dict[str, list[dict]]:
    """{"train": [...], "val": [...], "test": [...], "ood": [...]} of rows."""
    seen: set[str] = set()
    out = {}
    for split in ORDER:
        out[split] = draw_split(split, sizes[split], ood_levels if split == "ood" else levels, mixture, configs,
                                seed, seen)
        check_round_trip(out[split], configs)
    return {s: out[s] for s in ("train", "val", "test", "ood")}
