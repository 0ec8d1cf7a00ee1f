"""Problem kinds of task=procedural: the registry `KINDS` and the `Kind` base class.

A kind is one module here with a `Kind` subclass; register it in `KINDS` at the bottom. Each kind
generates plain-dict problems with an exact reference answer and a reference program:

    {"id": "arithmetic-d3-00017", "kind": "arithmetic", "difficulty": 3,
     "question": "2 + 3 * 4", "answer": "14", "input": "2 + 3 * 4",
     "solution": "def solve(expression):\\n    tokens = ...",
     "meta": {...},
     "hidden": [{"input": "7 - 5 * 2", "answer": "-3"}, ...]}

`answer` is canonical: an integer in decimal, or "True" / "False". `solution`, run as `exec` and
then `solve(input)`, returns exactly the answer (an int, or a bool for brackets); it is the kind's
general algorithm, the same for every problem, so it is right on the hidden inputs too. `hidden` (added
by the splits, `Kind.hidden_tests`) holds the inputs a program answer is also run on and that the
prompt never shows.
"""

from __future__ import annotations

import random
from typing import Any

from metaexamples.errors import ConfigError
from metaexamples.tasks.procedural.difficulty import params

_HIDDEN_ATTEMPTS = 10_000  # draws per problem's hidden inputs before giving up (never an endless loop)


class Kind:
    """One problem kind. Subclasses set the class attributes and implement the three methods."""

    name: str = ""
    arg_name: str = "x"  # the parameter name of the reference solve()
    answer_type: type = int  # int or bool: the type solve() returns
    # Prompt text (answers.question_prompt appends the problem / the example input).
    direct_instruction: str = ""
    program_instruction: str = ""

    def generate(self, rng: random.Random, difficulty: int, index: int) -> dict:
        """One problem at `difficulty`, drawing only from `rng`; `index` numbers its id."""
        raise NotImplementedError

    def capacity(self, difficulty: int) -> int | None:
        """How many distinct questions `generate` can produce at `difficulty`; None when unknown
        (and astronomically many)."""
        raise NotImplementedError

    def evaluate(self, x: str) -> Any:
        """The answer for input `x`, computed independently of the generator (a real parser)."""
        raise NotImplementedError

    def capacity_by_answer(self, difficulty: int) -> dict[str, int | None] | None:
        """For kinds whose answers the splits balance (bool answers): how many distinct questions
        `generate` can produce per answer at `difficulty` (None where unknown); else None."""
        return None

    def hidden_tests(self, rng: random.Random, difficulty: int, shown: dict, n: int) -> list[dict]:
        """`n` inputs of the same kind and difficulty as problem `shown`, with their answers:
        distinct, none equal to the shown input, and no answer on more than half of them rounded
        up (so no constant -- True, False or one integer -- is right on all of them)."""
        tests: list[dict] = []
        inputs = {shown["input"]}
        per_answer: dict[str, int] = {}
        most = (n + 1) // 2
        for _ in range(_HIDDEN_ATTEMPTS):
            if len(tests) == n:
                return tests
            p = self.generate(rng, difficulty, 0)
            if p["input"] in inputs or per_answer.get(p["answer"], 0) >= most:
                continue
            inputs.add(p["input"])
            per_answer[p["answer"]] = per_answer.get(p["answer"], 0) + 1
            tests.append({"input": p["input"], "answer": p["answer"]})
        if len(tests) == n:
            return tests
        raise ConfigError(f"task.difficulty: {self.name} at difficulty {difficulty} has too few distinct "
                          f"problems for {n} hidden test inputs per problem")

    # helpers -------------------------------------------------------------------------------
    def params(self, difficulty: int) -> dict:
        return params(self.name, difficulty)

    def make_problem(self, difficulty: int, index: int, question: str, answer: Any,
                     solution: str, meta: dict) -> dict:
        return {
            "id": f"{self.name}-d{difficulty}-{index:05d}",
            "kind": self.name,
            "difficulty": difficulty,
            "question": question,
            "answer": canonical_answer(answer),
            "input": question,
            "solution": solution,
            "meta": meta,
        }


def canonical_answer(value: Any) -> str:
    """int -> decimal string, bool -> "True"/"False"."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"answers are ints or bools, got {type(value).__name__}")


# Expression trees shared by arithmetic and rpn: ("n", int) | ("b", op, left, right) | ("neg", tree)
_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def tree_value(tree: tuple) -> int:
    tag = tree[0]
    if tag == "n":
        return tree[1]
    if tag == "neg":
        return -tree_value(tree[1])
    return _APPLY[tree[1]](tree_value(tree[2]), tree_value(tree[3]))


def tree_ops(tree: tuple) -> int:
    """Number of binary operators."""
    if tree[0] == "n":
        return 0
    if tree[0] == "neg":
        return tree_ops(tree[1])
    return 1 + tree_ops(tree[2]) + tree_ops(tree[3])


def tree_leaves(tree: tuple) -> list[int]:
    if tree[0] == "n":
        return [tree[1]]
    if tree[0] == "neg":
        return tree_leaves(tree[1])
    return tree_leaves(tree[2]) + tree_leaves(tree[3])


# The registry (imported last: the kind modules import Kind from here).
from metaexamples.tasks.procedural.kinds.arithmetic import Arithmetic  # noqa: E402
from metaexamples.tasks.procedural.kinds.brackets import Brackets  # noqa: E402
from metaexamples.tasks.procedural.kinds.rpn import Rpn  # noqa: E402

KINDS: dict[str, Kind] = {"arithmetic": Arithmetic(), "rpn": Rpn(), "brackets": Brackets()}


def available() -> list[str]:
    return sorted(KINDS)


def get_kind(name: str, key: str = "task.kind") -> Kind:
    """The kind named `name`, else ConfigError naming `key`."""
    if not isinstance(name, str) or name not in KINDS:
        raise ConfigError(f"{key}: unknown {name!r}; available: {', '.join(available())}")
    return KINDS[name]


__all__ = ["KINDS", "Kind", "available", "canonical_answer", "get_kind", "tree_value"]
