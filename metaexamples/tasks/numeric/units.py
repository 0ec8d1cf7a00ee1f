"""The unit side of task=numeric: the unit vocabulary, the held-out pairs, and pint ground truth.

Every conversion is computed by pint (`pint.UnitRegistry()`, `Quantity(v, unit).to(target)`),
never by a hand-written table; this module only chooses *which* units and pairs exist.

- Dimensions: length, mass, time, temperature (affine: degC, degF, K: pint's offset units,
  so 100 degC -> 212 degF) and velocity (compound: m/s, km/h, mph, ft/s).
- `HELD_OUT_CONVERT`: for each dimension a fixed set of ordered (from, to) pairs that never
  occur in training; `test_ood_types` uses only these. Every unit still occurs as a source
  and as a target in other training pairs, so a model can know each unit but not the pair.
- `HELD_OUT_ADD`: a fixed set of unordered unit pairs (both same- and different-dimension)
  that never occur in a training `can_add` question; `test_ood_types` asks only these.
- `can_add(a, b)` is the dimensional check: True when both units have the same pint
  dimensionality (so "3 degC + 2 K" is True, though pint refuses to add offset units).
"""

from __future__ import annotations

from functools import lru_cache

from metaexamples.errors import ConfigError
from metaexamples.models.numeric.text import DIMENSION_UNITS, UNIT_NAMES

HELD_OUT_CONVERT: dict[str, tuple[tuple[str, str], ...]] = {
    "length": (("ft", "km"), ("mm", "yd"), ("mi", "cm"), ("inch", "m")),
    "mass": (("lb", "g"), ("mg", "oz")),
    "time": (("day", "min"), ("ms", "h")),
    "temperature": (("degF", "K"),),
    "velocity": (("mph", "km/h"), ("ft/s", "m/s")),
}

HELD_OUT_ADD: tuple[frozenset, ...] = tuple(frozenset(p) for p in (
    ("yd", "mi"), ("oz", "mg"), ("min", "ms"), ("degF", "K"), ("km/h", "ft/s"),   # same kind
    ("inch", "day"), ("lb", "degC"), ("cm", "mph"), ("g", "h"), ("s", "K"),       # different
))


@lru_cache(maxsize=1)
def registry():
    """The one pint UnitRegistry (built once, ~0.2 s)."""
    import pint

    return pint.UnitRegistry()


@lru_cache(maxsize=4096)
def dimensionality(unit: str) -> str:
    """pint's dimensionality string of a unit, e.g. 'm/s' -> '[length] / [time]'.

    Raises ConfigError naming the unit when pint does not know it."""
    try:
        return str(registry().Unit(unit).dimensionality)
    except Exception as exc:  # pint raises several types (UndefinedUnitError, parse errors)
        raise ConfigError(f"unit {unit!r}: pint does not know this unit ({type(exc).__name__})") from None


def convert(value: float, unit_from: str, unit_to: str) -> float:
    """pint's conversion of `value` `unit_from` to `unit_to` (a float)."""
    dimensionality(unit_from), dimensionality(unit_to)  # ConfigError for unknown units
    ureg = registry()
    try:
        return float(ureg.Quantity(value, unit_from).to(unit_to).magnitude)
    except Exception as exc:
        raise ConfigError(
            f"unit {unit_to!r}: cannot convert {unit_from!r} to {unit_to!r} ({type(exc).__name__})") from None


def can_add(unit_a: str, unit_b: str) -> bool:
    """Dimensional check: the two units have the same pint dimensionality."""
    return dimensionality(unit_a) == dimensionality(unit_b)


def held_out_convert_pairs() -> set[tuple[str, str]]:
    return {pair for pairs in HELD_OUT_CONVERT.values() for pair in pairs}


def convert_pairs(held_out: bool) -> list[tuple[str, str]]:
    """Ordered (from, to) pairs within a dimension, from != to: the held-out ones or the rest."""
    held = held_out_convert_pairs()
    pairs = []
    for units in DIMENSION_UNITS.values():
        for a in units:
            for b in units:
                if a != b and ((a, b) in held) == held_out:
                    pairs.append((a, b))
    return pairs


def add_pairs(held_out: bool) -> list[tuple[str, str]]:
    """Ordered unit pairs (a, b), a != b, for can_add questions: the held-out combinations
    (in both orders) or all others."""
    held = set(HELD_OUT_ADD)
    return [(a, b) for a in UNIT_NAMES for b in UNIT_NAMES
            if a != b and (frozenset((a, b)) in held) == held_out]
