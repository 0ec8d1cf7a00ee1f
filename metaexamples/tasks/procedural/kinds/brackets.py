"""Balanced brackets: `({[]})` -> True, `({[})]` -> False, over the three kinds () [] {}.

Half the problems are balanced strings of the difficulty's `length`, nested at most `max_depth`
deep (uniform over such strings). The other half are unbalanced: 80% a minimal edit of a fresh
balanced string (one substitution, insertion, deletion or adjacent swap, the edit kind uniform,
the result checked to be unbalanced), 20% a uniformly random unbalanced string of the same length.
`meta.how` records which ("balanced", "substitution", "insertion", "deletion", "swap", "random"),
`meta.position` where the edit was made and `meta.source` the balanced string it was made from.
"""

from __future__ import annotations

import random
from functools import lru_cache
from math import comb

from metaexamples.tasks.procedural.kinds import Kind

OPEN = "([{"
CLOSE = ")]}"
CHARS = OPEN + CLOSE
_MATCH = {c: o for o, c in zip(OPEN, CLOSE)}
P_BALANCED = 0.5
P_EDIT = 0.8  # of the unbalanced ones; the rest are random strings
EDITS = ("substitution", "insertion", "deletion", "swap")
# Capacity is counted exactly (by enumeration) up to this length; beyond, 6**length is huge.
_EXACT_CAPACITY_MAX_LENGTH = 8

SOLUTION = (
    "def solve(s):\n"
    "    pairs = {')': '(', ']': '[', '}': '{'}\n"
    "    stack = []\n"
    "    for ch in s:\n"
    "        if ch in '([{':\n"
    "            stack.append(ch)\n"
    "        elif not stack or stack.pop() != pairs[ch]:\n"
    "            return False\n"
    "    return not stack\n"
)


def is_balanced(s: str) -> bool:
    stack = []
    for ch in s:
        if ch in OPEN:
            stack.append(ch)
        elif ch in _MATCH:
            if not stack or stack.pop() != _MATCH[ch]:
                return False
        else:
            return False
    return not stack


def nesting_depth(s: str) -> int:
    depth = best = 0
    for ch in s:
        depth += 1 if ch in OPEN else -1
        best = max(best, depth)
    return best


@lru_cache(maxsize=None)
def _completions(length: int, max_depth: int) -> tuple[tuple[int, ...], ...]:
    """ways[i][h]: the number of ways to finish a Dyck path from step i at height h."""
    ways = [[0] * (max_depth + 2) for _ in range(length + 1)]
    ways[length][0] = 1
    for i in range(length - 1, -1, -1):
        for h in range(max_depth + 1):
            ways[i][h] = (ways[i + 1][h + 1] if h + 1 <= max_depth else 0) + (ways[i + 1][h - 1] if h else 0)
    return tuple(tuple(row) for row in ways)


def random_balanced(rng: random.Random, length: int, max_depth: int) -> str:
    """Uniform over the balanced strings of `length` nested at most `max_depth` deep."""
    ways = _completions(length, max_depth)
    out, stack, h = [], [], 0
    for i in range(length):
        up = ways[i + 1][h + 1] if h + 1 <= max_depth else 0
        if rng.randrange(ways[i][h]) < up:
            k = rng.randrange(3)
            out.append(OPEN[k])
            stack.append(k)
            h += 1
        else:
            out.append(CLOSE[stack.pop()])
            h -= 1
    return "".join(out)


def n_balanced(length: int, max_depth: int | None = None) -> int:
    """Balanced strings of `length` (nested at most `max_depth` deep; None: any depth)."""
    if length % 2:
        return 0
    m = length // 2
    if max_depth is None:
        paths = comb(2 * m, m) // (m + 1)
    else:
        paths = _completions(length, max_depth)[0][0]
    return paths * 3**m


def _all_balanced(length: int, max_depth: int) -> list[str]:
    out: list[str] = []

    def rec(prefix: str, stack: str) -> None:
        if len(prefix) == length:
            out.append(prefix)
            return
        remaining = length - len(prefix)
        if len(stack) < remaining and len(stack) < max_depth:
            for o in OPEN:
                rec(prefix + o, stack + o)
        if stack:
            rec(prefix + CLOSE[OPEN.index(stack[-1])], stack[:-1])

    rec("", "")
    return out


