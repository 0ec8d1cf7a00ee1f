"""A task's data kept as a few lists of rows: one `<split>.jsonl` per split in a content-keyed
cache folder (data/cache.py) with a manifest of the format, the config key, the row counts and
every file's sha256. The tasks whose data is rows (procedural, numeric, prompts, gym) share it:
the data stage builds or reuses the folder, a later stage requires it intact, and each split is
read once per process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from metaexamples.data.cache import MANIFEST, build_jsonl_splits, read_jsonl_split, require_intact
from metaexamples.io import read_json


class JsonlSplits:
    """`locate()`: the folder for the task's current config (`data.cache.keyed_folder`);
    `describe()`: what the data is, for the error when it is missing (e.g. "task=numeric
    dataset=units"). Both are called when needed, so a task can build this before its config
    is checked."""

    def __init__(self, locate: Callable[[], Path], describe: Callable[[], str]) -> None:
        self.locate, self.describe = locate, describe
        self.folder: Path | None = None  # set once built (prepare) or found intact (load)
        self._rows: dict[str, list[dict]] = {}

    def prepare(self, data_format: int, key: dict, make_splits: Callable[[], dict[str, list[dict]]]) -> Path:
        """The data stage: reuse the folder if intact, else write `make_splits()` into it."""
        self.folder = build_jsonl_splits(self.locate(), data_format, key, make_splits)
        return self.folder

    def load(self) -> Path:
        """A later stage: the existing folder; one clear error naming the data and the stage if missing."""
        self.folder = require_intact(self.locate(), self.describe())
        return self.folder

    def manifest(self) -> dict:
        return read_json((self.folder or self.load()) / MANIFEST)

    def rows(self, split: str) -> list[dict]:
        """The rows of one split, read once (the folder is loaded first if no stage has)."""
        if split not in self._rows:
            self._rows[split] = read_jsonl_split(self.folder or self.load(), split)
        return self._rows[split]
