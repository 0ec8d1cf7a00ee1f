"""The one difficulty table of task=procedural: difficulty 1-10 -> the size of each problem kind.

`_ROWS` below is the single source: the kinds read their parameters from it (via `params`) and
the README's table is rendered from it (`difficulty_table_markdown`).

Columns per kind:
- arithmetic: `n_ops` binary operators (+ - *), operands in [0, `max_operand`], parentheses nested
  at most `max_depth` deep, each literal (and each parenthesised group) negated with probability
  `p_unary` (unary minus).
- rpn: `n_ops` operators (+ - *), operands in [0, `max_operand`], the evaluation stack at most
  `max_stack` deep.
- brackets: balanced strings of `length` characters over ()[]{} nested at most `max_depth` deep;
  the unbalanced ones are edits of those (length +-1 for insertions / deletions) or random strings.
  Difficulty 1 is 8 characters, not 2: the splits hold half balanced problems in every
  (kind, difficulty) cell, so each difficulty needs hundreds of distinct balanced strings (8
  characters, 2 deep: 648; 2 characters: 3).
"""

from __future__ import annotations

from metaexamples.errors import ConfigError

MIN_DIFFICULTY = 1
MAX_DIFFICULTY = 10

# (kind, parameter, markdown header), in column order.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("arithmetic", "n_ops", "arithmetic: operators"),
    ("arithmetic", "max_operand", "arithmetic: max operand"),
    ("arithmetic", "max_depth", "arithmetic: max paren depth"),
    ("arithmetic", "p_unary", "arithmetic: unary minus p"),
    ("rpn", "n_ops", "rpn: operators"),
    ("rpn", "max_operand", "rpn: max operand"),
    ("rpn", "max_stack", "rpn: max stack depth"),
    ("brackets", "length", "brackets: length"),
    ("brackets", "max_depth", "brackets: max nesting"),
)

# The table. One row per difficulty, values in COLUMNS order.
#        |------------ arithmetic -------------|  |------ rpn ------|  |- brackets -|
#  d       ops  operand  depth  unary             ops  operand stack     len  depth
_ROWS: tuple[tuple, ...] = (
    (1,     1,      9,     0,    0.0,              1,      9,    2,       8,    2),
    (2,     2,      9,     1,    0.0,              2,      9,    2,      10,    2),
    (3,     2,     20,     1,    0.1,              2,     20,    3,      12,    3),
    (4,     3,     20,     1,    0.1,              3,     20,    3,      14,    3),
    (5,     3,     50,     2,    0.1,              4,     50,    3,      16,    4),
    (6,     4,     50,     2,    0.2,              5,     50,    4,      18,    4),
    (7,     5,     99,     2,    0.2,              6,     99,    4,      20,    5),
    (8,     6,     99,     3,    0.2,              7,     99,    5,      24,    5),
    (9,     7,    200,     3,    0.2,              8,    200,    5,      28,    6),
    (10,    8,    999,     4,    0.2,             10,    999,    6,      32,    8),
)

assert [r[0] for r in _ROWS] == list(range(MIN_DIFFICULTY, MAX_DIFFICULTY + 1))
assert all(len(r) == len(COLUMNS) + 1 for r in _ROWS)

# The same table by kind: DIFFICULTY[kind][d] -> {parameter: value}.
DIFFICULTY: dict[str, dict[int, dict]] = {}
for _row in _ROWS:
    for (_kind, _key, _), _value in zip(COLUMNS, _row[1:]):
        DIFFICULTY.setdefault(_kind, {}).setdefault(_row[0], {})[_key] = _value


def check_difficulty(d, key: str = "task.difficulty") -> int:
    """`d` as an int in [1, 10], else ConfigError naming `key`."""
    if isinstance(d, bool) or not isinstance(d, int):
        raise ConfigError(f"{key}: must be an integer in [{MIN_DIFFICULTY}, {MAX_DIFFICULTY}], got {d!r}")
    if not MIN_DIFFICULTY <= d <= MAX_DIFFICULTY:
        raise ConfigError(f"{key}: must be in [{MIN_DIFFICULTY}, {MAX_DIFFICULTY}], got {d}")
    return d


def params(kind: str, difficulty: int) -> dict:
    """The parameters of `kind` at `difficulty` (a copy)."""
    if kind not in DIFFICULTY:
        raise ConfigError(f"task.kind: unknown {kind!r}; available: {', '.join(sorted(DIFFICULTY))}")
    return dict(DIFFICULTY[kind][check_difficulty(difficulty)])


def difficulty_table_markdown() -> str:
    """The table as GitHub markdown (one row per difficulty), for the README."""
    header = ["difficulty"] + [h for _, _, h in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    for row in _ROWS:
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
