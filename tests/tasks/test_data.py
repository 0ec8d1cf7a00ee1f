"""The data stage end to end on the real tokenizer: bundle contract, splits, mixing, errors."""

from __future__ import annotations

import os
import random
import time

import numpy as np
import pytest

from metaexamples.tasks.grammar.build import data_folder, run_data_stage
from metaexamples.tasks.grammar.bundle import SPLITS, load_bundle
from metaexamples.data.mixing import pack
from metaexamples.errors import ConfigError
from metaexamples.io import file_sha256

SMALL = ["data.n_train_items=400", "data.n_eval=40", "data.n_test=60"]
ROW_KEYS = {"symbols", "ids", "valid", "length", "how", "edit_distance"}


def build(compose_cfg, tokenizer, root, *overrides):
    cfg = compose_cfg([*SMALL, *overrides], cache_dir=root)
    return run_data_stage(cfg, tokenizer, root)


@pytest.fixture(scope="module")
def g2_meta(compose_cfg, tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    return load_bundle(build(compose_cfg, tokenizer, root, "grammar=g2", "condition=meta_10pct"))


def opens(block: np.ndarray, open_ids) -> list[int]:
    k = len(open_ids)
    return [i for i in range(len(block) - k + 1) if tuple(block[i:i + k]) == tuple(open_ids)]


def test_bundle_contract(g2_meta):
    b = g2_meta
    m = b.manifest
    for name in SPLITS:
        assert m["counts"][name] == len(b.split(name))
    assert m["counts"]["test_valid"] == m["counts"]["test_invalid"] == 60
    for name, sha in m["files"].items():
        assert file_sha256(b.folder / name) == sha
    assert set(m["files"]) == {"symbols.json", *(f"{s}.jsonl" for s in SPLITS), "train_blocks.npy", "eval_blocks.npy"}
    assert b.long_rows() == []  # no grammar.eval_lengths: no test_long split
    assert m["tags"]["open"] == "<g2>" and m["tags"]["close"] == "</g2>"
    assert b.symbols["ids"] and len(b.foreign_ids) == 3
    lang = b.language
    for name in ("eval", "test_valid", "test_invalid"):
        for r in b.split(name):
            assert set(r) == ROW_KEYS
            assert r["ids"] == b.symbols_to_ids(r["symbols"]) and r["length"] == len(r["symbols"])
            assert lang.is_valid(r["symbols"]) == r["valid"]
    for r in b.split("train"):
        if r["kind"] == "example":
            assert r["input_ids"] == b.open_ids + b.symbols_to_ids(r["symbols"]) + b.close_ids
            assert lang.is_valid(r["symbols"])
        else:
            assert [lang.is_valid(s) for s in r["strings"]] == r["verdicts"]
    for name in ("train", "eval"):
        blocks = b.blocks(name)
        assert blocks.dtype == np.int32 and blocks.shape[1] == m["config"]["data"]["block_size"]


def test_negatives_are_length_matched_and_say_how(g2_meta):
    valid, invalid = g2_meta.split("test_valid"), g2_meta.split("test_invalid")
    assert [r["length"] for r in valid] == [r["length"] for r in invalid]
    assert not any(r["valid"] for r in invalid) and all(r["how"] == "valid" for r in valid)
    hows = {r["how"] for r in invalid}
    assert "random" in hows and "substitution" in hows
    for r in invalid:
        assert (r["edit_distance"] is None) == (r["how"] == "random")
        assert r["how"] == "random" or 1 <= r["edit_distance"] <= 2


def test_no_held_out_string_in_train(g2_meta):
    held = {tuple(r["symbols"]) for s in ("eval", "test_valid", "test_invalid") for r in g2_meta.split(s)}
    trained = set(g2_meta.train_strings)
    for r in g2_meta.split("train"):
        trained |= {tuple(s) for s in r.get("strings", [])}
    assert trained and not trained & held


def test_metaexample_share_and_kinds(g2_meta):
    rows = g2_meta.split("train")
    meta = [r for r in rows if r["kind"] != "example"]
    assert abs(len(meta) / len(rows) - 0.1) < 0.01
    assert {r["kind"] for r in meta} == {"judgment", "contrast", "rule"}


def test_no_synthetic_item_split_across_blocks(g2_meta):
    b = g2_meta
    open_ids, close_ids = b.open_ids, b.close_ids
    expected_opens = sum(1 + (r["kind"] == "contrast") for r in b.split("train"))
    found = 0
    for block in b.blocks("train"):
        starts = opens(block, open_ids)
        found += len(starts)
        for i in starts:  # each opening tag is closed inside the same block
            rest = block[i + len(open_ids):]
            assert any(tuple(rest[j:j + len(close_ids)]) == tuple(close_ids) for j in range(len(rest)))
    assert found == expected_opens  # every item is in the stream, and whole


def test_pack_property():
    rng = random.Random(0)
    for _ in range(50):
        segments = []
        for k in range(rng.randint(1, 40)):
            is_item = rng.random() < 0.4
            n = rng.randint(1, 16) if is_item else rng.randint(1, 90)
            segments.append((is_item, np.full(n, 1000 + k, dtype=np.int32)))
        blocks = pack(segments, 16, eos_id=0)
        for k, (is_item, arr) in enumerate(segments):
            rows = {int(r) for r in np.nonzero((blocks == 1000 + k).any(axis=1))[0]}
            assert int((blocks == 1000 + k).sum()) == len(arr)  # every token kept exactly once
            if is_item:
                assert len(rows) == 1  # never split


def test_same_token_budget_in_every_condition(compose_cfg, tokenizer, tmp_path):
    budgets, tokens = set(), []
    for cond in ("examples", "meta_1pct", "meta_10pct"):
        m = load_bundle(build(compose_cfg, tokenizer, tmp_path, "grammar=g3", f"condition={cond}")).manifest
        budgets.add(m["tokens"]["synthetic_budget"])
        tokens.append(m["tokens"]["train_items"])
    assert len(budgets) == 1
    assert max(tokens) - min(tokens) < 80  # at most about one item over the budget


@pytest.mark.parametrize("grammar", ["g1", "dyck"])
def test_determinism_and_reuse(compose_cfg, tokenizer, tmp_path, grammar):
    a = build(compose_cfg, tokenizer, tmp_path / "a", f"grammar={grammar}", "condition=meta_5pct")
    b = build(compose_cfg, tokenizer, tmp_path / "b", f"grammar={grammar}", "condition=meta_5pct")
    assert a.name == b.name
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    stamp = (a / "manifest.json").stat().st_mtime_ns
    time.sleep(0.01)
    again = build(compose_cfg, tokenizer, tmp_path / "a", f"grammar={grammar}", "condition=meta_5pct")
    assert again == a and (a / "manifest.json").stat().st_mtime_ns == stamp  # reused, not rewritten


def test_seed_changes_the_data(compose_cfg, tokenizer, tmp_path):
    cfg0 = compose_cfg([*SMALL, "seed=0"], cache_dir=tmp_path)
    cfg1 = compose_cfg([*SMALL, "seed=1"], cache_dir=tmp_path)
    assert data_folder(cfg0, tokenizer, tmp_path) != data_folder(cfg1, tokenizer, tmp_path)


# Bad input (one line, nothing written): tests/e2e/test_bad_input.py.


def test_text_files_corpus(compose_cfg, tokenizer, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(30):
        (docs / f"{i:02d}.txt").write_text(f"Document {i}. " + "The quick brown fox jumps over the lazy dog. " * 20)
    folder = build(compose_cfg, tokenizer, tmp_path / "cache", "corpus=text_files", f"corpus.glob={docs}/*.txt")
    m = load_bundle(folder).manifest
    assert m["canonical"]["documents_read"] == 30 and m["canonical"]["eval_documents"] >= 1
    with pytest.raises(ConfigError, match="corpus.glob"):
        build(compose_cfg, tokenizer, tmp_path / "cache", "corpus=text_files", f"corpus.glob={docs}/*.md")


def test_hf_corpus_offline_fails_fast(compose_cfg, tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="corpus=builtin"):
        build(compose_cfg, tokenizer, tmp_path, "corpus=hf")
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "data").exists() or not os.listdir(tmp_path / "data")


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_extreme_mix_ratios(compose_cfg, tokenizer, tmp_path, ratio):
    m = load_bundle(build(compose_cfg, tokenizer, tmp_path, f"data.synthetic_mix_ratio={ratio}")).manifest
    stream = m["tokens"]["train_stream"]
    assert stream["synthetic_share"] == ratio


# --- the cache trusts nothing it did not check ----------------------------------------------
def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte, same size: only the hash sees it
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("file,damage", [("train_blocks.npy", _truncate), ("test_valid.jsonl", _garble),
                                         ("manifest.json", _truncate), ("eval.jsonl", lambda p: p.unlink())])
def test_a_damaged_data_folder_is_refused_on_load_and_rebuilt_by_the_data_stage(
        compose_cfg, tokenizer, tmp_path, file, damage):
    folder = build(compose_cfg, tokenizer, tmp_path)
    before = {p.name: file_sha256(p) for p in folder.iterdir()}
    assert load_bundle(folder).manifest["sizes"]["train_blocks.npy"] == (folder / "train_blocks.npy").stat().st_size
    damage(folder / file)
    with pytest.raises(ConfigError, match=rf"{file}: .*stages=\[data") as err:
        load_bundle(folder)
    assert "\n" not in str(err.value)
    assert build(compose_cfg, tokenizer, tmp_path) == folder  # the data stage rebuilds it...
    assert {p.name: file_sha256(p) for p in folder.iterdir()} == before  # ...byte for byte
    load_bundle(folder)
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # nothing left aside


def test_a_damaged_converted_tokenizer_is_converted_again(tokenizer, tmp_path):
    """The GGUF tokenizer's converted cache (tokenizer.json garbled in place): checked against its
    manifest, converted again, the same vocabulary."""
    from omegaconf import OmegaConf

    from metaexamples.models import load_tokenizer

    spec = OmegaConf.create({"source": "scratch", "tokenizer": "smollm2", "path": None})
    folder = tmp_path / "tokenizers" / "SmolLM2-135M-Instruct.Q4_1"
    tokenizer.save_pretrained(folder)  # as the first conversion leaves it, without converting here
    assert load_tokenizer(spec, tmp_path).get_vocab() == tokenizer.get_vocab()  # an older folder: gains a manifest
    assert (folder / "manifest.json").exists()
    path = folder / "tokenizer.json"
    path.write_text(path.read_text().replace('"<|im_start|>"', '"<|im_stArt|>"', 1))
    again = load_tokenizer(spec, tmp_path)
    assert again.get_vocab() == tokenizer.get_vocab()
    assert '"<|im_start|>"' in path.read_text()


def test_written_files_and_folders_follow_the_umask(tmp_path):
    from metaexamples.io import atomic_dir, honour_umask, write_json

    old = os.umask(0o022)
    try:
        for umask, file_mode, dir_mode in ((0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)):
            os.umask(umask)
            write_json(tmp_path / f"r{umask}.json", {"a": 1})
            with atomic_dir(tmp_path / f"d{umask}") as tmp:
                (tmp / "x.npy").write_bytes(b"1")
                os.chmod(tmp / "x.npy", 0o600)  # as a library may write it (HF's model.safetensors)
                honour_umask(tmp)
            assert (tmp_path / f"r{umask}.json").stat().st_mode & 0o777 == file_mode
            assert (tmp_path / f"d{umask}").stat().st_mode & 0o777 == dir_mode
            assert (tmp_path / f"d{umask}" / "x.npy").stat().st_mode & 0o777 == file_mode
    finally:
        os.umask(old)
