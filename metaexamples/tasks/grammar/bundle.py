"""The data stage's output, as the later stages read it (the contract between stages).

A data folder (cache_dir/data/<hash of the data config>/) holds:

- symbols.json      tokens, ids, tokenizer name, rejected candidates counted by reason;
                    `foreign_ids`: extra qualifying tokens outside the alphabet (negatives)
- train.jsonl       synthetic training items: {"kind", "input_ids", ...}; kind is one of
                    example, judgment, contrast, rule; examples also carry "symbols";
                    metaexamples carry "strings" (the symbol strings inside) and "verdicts"
- eval.jsonl        held-out strings (valid and invalid) for in-training evaluation and
                    for choosing thresholds
- test_valid.jsonl, test_invalid.jsonl
                    one string per row: {"symbols": [int], "ids": [int], "valid": bool,
                    "length": int, "how": "valid" | "substitution" | "insertion" |
                    "deletion" | "random", "edit_distance": int | null}
                    symbols are indices into the alphabet; an index >= len(alphabet) is a
                    foreign token (ids come from symbols.json foreign_ids); "ids" are the
                    string's token ids without tags (wrap them in open_ids/close_ids)
- test_long.jsonl   only with grammar.eval_lengths: per length bucket, valid strings and
                    as many length-matched negatives (rows as above plus "bucket": "lo-hi")
- train_blocks.npy, eval_blocks.npy
                    int32 [n_blocks, block_size]: the packed mixed stream (EOS between
                    documents, no synthetic item split across blocks)
- manifest.json     counts, token counts, the data config, the tags' text and ids, sha256
                    and size of every file (checked on load: data/cache.py)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from metaexamples.data.cache import check_folder, read_jsonl_split
from metaexamples.errors import ConfigError
from metaexamples.io import read_json
from metaexamples.tasks.grammar.languages import make_language

SPLITS = ("train", "eval", "test_valid", "test_invalid")


@dataclass
class DataBundle:
    folder: Path
    manifest: dict = field(repr=False)
    symbols: dict = field(repr=False)

    @property
    def symbol_ids(self) -> list[int]:
        """Token id of each alphabet symbol, by symbol index."""
        return list(self.symbols["ids"])

    @property
    def foreign_ids(self) -> list[int]:
        return list(self.symbols.get("foreign_ids", []))

    @property
    def open_ids(self) -> list[int]:
        return list(self.manifest["tags"]["open_ids"])

    @property
    def close_ids(self) -> list[int]:
        return list(self.manifest["tags"]["close_ids"])

    @property
    def grammar(self) -> dict:
        """The grammar config the data was generated with."""
        return self.manifest["config"]["grammar"]

    @cached_property
    def language(self):
        return make_language(self.grammar, num_symbols=len(self.symbol_ids))

    def split(self, name: str) -> list[dict]:
        return read_jsonl_split(self.folder, name)

    def long_rows(self) -> list[dict]:
        """test_long's rows ([] when the data was built without grammar.eval_lengths)."""
        return self.split("test_long") if self.grammar.get("eval_lengths") else []

    def blocks(self, name: str = "train") -> np.ndarray:
        path = self.folder / f"{name}_blocks.npy"
        if not path.exists():
            raise ConfigError(f"{path}: missing; run the data stage (stages=[data])")
        return np.load(path)

    @cached_property
    def train_strings(self) -> frozenset[tuple[int, ...]]:
        """Symbol strings of the training examples (for novelty of generated samples)."""
        return frozenset(tuple(r["symbols"]) for r in self.split("train") if r["kind"] == "example")

    def known_strings(self, seen=()) -> frozenset[tuple[int, ...]]:
        """What novelty counts as known: the training strings plus `seen`, the strings a method
        fine-tuned the model on (expert iteration's selections)."""
        return self.train_strings | {tuple(s) for s in seen}

    def symbols_to_ids(self, symbols) -> list[int]:
        table = self.symbol_ids + self.foreign_ids
        return [table[s] for s in symbols]


def load_bundle(folder: str | Path) -> DataBundle:
    """The data folder's contents, once its files are checked against the manifest (a damaged
    folder is one line naming the file; the data stage rebuilds it)."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise ConfigError(f"{folder}: no data here (manifest.json missing); run the data stage (stages=[data])")
    problem = check_folder(folder)
    if problem is not None:
        raise ConfigError(f"{problem}; the data stage rebuilds it: add `data` to stages (stages=[data,...])")
    return DataBundle(folder=folder, manifest=read_json(manifest_path), symbols=read_json(folder / "symbols.json"))
