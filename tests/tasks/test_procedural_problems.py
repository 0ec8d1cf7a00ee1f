"""task=procedural problem generators: exact answers, reference programs, splits, extraction."""

from __future__ import annotations

import ast
import itertools
import json
import random
import re

import pytest

from metaexamples.errors import ConfigError
from metaexamples.tasks.procedural.answers import (
    answer_matches,
    extract_direct,
    extract_program,
    question_prompt,
    target_text,
)
from metaexamples.tasks.procedural.difficulty import DIFFICULTY, difficulty_table_markdown
from metaexamples.tasks.procedural.kinds import KINDS
from metaexamples.tasks.procedural.splits import make_splits

ALL_KINDS = ["arithmetic", "brackets", "rpn"]
DIFFS = range(1, 11)


def _problems(kind: str, d: int, n: int, seed: str = "t") -> list[dict]:
    rng = random.Random(f"{seed}/{kind}/{d}")
    return [KINDS[kind].generate(rng, d, i) for i in range(n)]


def _run(problem: dict):
    namespace: dict = {}
    exec(problem["solution"], namespace)  # noqa: S102 - our own reference program
    return namespace["solve"](problem["input"])


# independent reference implementations --------------------------------------------------------
def _rpn_eval(text: str) -> int:
    stack = []
    for tok in text.split(" "):
        if re.fullmatch(r"\d+", tok):
            stack.append(int(tok))
        else:
            right, left = stack.pop(), stack.pop()
            stack.append({"+": left + right, "-": left - right, "*": left * right}[tok])
    assert len(stack) == 1
    return stack[0]


def _rpn_max_stack(text: str) -> int:
    depth = best = 0
    for tok in text.split(" "):
        depth += 1 if tok.isdigit() else -1
        best = max(best, depth)
    return best


def _balanced(s: str) -> bool:
    """By repeatedly deleting adjacent matched pairs (not a stack)."""
    prev = None
    while prev != s:
        prev, s = s, s.replace("()", "").replace("[]", "").replace("{}", "")
    return s == ""


def _max_nesting(s: str) -> int:
    return max(itertools.accumulate(1 if c in "([{" else -1 for c in s))


# the table -------------------------------------------------------------------------------------
def test_difficulty_table_markdown_has_every_row_and_kind():
    md = difficulty_table_markdown()
    lines = md.strip().splitlines()
    assert len(lines) == 12
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    assert [line.split("|")[1].strip() for line in lines[2:]] == [str(d) for d in DIFFS]
    for kind in ALL_KINDS:
        assert kind in lines[0]
        assert sorted(DIFFICULTY[kind]) == list(DIFFS)
    assert len({line.count("|") for line in lines}) == 1


# arithmetic ------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", DIFFS)
def test_arithmetic_answers_match_python_eval(d):
    p = DIFFICULTY["arithmetic"][d]
    for problem in _problems("arithmetic", d, 150):
        q = problem["question"]
        assert re.fullmatch(r"[0-9+\-*() ]+", q), q
        assert problem["input"] == q
        assert problem["answer"] == str(eval(q))  # noqa: S307 - our own digits and + - * ( )
        assert KINDS["arithmetic"].evaluate(q) == int(problem["answer"])
        tree = ast.parse(q, mode="eval")
        n_binops = sum(isinstance(node, ast.BinOp) for node in ast.walk(tree))
        assert n_binops == p["n_ops"] == problem["meta"]["n_ops"]
        operands = [int(t) for t in re.findall(r"\d+", q)]
        assert max(operands) <= p["max_operand"]
        depth = max(itertools.accumulate({"(": 1, ")": -1}.get(c, 0) for c in q))
        assert depth <= p["max_depth"] and depth == problem["meta"]["depth"]
        if not p["p_unary"]:
            assert not re.search(r"-[\d(]", q), q  # binary minus only, always followed by a space
        # reference program: the general evaluator (the same for every problem), returns the answer
        value = _run(problem)
        assert type(value) is int and value == int(problem["answer"])
        assert answer_matches(value, problem)
        assert problem["solution"] == KINDS["arithmetic"].generate(random.Random(0), 1, 0)["solution"]


def test_arithmetic_uses_parentheses_and_unary_minus_where_allowed():
    qs = [p["question"] for p in _problems("arithmetic", 10, 300)]
    assert any("(" in q for q in qs) and any("-(" in q for q in qs) and any(re.search(r"(^|[ (])-\d", q) for q in qs)
    # the parentheses are necessary: dropping a pair changes the parse tree
    for q in qs[:50]:
        for m in re.finditer(r"\(", q):
            depth, j = 0, m.start()
            for j in range(m.start(), len(q)):
                depth += {"(": 1, ")": -1}.get(q[j], 0)
                if depth == 0:
                    break
            stripped = q[:m.start()] + q[m.start() + 1:j] + q[j + 1:]
            assert ast.dump(ast.parse(stripped, mode="eval")) != ast.dump(ast.parse(q, mode="eval")), (q, stripped)


