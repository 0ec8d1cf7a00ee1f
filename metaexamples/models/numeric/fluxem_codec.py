"""The `fluxem` package (PyPI, MIT) as the hybrid's number and unit codec: fixed, not learned.

- `number_embedding(x)`: fluxem's 128-d arithmetic embedding of a number
  (`fluxem.domains.math.ArithmeticEncoder`): domain tag, sign and natural log|x| (the
  multiplicative coordinates), x / 1e15 (the additive one), integer/zero/negative flags and up
  to 16 decimal digits. `model=numeric_fluxem` projects it to the hidden size.
- `unit_embedding(u)`: fluxem's 128-d unit embedding (`fluxem.domains.physics.UnitEncoder`:
  SI dimension exponents, log of the factor to SI, a hash of the name: fluxem takes Python's
  per-process salted `hash()` there, we the same bits of a sha256), or None for the units
  fluxem does not encode (degC and degF: affine units are outside its factor model). Our unit
  names that fluxem spells differently are passed as its spelling (`FLUXEM_UNIT_NAMES`).
- `compose(values, roles)`: the answer's embedding built by fluxem's own algebra from the
  operands' embeddings (products by `multiply`, in log space; sums by `add`/`subtract`, in the
  linear component) and decoded by fluxem. fluxem 1.0.1 stores embeddings as float32, so this
  algebra is exact only while its float32 coordinates are: about 7 significant digits.
- `same_dimensions(a, b)`: fluxem's comparison of two unit embeddings' dimension vectors (the
  can_add check), None when fluxem encodes either unit not.
- `convert(x, unit_from, unit_to)`: x's embedding multiplied by the ratio of the two units'
  fluxem SI factors, decoded by fluxem (None when fluxem encodes neither factor).

Embeddings are cached per text (an encode costs ~40 us of numpy).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import numpy as np

DIM = 128
# fluxem's ArithmeticEncoder layout (fluxem/domains/math/arithmetic.py): dims 8-9 sign, ln|x|; 13 is_zero
SIGN_DIM, LOG_DIM, ZERO_DIM = 8, 9, 13
FLUXEM_UNIT_NAMES = {"inch": "in", "mph": "mi/h"}  # our name -> fluxem's spelling of the same unit
ROLE_PLUS, ROLE_MINUS, ROLE_MUL = 0, 1, 2  # a number starts a + term, a - term, or multiplies into the term


@lru_cache(maxsize=1)
def _arith():
    from fluxem.domains.math.arithmetic import ArithmeticEncoder

    return ArithmeticEncoder()


@lru_cache(maxsize=1)
def _units():
    from fluxem.domains.physics.units import UnitEncoder

    return UnitEncoder()


def _plain(value) -> int | float:
    """An int for integral values (fluxem then writes its digits), else a float."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return int(d) if d == d.to_integral_value() and abs(d) < 10 ** 16 else float(d)


@lru_cache(maxsize=65536)
def _number_embedding(text: str) -> np.ndarray:
    out = np.asarray(_arith().encode(_plain(Decimal(text))), dtype=np.float32)
    out.setflags(write=False)
    return out


def number_embedding(value) -> np.ndarray:
    """fluxem's 128-d embedding of a number (float32, read-only, cached)."""
    return _number_embedding(str(value))


# fluxem 1.0.1's unit embedding holds 8 "identifier" dims computed from Python's hash() of the
# name, which is salted per process: the same unit got different vectors in the training and in
# the evaluating process. We write the same bits from a stable hash (sha256) instead.
UNIT_HASH_DIMS = slice(8 + 12, 8 + 20)  # fluxem/domains/physics/units.py: UNIT_ID_HASH_OFFSET, _SIZE


def stable_unit_hash(name: str) -> np.ndarray:
    """fluxem's `_simple_hash` bit layout ((4-bit nibble - 7.5) / 7.5) over a sha256 of the name."""
    import hashlib

    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.array([(((h >> (i * 4)) & 0xF) - 7.5) / 7.5 for i in range(8)], dtype=np.float32)


@lru_cache(maxsize=256)
def unit_embedding(unit: str) -> np.ndarray | None:
    """fluxem's 128-d embedding of a unit (its identifier dims from a stable hash), or None for
    one fluxem does not encode."""
    name = FLUXEM_UNIT_NAMES.get(unit, unit)
    try:
        out = np.array(_units().encode(name), dtype=np.float32)
    except ValueError:  # fluxem: "Unknown unit: degC"
        return None
    out[UNIT_HASH_DIMS] = stable_unit_hash(name)
    out.setflags(write=False)
    return out


def decode(embedding: np.ndarray) -> float:
    """fluxem's decoding of an arithmetic embedding (digits for integers, else sign and log)."""
    return float(_arith().decode(np.asarray(embedding, dtype=np.float32)))


def log10_abs(embeddings):
    """log10|x| from fluxem arithmetic embeddings ([..., 128] tensors; 0 for x = 0)."""
    import math

    zero = embeddings[..., ZERO_DIM] > 0.5
    return (embeddings[..., LOG_DIM] / math.log(10)).masked_fill(zero, 0.0)


def compose(values: list, roles: list[int]) -> np.ndarray:
    """The answer's fluxem embedding: terms multiplied and summed by fluxem's algebra."""
    enc = _arith()
    total, term, sign = None, None, 1
    for k, (v, role) in enumerate(zip(values, roles)):
        emb = number_embedding(v)
        if k > 0 and role == ROLE_MUL:
            term = enc.multiply(term, emb)
            continue
        if term is not None:
            total = term if total is None and sign > 0 else (
                enc.subtract(enc.encode(0) if total is None else total, term) if sign < 0 else enc.add(total, term))
        term, sign = emb, (-1 if (k > 0 and role == ROLE_MINUS) else 1)
    if total is None:
        return term if sign > 0 else enc.subtract(enc.encode(0), term)
    return enc.add(total, term) if sign > 0 else enc.subtract(total, term)


def same_dimensions(unit_a: str, unit_b: str) -> bool | None:
    """fluxem's can-add check: the SI dimensions fluxem decodes from the two unit embeddings
    agree (what `UnitEncoder.is_compatible` compares; that method itself fails on fluxem 1.0.1's
    numpy backend: `bool.item()`); None if fluxem encodes either unit not."""
    a, b = unit_embedding(unit_a), unit_embedding(unit_b)
    if a is None or b is None:
        return None
    return _units().decode_dimensions(a) == _units().decode_dimensions(b)


def convert(value, unit_from: str, unit_to: str) -> float | None:
    """value in unit_from -> unit_to through fluxem: value's embedding times the factor ratio
    (both fluxem unit embeddings' SI factors), decoded; None if fluxem encodes either unit not."""
    a, b = unit_embedding(unit_from), unit_embedding(unit_to)
    if a is None or b is None:
        return None
    units, enc = _units(), _arith()
    ratio = units.decode_conversion_factor(a) / units.decode_conversion_factor(b)
    return decode(enc.multiply(number_embedding(value), enc.encode(float(ratio))))


__all__ = ["DIM", "number_embedding", "unit_embedding", "decode", "log10_abs", "compose", "convert", "same_dimensions",
           "FLUXEM_UNIT_NAMES"]
