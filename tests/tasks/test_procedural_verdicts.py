"""task=procedural judges an answer on inputs it never saw (issue 21, section 3): hidden test
inputs for programs and the `shown_only` verdict, a direct-answer extractor that reads
negations, hedges and echoes right, exact kind and answer shares in every split, and the best
constant-answer baseline beside accuracy."""

from __future__ import annotations

from collections import Counter

import pytest

from metaexamples.evaluation.metrics import verified_metrics
from metaexamples.tasks import make_task
from metaexamples.tasks.procedural import ProceduralTask
from metaexamples.tasks.procedural.answers import extract_direct, question_prompt
from metaexamples.tasks.procedural.difficulty import DIFFICULTY
from metaexamples.tasks.procedural.evaluate import constant_baseline
from metaexamples.tasks.procedural.kinds import KINDS
from metaexamples.tasks.procedural.splits import HIDDEN_TESTS, make_splits
from metaexamples.tasks.procedural.verifier import verify_texts

KINDS3 = ["arithmetic", "brackets", "rpn"]
DEFAULT_SIZES = {"train": 2000, "val": 100, "test": 100, "ood": 100}


@pytest.fixture(scope="module")
def default_splits() -> dict[str, list[dict]]:
    """The default task=procedural splits (kind=all, difficulty [1, 3], ood [4, 5], seed 0)."""
    return make_splits(KINDS3, [1, 3], [4, 5], DEFAULT_SIZES, seed=0)


# hidden inputs ---------------------------------------------------------------------------------
def _size_ok(kind: str, d: int, x: str) -> bool:
    """`x` is of the size difficulty `d` gives `kind` (the generator's own definition)."""
    p = DIFFICULTY[kind][d]
    if kind == "brackets":
        return len(x) in (p["length"] - 1, p["length"], p["length"] + 1)
    if kind == "rpn":
        return sum(tok in "+-*" for tok in x.split(" ")) == p["n_ops"]
    return sum(1 for i, c in enumerate(x) if c in "+*" or (c == "-" and x[i + 1] == " ")) == p["n_ops"]


def test_every_problem_carries_hidden_inputs_of_its_kind_and_difficulty(default_splits):
    for split, rows in default_splits.items():
        for r in rows:
            hidden = r["hidden"]
            assert len(hidden) >= HIDDEN_TESTS >= 5
            inputs = [t["input"] for t in hidden]
            assert len(set(inputs)) == len(inputs) and r["input"] not in inputs
            k = KINDS[r["kind"]]
            for t in hidden:
                assert t["answer"] == str(k.evaluate(t["input"]))  # an independent parser
                assert _size_ok(r["kind"], r["difficulty"], t["input"]), (split, r["id"], t)
            # no constant is right on the shown input and every hidden one
            assert len({r["answer"], *(t["answer"] for t in hidden)}) >= 2
            if r["kind"] == "brackets":
                assert set(Counter(t["answer"] for t in hidden).values()) <= {2, 3}


def test_the_prompt_never_shows_a_hidden_input(default_splits):
    for r in default_splits["test"][:30]:
        for fmt in ("direct", "program"):
            prompt = question_prompt(r, fmt)
            assert prompt == question_prompt({**r, "hidden": [{"input": "changed", "answer": "0"}]}, fmt)
            if r["kind"] != "brackets":  # brackets' instruction itself lists "()[]{}"
                assert not any(t["input"] in prompt for t in r["hidden"])


@pytest.fixture(scope="module")
def program_cfg(compose_cfg, tmp_path_factory):
    return compose_cfg(["task=procedural", "experiment=smoke", "model=tiny", "task.answer=program",
                        "task.timeout_s=1", "task.workers=2"], cache_dir=tmp_path_factory.mktemp("verdicts"))


def _row(splits, kind: str, answer: str | None = None) -> dict:
    return next(r for r in splits["test"] if r["kind"] == kind and (answer is None or r["answer"] == answer))


