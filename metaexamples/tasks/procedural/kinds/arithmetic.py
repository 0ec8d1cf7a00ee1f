"""Arithmetic expressions: `2 + 3 * 4` -> 14.

Integers, the binary operators + - * (no division, so every result is an exact integer),
parentheses, and unary minus (on a literal, `2 * -3`, or on a parenthesised group, `-(2 + 3) * 4`).
Usual precedence: * before + and -, left to right within a level; unary minus binds tightest
(as in Python, so the question is also a valid Python expression with the same value).

The generator draws a random expression tree with exactly `n_ops` binary operators and renders it
with parentheses exactly where the tree needs them (a + or - under *, or a right operand of the
same level: `a - (b + c)`, `a * (b * c)`), at most `max_depth` deep. Since the parentheses are
exactly the necessary ones, distinct trees give distinct strings, and `capacity` counts the trees.
"""

from __future__ import annotations

import random
from functools import lru_cache

from metaexamples.tasks.procedural.kinds import Kind, tree_leaves, tree_value

OPS = ("+", "-", "*")
# The reference program: a general evaluator (recursive descent), right on every input of the
# kind, so warm start never teaches a program that only knows the one expression it was shown.
SOLUTION = (
    'def solve(expression):\n'
    '    tokens = expression.replace("(", " ( ").replace(")", " ) ").split()\n'
    '    pos = 0\n'
    '\n'
    '    def atom():\n'
    '        nonlocal pos\n'
    '        tok = tokens[pos]\n'
    '        pos += 1\n'
    '        if tok == "-":\n'
    '            return -atom()\n'
    '        if tok == "(":\n'
    '            value = total()\n'
    '            pos += 1\n'
    '            return value\n'
    '        return int(tok)\n'
    '\n'
    '    def product():\n'
    '        nonlocal pos\n'
    '        value = atom()\n'
    '        while pos < len(tokens) and tokens[pos] == "*":\n'
    '            pos += 1\n'
    '            value *= atom()\n'
    '        return value\n'
    '\n'
    '    def total():\n'
    '        nonlocal pos\n'
    '        value = product()\n'
    '        while pos < len(tokens) and tokens[pos] in ("+", "-"):\n'
    '            pos += 1\n'
    '            value = value + product() if tokens[pos - 1] == "+" else value - product()\n'
    '        return value\n'
    '\n'
    '    return total()\n'
)
_PREC = {"+": 1, "-": 1, "*": 2}


def _needs_parens(child_op: str, parent_op: str, right: bool) -> bool:
    return _PREC[child_op] < _PREC[parent_op] or (right and _PREC[child_op] == _PREC[parent_op])


@lru_cache(maxsize=None)
def _child_ops(parent_op: str, right: bool, budget: int) -> tuple[str, ...]:
    """Root operators a non-leaf child may have: any while parentheses remain in the budget, else
    only those that need none."""
    if budget > 0:
        return OPS
    return tuple(c for c in OPS if not _needs_parens(c, parent_op, right))


def _leaf(rng: random.Random, max_operand: int, p_unary: float) -> tuple:
    v = rng.randint(0, max_operand)
    if p_unary and v and rng.random() < p_unary:
        v = -v
    return ("n", v)


def _node(rng: random.Random, n: int, budget: int, op: str, max_operand: int, p_unary: float) -> tuple:
    """A tree with root operator `op` and `n` >= 1 binary operators."""
    left_ok = bool(_child_ops(op, False, budget))
    right_ok = bool(_child_ops(op, True, budget))
    ks = [k for k in range(n) if (k == 0 or left_ok) and (n - 1 - k == 0 or right_ok)]
    k = rng.choice(ks)
    left = _child(rng, k, budget, op, False, max_operand, p_unary)
    right = _child(rng, n - 1 - k, budget, op, True, max_operand, p_unary)
    return ("b", op, left, right)


def _child(rng, m: int, budget: int, parent_op: str, right: bool, max_operand: int, p_unary: float) -> tuple:
    if m == 0:
        return _leaf(rng, max_operand, p_unary)
    c = rng.choice(_child_ops(parent_op, right, budget))
    if _needs_parens(c, parent_op, right):
        sub = _node(rng, m, budget - 1, c, max_operand, p_unary)
        if p_unary and rng.random() < p_unary:
            return ("neg", sub)
        return sub
    return _node(rng, m, budget, c, max_operand, p_unary)


