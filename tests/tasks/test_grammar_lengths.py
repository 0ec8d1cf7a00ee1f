"""Length generalization (grammar.eval_lengths) and the context-sensitive languages in the data
stage: every string of every split judged by recognizers written here, bad buckets refused."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

import pytest

from metaexamples.errors import ConfigError
from metaexamples.tasks.grammar import GrammarTask
from metaexamples.tasks.grammar.build import data_folder, run_data_stage
from metaexamples.tasks.grammar.bundle import load_bundle
from metaexamples.tasks.grammar.languages.copy import Copy

SMALL = ["data.n_train_items=200", "data.n_eval=20", "data.n_test=40", "data.n_test_long=30"]
BUCKETS = "grammar.eval_lengths=[[17,32],[33,64]]"
K = 5  # data.num_symbols


def _dyck(s):
    stack = []
    for x in s:
        if x in (0, 2):
            stack.append(x + 1)
        elif not stack or stack.pop() != x:
            return False
    return not stack


def _abc(s):
    m = re.fullmatch(r"(a+)(b+)(c+)", "".join("abc"[x % 3] for x in s))
    return bool(m) and len(m.group(1)) == len(m.group(2)) == len(m.group(3))


RULES = {  # membership without the length bounds, written independently of languages/
    "g1": lambda s: True,
    "g2": lambda s: all(c % 2 == 0 for c in Counter(s).values()),
    "g3": lambda s: list(s) == list(s)[::-1],
    "dyck": lambda s: all(x < 4 for x in s) and _dyck(s),
    "copy": lambda s: len(s) % 2 == 0 and list(s[:len(s) // 2]) == list(s[len(s) // 2:]),
    "anbncn": _abc,
}


def accepts(name, s, lo, hi):
    return lo <= len(s) <= hi and all(0 <= x < K for x in s) and RULES[name](s)


@pytest.fixture(scope="module")
def bundles(compose_cfg, tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    return {name: load_bundle(run_data_stage(compose_cfg([*SMALL, BUCKETS, f"grammar={name}"], cache_dir=root),
                                             tokenizer, root))
            for name in RULES}


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_string_of_every_split_is_judged_right(bundles, name):
    b = bundles[name]
    for split in ("test_valid", "test_invalid", "eval"):
        for r in b.split(split):
            assert accepts(name, r["symbols"], 4, 16) == r["valid"], (split, r)
    for r in b.split("train"):
        for s, verdict in zip(r.get("strings", [r.get("symbols")]), r.get("verdicts", [True])):
            assert accepts(name, s, 4, 16) == verdict, r
    long_rows = b.long_rows()
    assert b.manifest["counts"]["test_long"] == len(long_rows) and "test_long.jsonl" in b.manifest["files"]
    assert Counter((r["bucket"], r["valid"]) for r in long_rows) == {
        (bucket, v): 30 for bucket in ("17-32", "33-64") for v in (True, False)}
    for r in long_rows:
        lo, hi = map(int, r["bucket"].split("-"))
        assert accepts(name, r["symbols"], lo, hi) == r["valid"], r
        assert lo <= r["length"] == len(r["symbols"]) <= hi
    # built as test_invalid: hard (minimal edit) and random negatives, length-matched per bucket
    hows = Counter(r["how"] for r in long_rows if not r["valid"])
    assert hows["random"] > 0 and sum(hows[k] for k in ("substitution", "insertion", "deletion")) > 0
    for bucket in ("17-32", "33-64"):
        lengths = lambda v: sorted(r["length"] for r in long_rows if r["bucket"] == bucket and r["valid"] == v)  # noqa: E731
        assert lengths(True) == lengths(False)


def test_the_cache_key_covers_the_length_settings(compose_cfg, tokenizer, tmp_path):
    folders = {data_folder(compose_cfg([*SMALL, *extra]), tokenizer, tmp_path)
               for extra in ([], [BUCKETS], ["grammar.eval_lengths=[[17,32]]"], [BUCKETS, "data.n_test_long=31"])}
    assert len(folders) == 4


@pytest.mark.parametrize("buckets, says", [
    ("[[10,20]]", "overlaps the training lengths"),
    ("[[33,64],[17,32]]", "out of order"),
])
def test_bad_eval_lengths_are_one_line_exit_2(buckets, says):
    proc = subprocess.run([sys.executable, "-m", "metaexamples", f"grammar.eval_lengths={buckets}", "logger=none"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: grammar.eval_lengths:") and says in lines[0], proc.stderr


@pytest.mark.parametrize("buckets, says", [
    ("[[17,40],[33,64]]", "is out of order or overlaps the one ending at 40"),
    ("[[20,17]]", "bucket [20, 17]: lo must be <= hi"),
    ("[[17]]", "each bucket must be a pair [lo, hi] of integers, got [17]"),
    ("[[17,32.5]]", "each bucket must be a pair [lo, hi] of integers"),
])
def test_bad_eval_lengths_are_refused_by_the_config_check(compose_cfg, buckets, says):
    with pytest.raises(ConfigError) as err:
        GrammarTask.check_config(compose_cfg([f"grammar.eval_lengths={buckets}"]))
    assert str(err.value).startswith("grammar.eval_lengths: ") and says in str(err.value)


def test_a_bucket_without_strings_of_the_language_is_refused(compose_cfg):
    cfg = compose_cfg(["grammar=anbncn", "grammar.eval_lengths=[[19,20]]"])
    with pytest.raises(ConfigError, match=r"grammar.eval_lengths: bucket \[19, 20\] has no string of anbncn"):
        GrammarTask.check_config(cfg)


def test_grammar_decoding_is_refused_where_the_constraint_is_not_exact(compose_cfg, monkeypatch):
    cfg = compose_cfg(["grammar=copy", "decoding=grammar"])
    GrammarTask.check_config(cfg)  # copy's allowed_next is exact
    monkeypatch.setattr(Copy, "exact_constraint", False)
    with pytest.raises(ConfigError, match="^decoding.constraint: grammar is not exact for grammar=copy"):
        GrammarTask.check_config(cfg)


@pytest.mark.slow
def test_length_buckets_end_to_end_with_exact_constrained_decoding(tmp_path):
    """The pipeline on copy with eval_lengths and decoding=grammar: per-bucket AUROC and
    validity in results.json; the constraint (the bucket's language, prompts of several
    lengths) makes every sample valid at every length."""
    import json
    import os

    args = ["experiment=smoke", "grammar=copy", "decoding=grammar", BUCKETS, "data.n_test_long=12", "logger=none",
            "train.num_threads=1", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run([sys.executable, "-m", "metaexamples", *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "METAEXAMPLES_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(results["ppl"]["by_length"]) == set(results["gen"]["by_length"]) == {"4-16", "17-32", "33-64"}
    for bucket, block in results["ppl"]["by_length"].items():
        assert block["n_valid"] == block["n_invalid"] == (60 if bucket == "4-16" else 12)
        assert 0.0 <= block["auroc"] <= 1.0 and block["in_training"] == (bucket == "4-16")
    for bucket, block in results["gen"]["by_length"].items():
        assert block["samples"] == (40 if bucket == "4-16" else 12) and block["validity_rate"] == 1.0, (bucket, block)