def test_programs_right_only_on_the_shown_input_are_shown_only(program_cfg, default_splits):
    arith = dict(_row(default_splits, "arithmetic"), input="36 * (-14 - 44) + 3", question="36 * (-14 - 44) + 3",
                 answer=str(36 * (-14 - 44) + 3))
    balanced = _row(default_splits, "brackets", "True")
    rpn = _row(default_splits, "rpn")
    reference = "def solve(expression):\n    return eval(expression)\n"  # right on any infix input
    cases = [
        (arith, "```python\ndef solve(expression):\n    return (36 * (-14 - 44)) + 3\n```", "shown_only"),
        (balanced, "```python\ndef solve(s):\n    return bool(s) == True\n```", "shown_only"),
        # right on the shown input, crashes on the others: still not correct
        (rpn, f"def solve(x):\n    if x == {rpn['input']!r}:\n        return {rpn['answer']}\n    raise ValueError\n",
         "shown_only"),
        (arith, reference, "correct"),
        (balanced, f"```python\n{balanced['solution']}```", "correct"),
        (rpn, f"```python\n{rpn['solution']}```", "correct"),
        (arith, "def solve(expression):\n    return 1\n", "wrong_answer"),
    ]
    got = verify_texts(program_cfg.task, [c[0] for c in cases], [c[1] for c in cases])
    assert [v.kind for v in got] == [c[2] for c in cases]
    assert [v.reward for v in got] == [float(c[2] == "correct") for c in cases]
    assert got[0].extracted == str(36 * (-14 - 44) + 3)  # what it returned on the shown input


def test_shown_only_flows_into_the_verdict_counts():
    """eval_verify and expert iteration both count verdicts with verified_metrics, generically."""
    rows = [{"id": "a", "reward": 0.0, "verdict": "shown_only"}, {"id": "a", "reward": 1.0, "verdict": "correct"}]
    assert verified_metrics(rows, [1])["verdicts"] == {"correct": 1, "shown_only": 1}
    [table] = ProceduralTask.report_tables
    keys = [k for _, k in table.columns]
    assert "verify.test.verdicts.shown_only" in keys and "verify.test.baseline.accuracy" in keys


# the direct-answer extractor -------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("I have no idea.", None), ("This is not true", "False"), ("It isn't balanced", "False"),
    ("It is not a balanced string.", "False"), ("It is not unbalanced", "True"), ("Not false.", "True"),
    ("No.", "False"), ("No\nThe last bracket is left open", "False"), ("No rainbow", None),
    ("No, it is balanced", "True"), ("There are no unmatched brackets, so it is balanced", "True"),
    ("Maybe true", None), ("It could be balanced", None), ("I'm not sure, probably False", None),
    ("True or False", None), ("balanced or not", None), ("I don\u2019t know", None),
    ("The answer is True, not False", "True"),
])
def test_extract_direct_brackets_negations_and_hedges(text, expected):
    assert extract_direct(text, "brackets", "([)]") == expected


@pytest.mark.parametrize("text, expected", [
    ("The answer is 14, not 15", "14"), ("It is not 15 but 14", "14"), ("14 rather than 15", "14"),
    ("Answer: 9, not 8", "9"), ("It might be 12", None), ("14 or 15", None), ("I have no idea.", None),
    ("Probably 7", None), ("2 - 3 = -1", "-1"), ("I think 4. Answer:", "4"),
])
def test_extract_direct_integers_negations_and_hedges(text, expected):
    assert extract_direct(text, "arithmetic", "2 + 3 * 4") == expected


@pytest.mark.parametrize("question, text, expected", [
    ("0 8 +", "0 8 + (+:::", None),  # only the question again
    ("0 8 +", "0 8", None),  # a truncated copy of it
    ("0 8 +", "0 8 + = 8", "8"),  # the question, then an answer
    ("8 0 +", "8", "8"),  # a one-token answer is an answer, even where the question starts with it
    ("3 + 5", "The value of 3 + 5 is 8.", "8"),
    ("12 3 +", "12 36", "36"),  # "12 3" is no prefix of "12 36"
])
def test_extract_direct_ignores_echoes_of_the_question(question, text, expected):
    assert extract_direct(text, "rpn", question) == expected