def render(tree: tuple) -> str:
    """Infix text with exactly the parentheses the tree needs."""
    tag = tree[0]
    if tag == "n":
        return str(tree[1])
    if tag == "neg":
        return f"-({render(tree[1])})"
    _, op, left, right = tree
    return f"{_operand(left, op, False)} {op} {_operand(right, op, True)}"


def _operand(child: tuple, parent_op: str, right: bool) -> str:
    if child[0] == "b" and _needs_parens(child[1], parent_op, right):
        return f"({render(child)})"
    return render(child)


@lru_cache(maxsize=None)
def _count_node(n: int, budget: int, op: str, leaves: int, neg: int) -> int:
    """Trees with root `op` and n >= 1 operators (mirrors `_node`)."""
    return sum(_count_child(k, budget, op, False, leaves, neg) * _count_child(n - 1 - k, budget, op, True, leaves, neg)
               for k in range(n))


@lru_cache(maxsize=None)
def _count_child(m: int, budget: int, parent_op: str, right: bool, leaves: int, neg: int) -> int:
    if m == 0:
        return leaves
    total = 0
    for c in _child_ops(parent_op, right, budget):
        if _needs_parens(c, parent_op, right):
            total += _count_node(m, budget - 1, c, leaves, neg) * neg
        else:
            total += _count_node(m, budget, c, leaves, neg)
    return total


def paren_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch == "(":
            depth += 1
            best = max(best, depth)
        elif ch == ")":
            depth -= 1
    return best


class _Parser:
    """Recursive descent over the question text, independent of the generator."""

    def __init__(self, text: str):
        self.tokens: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch.isspace():
                i += 1
            elif ch.isdigit():
                j = i
                while j < len(text) and text[j].isdigit():
                    j += 1
                self.tokens.append(text[i:j])
                i = j
            elif ch in "+-*()":
                self.tokens.append(ch)
                i += 1
            else:
                raise ValueError(f"unexpected character {ch!r} in {text!r}")
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ValueError("unexpected end of expression")
        self.pos += 1
        return tok

    def expr(self) -> int:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self) -> int:
        value = self.unary()
        while self.peek() == "*":
            self.take()
            value *= self.unary()
        return value

    def unary(self) -> int:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        tok = self.take()
        if tok == "(":
            value = self.expr()
            if self.take() != ")":
                raise ValueError("expected ')'")
            return value
        if not tok.isdigit():
            raise ValueError(f"unexpected token {tok!r}")
        return int(tok)


class Arithmetic(Kind):
    name = "arithmetic"
    arg_name = "expression"
    answer_type = int
    direct_instruction = "Compute the value of this arithmetic expression. Reply with the integer only."
    program_instruction = (
        "Write a Python function solve(expression) that takes an arithmetic expression as a string "
        "(non-negative integer literals, the operators +, - and *, unary minus, parentheses; "
        "* before + and -, left to right otherwise; no division) and returns its value as an int. "
        "solve will be called with the expression below as its only argument. "
        "Reply with the code in a ```python block."
    )

    def generate(self, rng: random.Random, difficulty: int, index: int) -> dict:
        p = self.params(difficulty)
        op = rng.choice(OPS)
        tree = _node(rng, p["n_ops"], p["max_depth"], op, p["max_operand"], p["p_unary"])
        question = render(tree)
        meta = {
            "n_ops": p["n_ops"],
            "max_operand": max(abs(v) for v in tree_leaves(tree)),
            "depth": paren_depth(question),
            "n_unary": question.count("-(") + sum(1 for v in tree_leaves(tree) if v < 0),
        }
        return self.make_problem(difficulty, index, question, tree_value(tree), SOLUTION, meta)

    def capacity(self, difficulty: int) -> int:
        p = self.params(difficulty)
        m = p["max_operand"]
        leaves = (m + 1) + (m if p["p_unary"] else 0)
        neg = 2 if p["p_unary"] else 1
        return sum(_count_node(p["n_ops"], p["max_depth"], op, leaves, neg) for op in OPS)

    def evaluate(self, x: str) -> int:
        parser = _Parser(x)
        value = parser.expr()
        if parser.peek() is not None:
            raise ValueError(f"trailing tokens in {x!r}")
        return value
