"""Prompts, targets and answer checking of procedural problems, in two answer formats:

- "direct": the model replies with the answer; `extract_direct` finds it in the completion.
- "program": the model writes `solve(x)`; `extract_program` finds the code, the verifier runs
  `solve(problem["input"])` and `answer_matches` compares the value with the answer.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

from metaexamples.errors import ConfigError
from metaexamples.tasks.procedural.kinds import get_kind

ANSWER_FORMATS = ("direct", "program")

_MARKER = re.compile(r"answer\s*:", re.IGNORECASE)
# A number: optional sign (not glued to a preceding word or digit: "2-3" ends in 3, not -3),
# digits with optional thousands commas, optional decimals; not followed by a word character.
_NUMBER = re.compile(r"(?<![\w.])([-+]?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?!\w)")
_BOOL_WORD = re.compile(r"\b(not\s+balanced|imbalanced|unbalanced|balanced|true|false|yes|no)\b", re.IGNORECASE)
_TRUE_WORDS = {"balanced", "true", "yes"}
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
_DEF_SOLVE = re.compile(r"^[ \t]*def[ \t]+solve[ \t]*\(", re.MULTILINE)
_FIRST_DEF = re.compile(r"^[ \t]*def[ \t]", re.MULTILINE)
_PYTHON_LANGS = {"python", "py", "python3", "py3"}


def _check_format(answer_format: str) -> str:
    if answer_format not in ANSWER_FORMATS:
        raise ConfigError(f"task.answer: unknown {answer_format!r}; available: {', '.join(ANSWER_FORMATS)}")
    return answer_format


def extract_direct(text: str, kind: str) -> str | None:
    """The final answer in a completion, as the canonical answer string, or None when there is none.

    The part after the last "Answer:" is searched if it has an answer, else the whole text.
    Integer kinds: the last number ("-14", "1,234", "14.0" -> "14"; a non-integral "3.5" is
    returned as is and so never matches). brackets: the last of true/false, yes/no,
    balanced/unbalanced/not balanced (any case) -> "True" / "False".
    """
    if not isinstance(text, str):
        return None
    k = get_kind(kind)
    text = text.replace("\u2212", "-")  # unicode minus
    marks = list(_MARKER.finditer(text))
    regions = ([text[marks[-1].end():]] if marks else []) + [text]
    for region in regions:
        found = _last_bool(region) if k.answer_type is bool else _last_int(region)
        if found is not None:
            return found
    return None


def _last_int(text: str) -> str | None:
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return None
    sign, digits, decimals = matches[-1].groups()
    value = int(digits.replace(",", ""))
    if decimals and decimals.strip("0"):
        return f"{'-' if sign == '-' else ''}{value}.{decimals.rstrip('0')}"
    return str(-value if sign == "-" else value)


def _last_bool(text: str) -> str | None:
    matches = _BOOL_WORD.findall(text)
    if not matches:
        return None
    return "True" if matches[-1].lower() in _TRUE_WORDS else "False"


def extract_program(text: str) -> str | None:
    """The Python code in a completion, or None when it defines no `solve`.

    The last ```python fenced block defining solve (else the last ``` block of any language
    defining it; an unclosed fence runs to the end); else the text from the first `def ` line to
    the end.
    """
    if not isinstance(text, str) or not _DEF_SOLVE.search(text):
        return None
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    with_solve = [(lang, code) for lang, code in blocks if _DEF_SOLVE.search(code)]
    python = [code for lang, code in with_solve if lang in _PYTHON_LANGS]
    if python or with_solve:
        code = python[-1] if python else with_solve[-1][1]
    else:
        code = text[_FIRST_DEF.search(text).start():]
        code = re.sub(r"^[ \t]*```[ \t]*$", "", code, flags=re.MULTILINE)
    code = textwrap.dedent(code).strip("\n")
    return code + "\n" if _DEF_SOLVE.search(code) else None


def answer_matches(value: Any, problem: dict) -> bool:
    """Whether a program's return value is the problem's answer, strictly: an int (not a bool)
    equal to an integer answer, or a bool equal to a "True"/"False" answer."""
    answer = problem["answer"]
    if get_kind(problem["kind"]).answer_type is bool:
        return type(value) is bool and ("True" if value else "False") == answer
    return isinstance(value, int) and not isinstance(value, bool) and value == int(answer)


def question_prompt(problem: dict, answer_format: str) -> str:
    """The user-message text of a problem in `answer_format` ("direct" or "program")."""
    k = get_kind(problem["kind"])
    if _check_format(answer_format) == "direct":
        return f"{k.direct_instruction}\n{problem['question']}"
    return f"{k.program_instruction}\nExample input: {problem['input']}"


def target_text(problem: dict, answer_format: str) -> str:
    """A correct completion, for warm-start SFT: the answer, or the reference program in a fence."""
    if _check_format(answer_format) == "direct":
        return problem["answer"]
    return f"```python\n{problem['solution']}```"


__all__ = ["ANSWER_FORMATS", "answer_matches", "extract_direct", "extract_program", "question_prompt", "target_text"]
