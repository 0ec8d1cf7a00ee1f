"""The canonical (natural-text) stream: config group corpus/.

- builtin:    the Python reference documentation that ships with CPython (`pydoc_data.topics`,
              the text `help("topics")` shows): ~465k characters of real English prose, no
              network, identical for a given Python version. Small (~110k SmolLM2 tokens): a
              stream that needs more repeats it (manifest: canonical.train_epochs).
- text_files: every file matching corpus.glob, one document per file, sorted by path.
- hf:         a Hugging Face dataset streamed (datasets, streaming=True). Offline it fails at
              once, naming corpus=builtin / corpus=text_files, instead of retrying for a minute.
"""

from __future__ import annotations

import glob as globlib
import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
from omegaconf import OmegaConf

from metaexamples.errors import ConfigError
from metaexamples.network import hub_reachable

EVAL_EVERY = 20  # every 20th document is held out for the eval stream (while it needs text)
OFFLINE_CHOICES = "use corpus=builtin or corpus=text_files corpus.glob=<files>"


def corpus_fingerprint(corpus_cfg) -> dict:
    """What identifies the text, for the data-folder hash (the builtin text changes with Python)."""
    fp = OmegaConf.to_container(corpus_cfg, resolve=False) if OmegaConf.is_config(corpus_cfg) else dict(corpus_cfg)
    if corpus_cfg.name == "builtin":
        fp["python"] = sys.version.split()[0]
    elif corpus_cfg.name == "text_files":
        fp["files"] = [(p, os.path.getsize(p)) for p in _matching_files(corpus_cfg)]
    return fp


def iter_documents(corpus_cfg) -> Iterator[str]:
    name = corpus_cfg.name
    max_docs = corpus_cfg.get("max_docs")
    if name == "builtin":
        docs = _builtin_documents()
    elif name == "text_files":
        docs = (Path(p).read_text(encoding="utf-8", errors="replace") for p in _matching_files(corpus_cfg))
    elif name == "hf":
        docs = _hf_documents(corpus_cfg)
    else:
        raise ConfigError(f"corpus.name: unknown corpus {name!r}; available: builtin, text_files, hf")
    n = 0
    for doc in docs:
        doc = doc.strip()
        if not doc:
            continue
        yield doc
        n += 1
        if max_docs is not None and n >= max_docs:
            return


def _builtin_documents(chunk_chars: int = 2000) -> Iterator[str]:
    # Topics are long (up to ~40k characters): cut them at paragraph breaks into documents of
    # about `chunk_chars`, so that held-out documents are a fine-grained sample.
    from pydoc_data.topics import topics

    for key in sorted(topics):
        doc: list[str] = []
        size = 0
        for para in topics[key].split("\n\n"):
            doc.append(para)
            size += len(para)
            if size >= chunk_chars:
                yield "\n\n".join(doc)
                doc, size = [], 0
        if doc:
            yield "\n\n".join(doc)


def _matching_files(corpus_cfg) -> list[str]:
    if OmegaConf.is_missing(corpus_cfg, "glob") or not corpus_cfg.get("glob"):
        raise ConfigError("corpus.glob: required for corpus=text_files (corpus.glob='/data/*.txt')")
    pattern = os.path.expanduser(corpus_cfg.glob)
    files = sorted(p for p in globlib.glob(pattern, recursive=True) if os.path.isfile(p))
    if not files:
        raise ConfigError(f"corpus.glob: no files match {pattern!r}")
    return files


def _hf_documents(corpus_cfg) -> Iterator[str]:
    if not corpus_cfg.get("dataset"):
        raise ConfigError("corpus.dataset: required for corpus=hf (e.g. corpus.dataset=wikitext)")
    if not hub_reachable():
        raise ConfigError(f"corpus.dataset: cannot reach the Hugging Face hub for {corpus_cfg.dataset!r} "
                          f"(offline?); {OFFLINE_CHOICES}")
    import datasets

    try:
        ds = datasets.load_dataset(corpus_cfg.dataset, corpus_cfg.get("config"), split=corpus_cfg.split, streaming=True)
        for record in ds:
            yield str(record[corpus_cfg.text_field])
    except KeyError:
        raise ConfigError(f"corpus.text_field: {corpus_cfg.text_field!r} is not a field of {corpus_cfg.dataset!r}") from None
    except (OSError, ValueError, ConnectionError) as exc:
        raise ConfigError(f"corpus.dataset: cannot stream {corpus_cfg.dataset!r} ({type(exc).__name__}); "
                          f"{OFFLINE_CHOICES}") from None


def canonical_documents(corpus_cfg, tokenizer, train_tokens: int, eval_tokens: int, eos_id: int):
    """Tokenized documents (each ending in EOS) for the train and eval streams, disjoint.

    Reads the corpus lazily until both are covered; every EVAL_EVERY-th document goes to eval
    while eval needs text. The train stream repeats its documents if the corpus is too small;
    the eval stream never repeats (it then holds a larger synthetic share).
    Returns (train_docs, eval_docs, info).
    """
    train_docs, eval_docs = [], []
    have_train = have_eval = 0
    batch: list[str] = []
    index = 0

    def flush() -> None:
        nonlocal have_train, have_eval, index
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            doc = np.asarray([*ids, eos_id], dtype=np.int32)
            if index % EVAL_EVERY == EVAL_EVERY - 1 and have_eval < eval_tokens:
                eval_docs.append(doc)
                have_eval += len(doc)
            else:
                train_docs.append(doc)
                have_train += len(doc)
            index += 1
        batch.clear()

    for doc in iter_documents(corpus_cfg):
        batch.append(doc)
        if len(batch) >= 256:
            flush()
            if have_train >= train_tokens and have_eval >= eval_tokens:
                break
    if batch:
        flush()
    if eval_tokens > 0 and not eval_docs:
        if len(train_docs) < 2:
            raise ConfigError(f"corpus.name: corpus {corpus_cfg.name!r} has fewer than 2 documents; "
                              "a held-out eval stream needs at least 2")
        eval_docs.append(train_docs.pop())
        have_train -= len(eval_docs[0])
        have_eval = len(eval_docs[0])
    if train_tokens > 0 and not train_docs:
        raise ConfigError(f"corpus.name: corpus {corpus_cfg.name!r} yielded no text")
    info = {"documents_read": index, "train_documents": len(train_docs), "eval_documents": len(eval_docs),
            "train_epochs": round(train_tokens / have_train, 3) if have_train else 0.0,
            "eval_tokens_available": have_eval}
    return train_docs, eval_docs, info