def test_arithmetic_capacity_counts_distinct_questions():
    k = KINDS["arithmetic"]
    assert k.capacity(1) == 10 * 10 * 3  # "a op b", operands 0-9, no parentheses or unary minus
    assert len({p["question"] for p in _problems("arithmetic", 1, 6000)}) == 300
    # difficulty 2: two operators, operands 0-9, parentheses one deep, counted with Python's parser:
    # a pair of parentheses is there only when dropping it changes the parse
    patterns = 0
    for o1, o2 in itertools.product("+-*", repeat=2):
        patterns += 1  # a o1 b o2 c
        for q in (f"(1 {o1} 2) {o2} 3", f"1 {o1} (2 {o2} 3)"):
            plain = q.replace("(", "").replace(")", "")
            patterns += ast.dump(ast.parse(q, mode="eval")) != ast.dump(ast.parse(plain, mode="eval"))
    assert k.capacity(2) == patterns * 10**3
    assert all(isinstance(k.capacity(d), int) and k.capacity(d) > k.capacity(d - 1) for d in range(2, 11))


# rpn -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", DIFFS)
def test_rpn_answers_match_an_independent_stack_evaluator(d):
    p = DIFFICULTY["rpn"][d]
    for problem in _problems("rpn", d, 150):
        q = problem["question"]
        assert re.fullmatch(r"\d+( (\d+|[-+*]))*", q), q
        assert problem["answer"] == str(_rpn_eval(q))
        assert KINDS["rpn"].evaluate(q) == int(problem["answer"])
        tokens = q.split(" ")
        assert sum(t in "+-*" for t in tokens) == p["n_ops"]
        assert max(int(t) for t in tokens if t.isdigit()) <= p["max_operand"]
        assert _rpn_max_stack(q) <= p["max_stack"] and _rpn_max_stack(q) == problem["meta"]["stack_depth"]
        value = _run(problem)
        assert type(value) is int and answer_matches(value, problem)
        assert problem["solution"] == KINDS["rpn"].generate(random.Random(0), 1, 0)["solution"]  # general


def test_rpn_capacity():
    k = KINDS["rpn"]
    assert k.capacity(1) == 10 * 10 * 3
    assert k.capacity(2) == 10**3 * 3**2  # two slots: only "a b o c o"
    assert len({p["question"] for p in _problems("rpn", 1, 6000)}) == 300
    assert {_rpn_max_stack(p["question"]) for p in _problems("rpn", 2, 200)} == {2}


# brackets --------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", DIFFS)
def test_brackets_answers_and_edits(d):
    p = DIFFICULTY["brackets"][d]
    problems = _problems("brackets", d, 300)
    hows = {}
    for problem in problems:
        q, meta = problem["question"], problem["meta"]
        assert set(q) <= set("()[]{}") and q
        assert problem["answer"] == str(_balanced(q))
        value = _run(problem)
        assert type(value) is bool and answer_matches(value, problem)
        how = meta["how"]
        hows[how] = hows.get(how, 0) + 1
        assert (how == "balanced") == _balanced(q)
        if how == "balanced":
            assert len(q) == p["length"] and _max_nesting(q) <= p["max_depth"]
        elif how == "random":
            assert len(q) == p["length"]
        else:  # a minimal edit of a balanced string, really unbalanced
            src, i = meta["source"], meta["position"]
            assert _balanced(src) and len(src) == p["length"] and _max_nesting(src) <= p["max_depth"]
            assert not _balanced(q)
            if how == "substitution":
                assert len(q) == len(src) and [j for j in range(len(q)) if q[j] != src[j]] == [i]
            elif how == "insertion":
                assert q[:i] + q[i + 1:] == src
            elif how == "deletion":
                assert q[:i] + src[i] + q[i:] == src
            else:
                assert how == "swap" and src[i] != src[i + 1]
                assert q == src[:i] + src[i + 1] + src[i] + src[i + 2:]
    n_unbalanced = len(problems) - hows.get("balanced", 0)
    assert 0.4 * len(problems) < n_unbalanced < 0.6 * len(problems)
    edits = sum(hows.get(h, 0) for h in ("substitution", "insertion", "deletion", "swap"))
    assert edits > 0.6 * n_unbalanced
    if d >= 3:
        assert set(hows) == {"balanced", "substitution", "insertion", "deletion", "swap", "random"}


