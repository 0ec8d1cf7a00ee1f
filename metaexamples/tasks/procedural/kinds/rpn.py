"""Reverse Polish notation: `3 4 + 2 *` -> 14.

Non-negative integer operands and the binary operators + - * (no division: every result is an
exact integer), tokens separated by single spaces. `a b -` is a - b. The generator draws a random
expression tree with exactly `n_ops` operators whose postfix evaluation never holds more than
`max_stack` values; postfix text is unambiguous, so `capacity` counts those trees.
"""

from __future__ import annotations

import random
from functools import lru_cache

from metaexamples.tasks.procedural.kinds import Kind, tree_leaves, tree_value

OPS = ("+", "-", "*")
# The reference program: the stack algorithm, right on every input of the kind.
SOLUTION = (
    'def solve(expression):\n'
    '    stack = []\n'
    '    for tok in expression.split():\n'
    '        if tok in ("+", "-", "*"):\n'
    '            b = stack.pop()\n'
    '            a = stack.pop()\n'
    '            stack.append(a + b if tok == "+" else a - b if tok == "-" else a * b)\n'
    '        else:\n'
    '            stack.append(int(tok))\n'
    '    return stack[0]\n'
)


def _tree(rng: random.Random, n: int, stack: int, max_operand: int) -> tuple:
    """A tree with n operators evaluating within `stack` slots (n >= 1 needs stack >= 2)."""
    if n == 0:
        return ("n", rng.randint(0, max_operand))
    op = rng.choice(OPS)
    # The right subtree runs with the left's value below it: one slot fewer. A subtree with
    # operators needs two slots.
    k = n - 1 if stack - 1 < 2 else rng.randrange(n)
    return ("b", op, _tree(rng, k, stack, max_operand), _tree(rng, n - 1 - k, stack - 1, max_operand))


@lru_cache(maxsize=None)
def _count(n: int, stack: int, leaves: int) -> int:
    if n == 0:
        return leaves if stack >= 1 else 0
    if stack < 2:
        return 0
    return len(OPS) * sum(_count(k, stack, leaves) * _count(n - 1 - k, stack - 1, leaves) for k in range(n))


def render(tree: tuple) -> str:
    if tree[0] == "n":
        return str(tree[1])
    return f"{render(tree[2])} {render(tree[3])} {tree[1]}"


def stack_depth(tree: tuple) -> int:
    if tree[0] == "n":
        return 1
    return max(stack_depth(tree[2]), 1 + stack_depth(tree[3]))


class Rpn(Kind):
    name = "rpn"
    arg_name = "expression"
    answer_type = int
    direct_instruction = (
        "Evaluate this expression in reverse Polish notation (postfix: each operator applies to the "
        "two values before it; operators +, - and *; tokens separated by spaces). "
        "Reply with the integer only."
    )
    program_instruction = (
        "Write a Python function solve(expression) that takes an expression in reverse Polish "
        "notation as a string (non-negative integers and the operators +, - and *, separated by "
        "single spaces; `a b -` means a - b) and returns its value as an int. "
        "solve will be called with the expression below as its only argument. "
        "Reply with the code in a ```python block."
    )

    def generate(self, rng: random.Random, difficulty: int, index: int) -> dict:
        p = self.params(difficulty)
        tree = _tree(rng, p["n_ops"], p["max_stack"], p["max_operand"])
        meta = {
            "n_ops": p["n_ops"],
            "max_operand": max(tree_leaves(tree)),
            "stack_depth": stack_depth(tree),
        }
        return self.make_problem(difficulty, index, render(tree), tree_value(tree), SOLUTION, meta)

    def capacity(self, difficulty: int) -> int:
        p = self.params(difficulty)
        return _count(p["n_ops"], p["max_stack"], p["max_operand"] + 1)

    def evaluate(self, x: str) -> int:
        stack: list[int] = []
        for tok in x.split():
            if tok in ("+", "-", "*"):
                if len(stack) < 2:
                    raise ValueError(f"stack underflow in {x!r}")
                b, a = stack.pop(), stack.pop()
                stack.append(a + b if tok == "+" else a - b if tok == "-" else a * b)
            else:
                stack.append(int(tok))
        if len(stack) != 1:
            raise ValueError(f"malformed expression {x!r}")
        return stack[0]
