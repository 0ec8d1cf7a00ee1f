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
# yes/no count only standing alone ("No." is an answer, "no idea" and "no closing bracket" are not)
_BOOL_WORD = re.compile(r"\b(imbalanced|unbalanced|balanced|true|false|(?:yes|no)(?![ \t]*[a-z]))\b", re.IGNORECASE)
_TRUE_WORDS = {"balanced", "true", "yes"}
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
_DEF_SOLVE = re.compile(r"^[ \t]*def[ \t]+solve[ \t]*\(", re.MULTILINE)
_FIRST_DEF = re.compile(r"^[ \t]*def[ \t]", re.MULTILINE)
_PYTHON_LANGS = {"python", "py", "python3", "py3"}


def _check_format(answer_format: str) -> str:
    if answer_format not in ANSWER_FORMATS:
        raise ConfigError(f"task.answer: unknown {answer_format!r}; available: {', '.join(ANSWER_FORMATS)}")
    return answer_format


def extract_direct(text: str, kind: str, question: str | None = None) -> str | None:
    """The final answer in a completion, as the canonical answer string, or None when there is none.

    1. Echoes of `question` are dropped: every copy of it, and a copy of its first two or more
       tokens at the start ("0 8 + (+:::" for "0 8 +" holds no answer).
    2. The part after the last "Answer:" is searched if it has an answer, else the whole text.
    3. Negated candidates are skipped: a number or truth word after "not", "n't", "never",
       "rather than", "instead of", "other than" (up to two words between, none of them "but",
       "so", "and", ...). Integer kinds: the last remaining number ("-14", "1,234", "14.0" ->
       "14"; a non-integral "3.5" is returned as is and so never matches; "14, not 15" -> "14").
       brackets: the last truth word, true/false, balanced/unbalanced/imbalanced, or yes/no
       standing alone (followed by punctuation, a line break or the end: "no idea" is not an answer), read
       through a negation ("not true", "isn't balanced" -> "False"; "not unbalanced" -> "True").
    4. A hedge in the searched part makes it no answer: maybe, perhaps, possibly, probably, might,
       could be, not sure, unsure, no idea, don't know, not certain, uncertain, can't tell/say/
       determine, unclear, I guess, or two alternatives ("14 or 15", "true or false").
    """
    if not isinstance(text, str):
        return None
    k = get_kind(kind)
    text = text.replace("\u2212", "-").replace("\u2019", "'")  # unicode minus, apostrophe
    if question:
        text = _drop_echo(text, question)
    marks = list(_MARKER.finditer(text))
    regions = ([text[marks[-1].end():]] if marks else []) + [text]
    for region in regions:
        found = _last_bool(region) if k.answer_type is bool else _last_int(region)
        if found is not None:
            return None if _HEDGE.search(region) else found
    return None


_NEGATOR = re.compile(r"(?:\bnot|n't|\bnever|\brather\s+than|\binstead\s+of|\bother\s+than)\s+"
                      r"(?:(?!(?:but|so|and|then|therefore|hence|because|thus)\b)[a-z]+\s+){0,2}$", re.IGNORECASE)
_ANSWER_WORDS = r"(?:true|false|yes|no|balanced|unbalanced|imbalanced|-?\d+)"
_HEDGE = re.compile(r"\b(?:maybe|perhaps|possibly|probably|might|could\s+be|not\s+sure|unsure|no\s+idea|"
                    r"(?:don't|dont|do\s+not)\s+know|not\s+certain|uncertain|"
                    r"(?:can't|cannot|can\s+not)\s+(?:tell|say|determine|be\s+determined)|unclear|i\s+guess)\b|"
                    rf"(?<![\w.]){_ANSWER_WORDS}\s+or\s+(?:not\b|{_ANSWER_WORDS}(?![\w.]))", re.IGNORECASE)
_QUESTION_TOKEN = re.compile(r"\d+|\S")


def _negated(text: str, start: int) -> bool:
    """Whether the candidate at `start` follows a negation in its clause."""
    return _NEGATOR.search(text[max(0, start - 40):start]) is not None


def _drop_echo(text: str, question: str) -> str:
    """`text` without copies of `question` (whitespace between its tokens free) and without a
    leading copy of its first two or more tokens."""
    tokens = _QUESTION_TOKEN.findall(question)
    if not tokens:
        return text

    def pattern(toks: list[str]) -> str:
        return r"\s*".join(re.escape(t) + (r"(?!\d)" if t.isdigit() else "") for t in toks)

    text = re.sub(r"(?<!\d)" + pattern(tokens), " ", text)
    for j in range(len(tokens) - 1, 1, -1):
        m = re.match(r"\s*" + pattern(tokens[:j]), text)
        if m:
            return text[m.end():]
    return text


def _last_int(text: str) -> str | None:
    matches = [m for m in _NUMBER.finditer(text) if not _negated(text, m.start())]
    if not matches:
        return None
    sign, digits, decimals = matches[-1].groups()
    value = int(digits.replace(",", ""))
    if decimals and decimals.strip("0"):
        return f"{'-' if sign == '-' else ''}{value}.{decimals.rstrip('0')}"
    return str(-value if sign == "-" else value)


def _last_bool(text: str) -> str | None:
    matches = list(_BOOL_WORD.finditer(text))
    if not matches:
        return None
    m = matches[-1]
    value = m.group(1).lower() in _TRUE_WORDS
    if _negated(text, m.start()):
        value = not value
    return "True" if value else "False"


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