def test_brackets_capacity_is_exactly_the_reachable_strings(monkeypatch):
    k = KINDS["brackets"]
    assert k.capacity(10) is None
    assert k.capacity_by_answer(1) == {"True": 648, "False": k.capacity(1) - 648}  # 8 long, 2 deep
    # a small table row, enumerable by hand: "()"-length balanced strings, their edits, random
    # strings of length 2
    monkeypatch.setitem(DIFFICULTY["brackets"], 1, {"length": 2, "max_depth": 1})
    chars = "()[]{}"
    strings = lambda n: {"".join(t) for t in itertools.product(chars, repeat=n)}  # noqa: E731
    # every length-2 string (balanced ones are one deep; the rest come as random strings), the
    # deletions (length 1) and the insertions (length 3) of "()", "[]", "{}"
    expected = strings(2) | strings(1) | {s for s in strings(3) if any(_balanced(s[:i] + s[i + 1:]) for i in range(3))}
    assert k.capacity(1) == len(expected) == 90
    drawn = {p["question"] for p in _problems("brackets", 1, 20000)}
    assert drawn == expected


# splits ----------------------------------------------------------------------------------------
SIZES = {"train": 1400, "val": 200, "test": 200, "ood": 200}


def _dump(splits) -> bytes:
    return json.dumps(splits, sort_keys=True).encode()


def test_splits_disjoint_sized_in_range():
    splits = make_splits(ALL_KINDS, (2, 5), (6, 8), SIZES, seed=3)
    assert {s: len(v) for s, v in splits.items()} == SIZES
    questions = [p["question"] for v in splits.values() for p in v]
    assert len(questions) == len(set(questions)) == 2000
    ids = [p["id"] for v in splits.values() for p in v]
    assert len(set(ids)) == len(ids)
    for split, problems in splits.items():
        lo, hi = (6, 8) if split == "ood" else (2, 5)
        assert all(lo <= p["difficulty"] <= hi for p in problems)
        assert re.fullmatch(r"(arithmetic|rpn|brackets)-d\d+-\d{5}", problems[0]["id"])
    cells = {(p["kind"], p["difficulty"]) for p in splits["train"]}
    assert cells == {(k, d) for k in ALL_KINDS for d in range(2, 6)}
    counts = {k: sum(p["kind"] == k for p in splits["train"]) for k in ALL_KINDS}
    assert min(counts.values()) > 1400 / 3 * 0.8
    for p in splits["test"][:50]:  # every problem is plain JSON and survives a round trip
        assert json.loads(json.dumps(p, sort_keys=True)) == p


def test_splits_deterministic_in_the_seed():
    a = make_splits(ALL_KINDS, [1, 4], [5, 6], SIZES, seed=11)
    b = make_splits(ALL_KINDS, [1, 4], [5, 6], SIZES, seed=11)
    c = make_splits(ALL_KINDS, [1, 4], [5, 6], SIZES, seed=12)
    assert _dump(a) == _dump(b)
    assert _dump(a) != _dump(c)
    assert {p["question"] for p in a["test"]} != {p["question"] for p in c["test"]}
    # the evaluation splits do not move when only n_train changes
    d = make_splits(ALL_KINDS, [1, 4], [5, 6], dict(SIZES, train=50), seed=11)
    assert _dump(d["test"]) == _dump(a["test"]) and _dump(d["val"]) == _dump(a["val"])


def test_splits_can_take_every_distinct_problem_of_a_small_range():
    splits = make_splits(["rpn"], (1, 1), None, {"test": 100, "train": 200}, seed=0)
    assert len({p["question"] for v in splits.values() for p in v}) == 300


def test_splits_give_up_where_the_capacity_is_unknown(monkeypatch):
    monkeypatch.setattr(type(KINDS["rpn"]), "capacity", lambda self, d: None)
    with pytest.raises(ConfigError, match=r"^task.n_test: asked for 301 problems, 301 of them of kind rpn at "
                                          r"difficulty 1, but found only 300 distinct ones \(gave up after"):
        make_splits(["rpn"], (1, 1), None, {"test": 301}, seed=0)