def _edit(rng: random.Random, base: str, how: str) -> tuple[str, int] | None:
    """One edit of `base` of kind `how` that is unbalanced, or None if there is none (swap)."""
    n = len(base)
    if how == "substitution":
        i = rng.randrange(n)
        c = rng.choice([c for c in CHARS if c != base[i]])
        return base[:i] + c + base[i + 1:], i
    if how == "insertion":
        i = rng.randrange(n + 1)
        return base[:i] + rng.choice(CHARS) + base[i:], i
    if how == "deletion":
        i = rng.randrange(n)
        return base[:i] + base[i + 1:], i
    # swap two adjacent, different characters; some swaps stay balanced: ()() -> (())
    candidates = [i for i in range(n - 1) if base[i] != base[i + 1]
                  and not is_balanced(base[:i] + base[i + 1] + base[i] + base[i + 2:])]
    if not candidates:
        return None
    i = rng.choice(candidates)
    return base[:i] + base[i + 1] + base[i] + base[i + 2:], i


class Brackets(Kind):
    name = "brackets"
    arg_name = "s"
    answer_type = bool
    direct_instruction = (
        "Is this string of brackets balanced (every opening bracket closed by the matching closing "
        "bracket of the same kind, properly nested)? Reply with True or False only."
    )
    program_instruction = (
        "Write a Python function solve(s) that takes a string made of the characters ()[]{} and "
        "returns True if it is balanced (every opening bracket closed by the matching closing "
        "bracket of the same kind, properly nested) and False otherwise, as a bool. "
        "solve will be called with the string below as its only argument. "
        "Reply with the code in a ```python block."
    )

    def generate(self, rng: random.Random, difficulty: int, index: int) -> dict:
        p = self.params(difficulty)
        length, max_depth = p["length"], p["max_depth"]
        meta = {"length": length, "max_depth": max_depth, "depth": None, "how": "balanced",
                "position": None, "source": None}
        if rng.random() < P_BALANCED:
            question = random_balanced(rng, length, max_depth)
            meta["depth"] = nesting_depth(question)
        elif rng.random() < P_EDIT:
            base = random_balanced(rng, length, max_depth)
            how = rng.choice(EDITS)
            edited = _edit(rng, base, how)
            if edited is None or is_balanced(edited[0]):  # no unbalanced swap: substitute instead
                how = "substitution"
                edited = _edit(rng, base, how)
            question, meta["position"] = edited
            meta.update(how=how, source=base, depth=nesting_depth(base), length=len(question))
        else:
            while True:
                question = "".join(rng.choice(CHARS) for _ in range(length))
                if not is_balanced(question):
                    break
            meta["how"] = "random"
        answer = is_balanced(question)
        assert answer == (meta["how"] == "balanced"), (question, meta)
        return self.make_problem(difficulty, index, question, answer, SOLUTION, meta)

    def capacity(self, difficulty: int) -> int | None:
        p = self.params(difficulty)
        return _capacity(p["length"], p["max_depth"])

    def capacity_by_answer(self, difficulty: int) -> dict[str, int | None]:
        p = self.params(difficulty)
        balanced = n_balanced(p["length"], p["max_depth"])
        total = _capacity(p["length"], p["max_depth"])
        return {"True": balanced, "False": None if total is None else total - balanced}

    def evaluate(self, x: str) -> bool:
        return is_balanced(x)


@lru_cache(maxsize=None)
def _capacity(length: int, max_depth: int) -> int | None:
    """Distinct strings `generate` can produce: the balanced ones, every unbalanced string of the
    same length (random draws; substitutions and swaps are among them), and the deletions (length
    - 1) and insertions (length + 1) of the balanced ones, odd lengths hence all unbalanced."""
    if length > _EXACT_CAPACITY_MAX_LENGTH:
        return None
    same_length = 6**length - n_balanced(length) + n_balanced(length, max_depth)
    shorter, longer = set(), set()
    for b in _all_balanced(length, max_depth):
        for i in range(length):
            shorter.add(b[:i] + b[i + 1:])
        for i in range(length + 1):
            for c in CHARS:
                longer.add(b[:i] + c + b[i:])
    return same_length + len(shorter) + len(longer)
