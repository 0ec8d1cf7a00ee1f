"""How numbers, units and numeric questions are written as text: shared by the numeric task
(its data, answers and scores) and its models (which read questions and write answers).

A number is digits with an optional sign attached, decimals and exponent, not part of a word;
an answer is a number optionally followed by a unit, or True/False; a question is an
arithmetic expression ("12 + 3 * 4"), a conversion ("3.5 km to m") or an addition of two
quantities ("3 m + 2 s").
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext

from metaexamples.errors import ConfigError

TARGET_SIG = 6  # significant digits shown in a conversion's target_text

# The units questions name, by dimension.
DIMENSION_UNITS: dict[str, tuple[str, ...]] = {
    "length": ("m", "km", "cm", "mm", "ft", "inch", "yd", "mi"),
    "mass": ("g", "kg", "mg", "lb", "oz"),
    "time": ("s", "min", "h", "ms", "day"),
    "temperature": ("degC", "degF", "K"),
    "velocity": ("m/s", "km/h", "mph", "ft/s"),
}

UNIT_NAMES: tuple[str, ...] = tuple(u for units in DIMENSION_UNITS.values() for u in units)
UNIT_DIMENSION_NAME: dict[str, str] = {u: d for d, units in DIMENSION_UNITS.items() for u in units}

# A number: optional sign attached to the digits, decimals, optional exponent; not part of a word.
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
UNIT = r"[A-Za-z][A-Za-z_/]*"
_ARITH_TOKEN = re.compile(rf"\s*(?:(?P<num>{NUMBER})|(?P<op>[-+*]))")
_CONVERT = re.compile(rf"^\s*(?P<v>{NUMBER})\s+(?P<a>{UNIT})\s+to\s+(?P<b>{UNIT})\s*$")
_CAN_ADD = re.compile(rf"^\s*(?P<v>{NUMBER})\s+(?P<a>{UNIT})\s*\+\s*(?P<w>{NUMBER})\s+(?P<b>{UNIT})\s*$")
_ANSWER = re.compile(rf"^\s*(?P<num>{NUMBER})(?:\s+(?P<unit>\S+))?\s*$")


# -- numbers ---------------------------------------------------------------------------------
def format_number(x: float | Decimal | int, sig: int = TARGET_SIG) -> str:
    """`x` rounded to `sig` significant digits, written in plain decimal (no exponent, no
    trailing zeros): 3500.0 -> "3500", 0.000123456789 -> "0.000123457", 1.6e15 -> "1600000000000000"."""
    d = x if isinstance(x, Decimal) else Decimal(repr(x) if isinstance(x, float) else x)
    if not d.is_finite():
        raise ValueError(f"cannot format {x!r}")
    if d == 0:
        return "0"
    with localcontext() as ctx:
        ctx.prec = max(sig + 5, 50)
        d = d.quantize(Decimal(1).scaleb(d.adjusted() - sig + 1), rounding=ROUND_HALF_EVEN)
        text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def round_sig(x: float, sig: int) -> float:
    return float(format_number(x, sig)) if x else 0.0


def decimal_text(d: Decimal) -> str:
    """Exact plain-decimal text of a Decimal ("12", "-3.5")."""
    if d == d.to_integral_value():
        return str(int(d))
    text = format(d.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def read_question(text: str) -> dict:
    """Read a question into its structure:

    {"kind": "arith", "numbers": [Decimal...], "ops": ["+"...]} for "12 + 3 * 4";
    {"kind": "convert", "value": Decimal, "from": "km", "to": "m"} for "3.5 km to m";
    {"kind": "can_add", "values": [Decimal, Decimal], "units": ["m", "s"]} for "3 m + 2 s".
    Raises ConfigError naming the text when it cannot be read (the units are not checked here:
    the numeric task checks them against pint)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"question {text!r}: empty or not a string")
    m = _CONVERT.match(text)
    if m:
        return {"kind": "convert", "value": Decimal(m["v"]), "from": m["a"], "to": m["b"]}
    m = _CAN_ADD.match(text)
    if m:
        return {"kind": "can_add", "values": [Decimal(m["v"]), Decimal(m["w"])], "units": [m["a"], m["b"]]}
    numbers, ops, pos, expect_number = [], [], 0, True
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _ARITH_TOKEN.match(stripped, pos)
        if m is None:
            raise ConfigError(f"question {text!r}: cannot read the expression at {stripped[pos:]!r}")
        if expect_number and m["num"] is not None:
            numbers.append(Decimal(m["num"]))
        elif not expect_number and m["op"] is not None:
            ops.append(m["op"])
        elif not expect_number and m["num"] is not None and m["num"][0] in "+-":
            # "3 -5" : a binary operator written against its operand
            ops.append(m["num"][0])
            numbers.append(Decimal(m["num"][1:]))
            expect_number = not expect_number
        else:
            raise ConfigError(f"question {text!r}: expected {'a number' if expect_number else 'an operator'} "
                              f"at {stripped[m.start():]!r}")
        expect_number = not expect_number
        pos = m.end()
    if not numbers or expect_number:
        raise ConfigError(f"question {text!r}: an expression must alternate numbers and operators (+, -, *)")
    return {"kind": "arith", "numbers": numbers, "ops": ops}


def parse_answer(text: str | None) -> dict | None:
    """Read an answer text: {"value": float | bool, "number_text": str | None, "unit": str | None},
    or None when it is neither "True"/"False" nor a number optionally followed by a unit."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    if s in ("True", "False"):
        return {"value": s == "True", "number_text": None, "unit": None}
    m = _ANSWER.match(s)
    if not m:
        return None
    try:
        value = float(Decimal(m["num"]))
    except (InvalidOperation, OverflowError):
        return None
    return {"value": value, "number_text": m["num"], "unit": m["unit"]}