@pytest.mark.parametrize("args, key", [
    ((["foo"], (1, 2), None, {"train": 1}), "task.kind: unknown 'foo'; available: arithmetic, brackets, rpn"),
    (([], (1, 2), None, {"train": 1}), "task.kind:"),
    ((["rpn"], (0, 2), None, {"train": 1}), "task.difficulty:"),
    ((["rpn"], (3, 11), None, {"train": 1}), "task.difficulty:"),
    ((["rpn"], (4, 3), None, {"train": 1}), "task.difficulty:"),
    ((["rpn"], "1-3", None, {"train": 1}), "task.difficulty:"),
    ((["rpn"], (2, 4), (4, 6), {"ood": 1}), "task.ood_difficulty:"),
    ((["rpn"], (2, 4), (7, 6), {"ood": 1}), "task.ood_difficulty:"),
    ((["rpn"], (2, 4), None, {"ood": 1}), "task.ood_difficulty:"),
    ((["rpn"], (2, 4), None, {"train": -1}), "task.n_train:"),
    ((["rpn"], (2, 4), None, {"tset": 1}), "task.n_tset:"),
    ((["brackets"], (1, 1), None, {"test": 1400}),
     "task.n_test: asked for 1400 problems, 700 of them of kind brackets at difficulty 1 with answer True, "
     "but it allows only 648 distinct ones"),
    ((["rpn"], (1, 1), None, {"test": 200, "val": 101}),
     "task.n_val: asked for 101 problems, 101 of them of kind rpn at difficulty 1, but it allows only 300 "
     "distinct ones (200 of them already in test)"),
    ((["arithmetic", "rpn"], (1, 1), None, {"train": 601}), "task.n_train:"),
    ((["rpn"], (1, 1), [2, 2], {"ood": 9001}), "task.n_ood:"),
])
def test_bad_input_is_a_one_line_config_error_naming_the_key(args, key):
    with pytest.raises(ConfigError) as err:
        make_splits(*args, seed=0)
    message = str(err.value)
    assert message.startswith(key) and "\n" not in message


# answers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("14", "14"), ("Answer: -14", "-14"), ("Answer:\n  7\n", "7"), ("2 - 3 = -1", "-1"),
    ("2-3", "3"), ("The value is 1,234.", "1234"), ("14.0", "14"), ("3.5", "3.5"), ("\u221212", "-12"),
    ("first 5, then Answer: 9", "9"), ("I think 4. Answer:", "4"), ("no idea", None), ("", None),
    ("x2", None), ("-0", "0"), ("007", "7"),
])
def test_extract_direct_integers(text, expected):
    assert extract_direct(text, "arithmetic") == expected
    assert extract_direct(text, "rpn") == expected


@pytest.mark.parametrize("text, expected", [
    ("True", "True"), ("false", "False"), ("Yes.", "True"), ("NO", "False"), ("It is balanced", "True"),
    ("It is unbalanced", "False"), ("It is not balanced.", "False"), ("Balanced? no", "False"),
    ("Answer: TRUE", "True"), ("notable nothing", None), ("1", None),
])
def test_extract_direct_brackets(text, expected):
    assert extract_direct(text, "brackets") == expected


def test_extract_program():
    two = "Try:\n```python\ndef solve(x):\n    return 1\n```\nbetter:\n```python\ndef solve(x):\n    return 2\n```\n"
    assert extract_program(two) == "def solve(x):\n    return 2\n"
    plain = "```\ndef solve(x):\n    return 3\n```"
    assert extract_program(plain) == "def solve(x):\n    return 3\n"
    loose = "Sure.\nimport re\ndef helper(x):\n    return x\ndef solve(x):\n    return helper(4)\n"
    assert extract_program(loose) == "def helper(x):\n    return x\ndef solve(x):\n    return helper(4)\n"
    assert extract_program("```python\ndef solve(x):\n    return 5") == "def solve(x):\n    return 5\n"  # truncated
    assert extract_program("```python\nprint(1)\n```") is None
    assert extract_program("def helper(x): return x") is None
    assert extract_program("the answer is 14") is None


def test_answer_matches_is_strict():
    arith = {"kind": "arithmetic", "answer": "1"}
    assert answer_matches(1, arith)
    assert not answer_matches(True, arith) and not answer_matches("1", arith) and not answer_matches(1.0, arith)
    assert not answer_matches(2, arith) and not answer_matches(None, arith)
    br = {"kind": "brackets", "answer": "True"}
    assert answer_matches(True, br)
    assert not answer_matches(1, br) and not answer_matches("True", br) and not answer_matches(False, br)
    assert answer_matches(False, {"kind": "brackets", "answer": "False"})
    assert not answer_matches(0, {"kind": "brackets", "answer": "False"})


@pytest.mark.parametrize("kind, arg", [("arithmetic", "expression"), ("rpn", "expression"), ("brackets", "s")])
def test_prompts_and_targets(kind, arg):
    problem = _problems(kind, 4, 1)[0]
    direct = question_prompt(problem, "direct")
    assert direct.endswith("\n" + problem["question"])
    program = question_prompt(problem, "program")
    assert f"solve({arg})" in program and program.endswith(f"\nExample input: {problem['input']}")
    assert extract_direct(target_text(problem, "direct"), kind) == problem["answer"]
    target = target_text(problem, "program")
    assert target.startswith("```python\n") and target.endswith("```")
    code = extract_program(target)
    assert code == problem["solution"]
    assert answer_matches(_run(dict(problem, solution=code)), problem)
    with pytest.raises(ConfigError, match=r"^task\.answer:"):
        question_prompt(problem, "cot")
