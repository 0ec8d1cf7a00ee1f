"""Numeric-span detection and the hybrid model's numeric encoder features.

Detection (`find_number_spans`): an unsigned number is digits with an optional decimal part and
an optional exponent (`12`, `3.5`, `.5`, `1e9`, `2.5E-3`) that is not part of a word. A sign
directly in front of it (`-5`, no space) belongs to the number only when nothing but spaces
separates it from the start of the text or from an operator / '(' / '=' before it, so in
"3 - 5" and "3-5" the minus is an operator, while in "-40 degC" and "3 - -5" it is a sign.

Features (`number_features`, FluxEM-like: log-magnitude, sign and zero flag, which is what makes
a number's vector comparable across magnitudes, plus mantissa and integrality for finer
identity): [sign, is_zero, log10|x| / 10, (mantissa - 5.5) / 4.5, is_integer,
sign * log10(1 + |x|) / 10]. All are bounded for |x| < 10^10 and degrade gracefully beyond
(log features grow linearly in the exponent, never overflow).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_UNSIGNED = re.compile(r"(?<![\w.])(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")
_SIGN_CONTEXT = set("+-*/=(")
NUM_FEATURES = 6


def find_number_spans(text: str) -> list[tuple[int, int, str]]:
    """[(start, end, span_text)] of the numbers in `text`, left to right."""
    spans = []
    for m in _UNSIGNED.finditer(text):
        start = m.start()
        if start > 0 and text[start - 1] in "+-":
            j = start - 2
            while j >= 0 and text[j] == " ":
                j -= 1
            if j < 0 or text[j] in _SIGN_CONTEXT:
                start -= 1
        spans.append((start, m.end(), text[start:m.end()]))
    return spans


def number_features(value: float | Decimal) -> list[float]:
    x = float(value)
    if x == 0 or not math.isfinite(x):
        return [0.0, 1.0, 0.0, 0.0, 1.0, 0.0] if x == 0 else [math.copysign(1.0, x), 0.0, 30.8, 0.0, 0.0, 30.8]
    ax = abs(x)
    sign = 1.0 if x > 0 else -1.0
    log = math.log10(ax)
    mantissa = ax / 10 ** math.floor(log)
    is_int = 1.0 if float(x).is_integer() else 0.0
    return [sign, 0.0, log / 10, (mantissa - 5.5) / 4.5, is_int, sign * math.log10(1 + ax) / 10]
