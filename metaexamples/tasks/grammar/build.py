"""The data stage: one content-keyed folder per (grammar, condition, data, corpus, seed,
tokenizer), written atomically and reused when it already exists (sweep jobs share it).

Layout and row schemas: metaexamples/data/bundle.py.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from metaexamples.data.corpus import canonical_documents, corpus_fingerprint
from metaexamples.tasks.grammar.items import ItemIds, make_tags
from metaexamples.tasks.grammar.metaexamples import MetaBuilder, token_budget
from metaexamples.data.mixing import build_stream, canonical_needed
from metaexamples.tasks.grammar.lengths import bucket_label, bucket_language, eval_buckets
from metaexamples.tasks.grammar.splits import held_out_splits, held_strings, long_split, sample_excluding
from metaexamples.errors import ConfigError
from metaexamples.data.cache import build_once, file_hashes, file_sizes, keyed_folder
from metaexamples.io import write_json, write_jsonl
from metaexamples.tasks.grammar.languages import make_language
from metaexamples.tasks.grammar.symbols import select_symbols

log = logging.getLogger(__name__)

DATA_FORMAT = 2  # bump when the generated content changes for the same config
MAX_NEGATIVE_TRIES = 100


def tokenizer_fingerprint(tokenizer) -> dict:
    """Name, size and a hash of the vocabulary: two tokenizers that map text differently differ."""
    vocab = sorted(tokenizer.get_vocab().items())
    digest = hashlib.sha256("\n".join(f"{t}\t{i}" for t, i in vocab).encode()).hexdigest()[:16]
    return {"name": str(tokenizer.name_or_path), "size": len(tokenizer), "vocab_sha256": digest}


def data_config(cfg: DictConfig) -> dict:
    """The part of the config the data depends on (manifest["config"])."""
    pick = lambda key: OmegaConf.to_container(cfg[key], resolve=True)  # noqa: E731
    return {"grammar": pick("grammar"), "condition": pick("condition"), "data": pick("data"),
            "corpus": pick("corpus"), "seed": int(cfg.seed)}


def data_folder(cfg: DictConfig, tokenizer, cache_root: Path, _fingerprint: dict | None = None) -> Path:
    """cache_root/data/<grammar>-<condition>-<hash of the data config, corpus and tokenizer>."""
    fingerprint = dict(_fingerprint or tokenizer_fingerprint(tokenizer))
    fingerprint.pop("name")  # the vocabulary decides, not where it was loaded from (a checkpoint)
    key = {"format": DATA_FORMAT, **data_config(cfg), "corpus": corpus_fingerprint(cfg.corpus),
           "tokenizer": fingerprint}
    return keyed_folder(cache_root, f"{cfg.grammar.name}-{cfg.condition.name}", key)


def run_data_stage(cfg: DictConfig, tokenizer, cache_root: Path) -> Path:
    """Generate (or reuse) the data folder for `cfg` and return its path."""
    fingerprint = tokenizer_fingerprint(tokenizer)
    folder = data_folder(cfg, tokenizer, cache_root, fingerprint)
    return build_once(folder, lambda tmp: _generate(cfg, tokenizer, tmp, fingerprint))


def _generate(cfg: DictConfig, tokenizer, out: Path, fingerprint: dict) -> None:
    d, g, c = cfg.data, cfg.grammar, cfg.condition
    num_foreign = int(d.num_foreign)
    lang = make_language(g, num_symbols=int(d.num_symbols))
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise ConfigError(f"model.tokenizer: {tokenizer.name_or_path!r} has no EOS token")

    symbols = select_symbols(tokenizer, int(d.num_symbols), bool(d.prefer_non_ascii),
                             bool(d.ascii_fallback), num_foreign)
    tags = make_tags(tokenizer, g.tag)
    item_ids = ItemIds(symbols["ids"], symbols["foreign_ids"], tags, tokenizer)

    def rngs(purpose: str) -> random.Random:
        return random.Random(f"{cfg.seed}:{g.name}:{purpose}")

    splits = held_out_splits(lang, item_ids, rngs, int(d.n_eval), int(d.n_test),
                             float(d.random_negative_fraction), num_foreign)
    held = held_strings(splits)
    buckets = eval_buckets(g)
    if buckets:
        langs = {bucket_label(lo, hi): bucket_language(g, lo, hi, int(d.num_symbols)) for lo, hi in buckets}
        splits["test_long"] = long_split(langs, item_ids, rngs, int(d.n_test_long),
                                         float(d.random_negative_fraction), num_foreign)

    def valid(rng: random.Random):
        return sample_excluding(lang, rng, held, "train")

    def negative(s, rng: random.Random):
        for _ in range(MAX_NEGATIVE_TRIES):
            t, _info = lang.hard_negative(s, rng, num_foreign=num_foreign)
            if t not in held:
                return t
        raise ConfigError("data.n_test: every minimal edit of a training string is held out; lower data.n_test")

    meta = MetaBuilder(lang, item_ids, g.rule, dict(c.meta_kinds), valid, negative)
    meta.check(float(c.meta_fraction))
    budget = token_budget(lang, item_ids, int(d.n_train_items))
    train = meta.train_items(rngs("train"), budget, float(c.meta_fraction))

    ratio = float(d.synthetic_mix_ratio)
    eval_items = [tags.open_ids + tuple(r["ids"]) + tags.close_ids for r in splits["eval"] if r["valid"]]
    train_items = [r["input_ids"] for r in train]
    need = lambda items: 0 if ratio >= 1 else canonical_needed(sum(len(i) + 1 for i in items), ratio)  # noqa: E731
    train_docs, eval_docs, corpus_info = canonical_documents(
        cfg.corpus, tokenizer, need(train_items), need(eval_items), eos_id)
    train_blocks, train_stats = build_stream(train_docs, train_items, ratio, int(d.block_size), eos_id, rngs("mix"))
    eval_blocks, eval_stats = build_stream(eval_docs, eval_items, ratio, int(d.block_size), eos_id,
                                           rngs("mix_eval"), repeat=False)

    write_json(out / "symbols.json", symbols)
    counts = {"train": write_jsonl(out / "train.jsonl", train)}
    for name, rows in splits.items():
        counts[name] = write_jsonl(out / f"{name}.jsonl", rows)
    np.save(out / "train_blocks.npy", train_blocks)
    np.save(out / "eval_blocks.npy", eval_blocks)
    counts["train_kinds"] = dict(sorted(Counter(r["kind"] for r in train).items()))
    files, sizes = file_hashes(out), file_sizes(out)
    write_json(out / "manifest.json", {
        "format": DATA_FORMAT,
        "config": data_config(cfg),
        "counts": counts,
        "tokens": {"synthetic_budget": budget, "train_items": sum(map(len, train_items)),
                   "train_stream": train_stats, "eval_stream": eval_stats},
        "canonical": corpus_info,
        "tags": tags.as_dict(),
        "eos_id": int(eos_id),
        "tokenizer": fingerprint,
        "files": files,
        "sizes": sizes,
    })