def test_an_echo_of_the_question_is_not_correct_in_the_verifier(program_cfg):
    cfg = program_cfg.task.copy()
    cfg.answer = "direct"
    row = {"kind": "rpn", "question": "0 8 +", "input": "0 8 +", "answer": "8"}
    got = verify_texts(cfg, [row, row], ["0 8 + (+:::", "8"])
    assert [v.kind for v in got] == ["no_answer", "correct"]


# splits ----------------------------------------------------------------------------------------
def test_kinds_and_bracket_answers_are_evenly_shared_in_every_split(default_splits):
    for split, rows in default_splits.items():
        kinds = Counter(r["kind"] for r in rows)
        assert all(abs(kinds[k] / len(rows) - 1 / 3) <= 0.02 for k in KINDS3), (split, kinds)
        brackets = [r for r in rows if r["kind"] == "brackets"]
        share = sum(r["answer"] == "True" for r in brackets) / len(brackets)
        assert abs(share - 0.5) <= 0.05, (split, share)
        for d in {r["difficulty"] for r in brackets}:  # also per difficulty: no shortcut by length
            cell = [r["answer"] == "True" for r in brackets if r["difficulty"] == d]
            assert abs(sum(cell) - len(cell) / 2) <= 1, (split, d)
        cells = Counter((r["kind"], r["difficulty"]) for r in rows)
        assert max(cells.values()) - min(cells.values()) <= 1, (split, cells)


@pytest.mark.parametrize("n", [10, 30, 31, 100])
def test_small_splits_are_even_to_one_problem(n):
    test = make_splits(KINDS3, [1, 3], None, {"test": n}, seed=1)["test"]
    kinds = Counter(r["kind"] for r in test)
    assert max(kinds.values()) - min(kinds.values()) <= 1
    answers = Counter(r["answer"] for r in test if r["kind"] == "brackets")
    assert abs(answers["True"] - answers["False"]) <= 1, answers


def test_a_changed_split_format_is_not_read_from_an_old_cache(compose_cfg, tokenizer, tmp_path, monkeypatch):
    import metaexamples.tasks.procedural as procedural

    cfg = compose_cfg(["task=procedural", "experiment=smoke", "model=tiny"], cache_dir=tmp_path)
    task = make_task(cfg, tokenizer, tmp_path)
    monkeypatch.setattr(procedural, "DATA_FORMAT", 1)
    old = task._folder()
    monkeypatch.undo()
    assert task._folder() != old and task.data_key()["format"] >= 2
    task.prepare_data()
    assert all(len(r["hidden"]) >= 5 for s in ("train", "val", "test", "ood") for r in task.rows(s))


# the constant-answer baseline -------------------------------------------------------------------
def test_constant_baseline_is_the_best_constant_per_kind(default_splits):
    problems = default_splits["test"]
    rows = [{"kind": p["kind"], "reward": float(p["kind"] == "brackets")} for p in problems]
    direct = constant_baseline(problems, rows, "direct")
    for kind in KINDS3:
        ps = [p for p in problems if p["kind"] == kind]
        best = max(Counter(p["answer"] for p in ps).values()) / len(ps)
        entry = direct["by_kind"][kind]
        assert entry["accuracy"] == pytest.approx(best)
        assert sum(p["answer"] == entry["answer"] for p in ps) / len(ps) == pytest.approx(best)
        assert entry["model_accuracy"] == float(kind == "brackets")
    assert 0.45 <= direct["by_kind"]["brackets"]["accuracy"] <= 0.55  # balanced answers: "always False" ~ 0.5
    right = sum(direct["by_kind"][k]["accuracy"] * sum(p["kind"] == k for p in problems) for k in KINDS3)
    assert direct["accuracy"] == pytest.approx(right / len(problems))
    program = constant_baseline(problems, rows, "program")  # a constant program fails a hidden input
    assert program["accuracy"] == 0.0
    assert program["by_kind"]["brackets"]["accuracy_on_shown_input"] == direct["by_kind"]["brackets"]["accuracy"]
