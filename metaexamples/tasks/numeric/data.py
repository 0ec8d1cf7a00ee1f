"""Data, answer parsing and metrics of task=numeric (`task.dataset=arithmetic|units`).

Problems
--------
Every problem is a dict::

    {"id", "dataset", "split", "question": str, "target": float | bool, "target_text": str,
     "unit": str | None, "kind": "arith" | "convert" | "can_add", "n_ops": int,
     "max_abs_operand": float, "dimension": str | None}

arithmetic
    Expressions over +, -, * with standard precedence: * binds tighter than + and -, and
    operators of equal precedence apply left to right, e.g. "2 - 3 * 4 + 5" = 2 - 12 + 5 = -5.
    Operands are non-negative integers written in plain decimal, operators separated by single
    spaces. Ground truth is exact (Python integers / `decimal`), so `target_text` is the exact
    integer (it can be longer than a float holds); `target` is its float.
    Splits (defaults; every range is a task option, `SPEC_DEFAULTS`): train and `test_id`
    (1 to `max_ops` = 4 operations over `operations` = + - *, operands in `operands` =
    [0, 999]), `test_ood_magnitude` (the same, operands in `ood_magnitude`: [10^6, 10^9];
    small preset [10^4, 10^5]), `test_ood_length` (`ood_length` = 5-6 operations).
units
    `convert`: "3.5 km to m" -> 3500, `target_text` "3500 m", `unit` "m", `dimension` the pint
    dimensionality string of the target unit ("[length]"); `can_add`: "3 m + 2 s" -> False,
    "3 m + 2 ft" -> True (same pint dimensionality; `unit`/`dimension` None). Ground truth from
    pint (see `units.py`); `target` is pint's value rounded to 12 significant digits (removes
    float noise such as 211.99999999999991), `target_text` shows it to 6 significant digits in
    plain decimal. Input values have 3 significant digits, log-uniform in [0.1, 1000] (train,
    `test_id`, `test_ood_types`) or [10^6, 10^9] (`test_ood_magnitude`). 70% convert, 30%
    can_add (half of them same-dimension); `include_can_add=false`: conversions only.
    `unit_types` restricts the dimensions (default all five). `test_ood_types` uses only the held-out unit pairs
    of `units.HELD_OUT_CONVERT` / `units.HELD_OUT_ADD`, which never occur in train.

`make_numeric_splits` is seeded with a string seed per split (`random.Random`), so the same
(dataset, preset, seed) gives byte-identical problems; no question occurs in two splits (the
test splits are drawn first, then train excludes them).

Scoring (the definitions every report uses)
-------------------------------------------
- Answer text: a number in plain or exponent notation, followed for conversions by one space
  and a unit ("3500 m"); "True"/"False" for can_add (`parse_answer`).
- Exact match (`exact_match`): over the problems with a numeric answer (arith and convert;
  can_add booleans are scored apart as `bool_accuracy`, so they never fill it). arith: the predicted number equals the exact integer target (decimal
  comparison of the texts, no tolerance); convert: the predicted value rounded to 6
  significant digits equals `target_text`'s number AND the predicted unit is the requested
  unit; can_add: the predicted boolean equals the target.
- Relative error (arith and convert problems with a readable number): |pred - target| / |target|,
  and |pred - target| / 1 when the target is 0 (i.e. divided by max(|target|, 1) there);
  capped at 1e30 so means stay finite. Median and mean are over those problems only;
  unreadable answers are counted separately (`n_unparseable`).
- Dimensional correctness (convert): the predicted unit is a unit pint knows whose
  dimensionality equals the problem's `dimension` (the requested kind: "mm" for "m" is
  dimensionally correct but not a unit match); `unit_match` = predicted unit == requested.
- Boolean accuracy (can_add): predicted boolean == target (anything else counts wrong).
"""

from __future__ import annotations

import math
import random
import statistics
from decimal import Decimal, InvalidOperation, localcontext

from metaexamples.errors import ConfigError
from metaexamples.models.numeric.text import (DIMENSION_UNITS, TARGET_SIG, UNIT_DIMENSION_NAME, decimal_text,
                                              format_number, parse_answer, read_question, round_sig)
from metaexamples.tasks.numeric import units as U

DATASETS = ("arithmetic", "units")
PRESETS: dict[str, dict] = {
    "small": {"train": 1000, "test": 200, "arith_ood_magnitude": (10**4, 10**5)},
    "full": {"train": 10000, "test": 1000, "arith_ood_magnitude": (10**6, 10**9)},
}
SPLITS = {
    "arithmetic": ("train", "test_id", "test_ood_magnitude", "test_ood_length"),
    "units": ("train", "test_id", "test_ood_magnitude", "test_ood_types"),
}
OPERATORS = ("+", "-", "*")
TRAIN_OPS = (1, 4)
OOD_LENGTH_OPS = (5, 6)
TRAIN_OPERANDS = (0, 999)
# What a dataset is drawn from (task.operands, ...); None = the preset's value.
SPEC_DEFAULTS: dict = {"operands": TRAIN_OPERANDS, "operations": OPERATORS, "max_ops": TRAIN_OPS[1],
                       "ood_magnitude": None, "ood_length": OOD_LENGTH_OPS,
                       "unit_types": tuple(DIMENSION_UNITS), "include_can_add": True}
UNIT_VALUES = (0.1, 1000.0)
UNIT_OOD_VALUES = (1e6, 1e9)
VALUE_SIG = 3           # significant digits of unit-question values
CONVERT_SHARE = 0.7
REL_ERROR_CAP = 1e30

# -- questions -------------------------------------------------------------------------------
def parse_question(text: str) -> dict:
    """read_question's structure of a question, with its units checked against pint: a
    ConfigError names the text, or the unit pint does not know."""
    question = read_question(text)
    for unit in {"convert": lambda q: (q["from"], q["to"]), "can_add": lambda q: q["units"]}.get(
            question["kind"], lambda q: ())(question):
        U.dimensionality(unit)
    return question


def evaluate_arith(numbers: list[Decimal], ops: list[str]) -> Decimal:
    """Exact value with * before + and -, left to right otherwise."""
    with localcontext() as ctx:
        ctx.prec = 400
        total, term, sign = Decimal(0), numbers[0], 1
        for op, x in zip(ops, numbers[1:]):
            if op == "*":
                term = term * x
            else:
                total += sign * term
                term, sign = x, (1 if op == "+" else -1)
        return total + sign * term


def answer_question(text: str) -> dict:
    """Ground truth for a question: {"kind", "target", "target_text", "unit", "dimension",
    "n_ops", "max_abs_operand"}."""
    q = parse_question(text)
    if q["kind"] == "arith":
        value = evaluate_arith(q["numbers"], q["ops"])
        return {"kind": "arith", "target": float(value), "target_text": decimal_text(value), "unit": None,
                "dimension": None, "n_ops": len(q["ops"]),
                "max_abs_operand": float(max(abs(x) for x in q["numbers"]))}
    if q["kind"] == "convert":
        value = U.convert(float(q["value"]), q["from"], q["to"])
        if not math.isfinite(value):
            raise ConfigError(f"question {text!r}: the conversion is not finite")
        return {"kind": "convert", "target": round_sig(value, 12),
                "target_text": f"{format_number(value, TARGET_SIG)} {q['to']}", "unit": q["to"],
                "dimension": U.dimensionality(q["to"]), "n_ops": 1, "max_abs_operand": float(abs(q["value"]))}
    ok = U.can_add(*q["units"])
    return {"kind": "can_add", "target": ok, "target_text": str(ok), "unit": None, "dimension": None,
            "n_ops": 1, "max_abs_operand": float(max(abs(x) for x in q["values"]))}


# -- sampling --------------------------------------------------------------------------------
def _arith_question(rng: random.Random, n_ops: tuple[int, int], operands: tuple[int, int],
                    operations: tuple[str, ...] = OPERATORS) -> str:
    n = rng.randint(*n_ops)
    parts = [str(rng.randint(*operands))]
    for _ in range(n):
        parts += [rng.choice(operations), str(rng.randint(*operands))]
    return " ".join(parts)


def _unit_value(rng: random.Random, lo: float, hi: float) -> str:
    x = 10 ** rng.uniform(math.log10(lo), math.log10(hi))
    return format_number(min(max(x, lo), hi), VALUE_SIG)


def _units_question(rng: random.Random, values: tuple[float, float], held_out: bool,
                    unit_types: tuple[str, ...] = tuple(DIMENSION_UNITS), include_can_add: bool = True) -> str:
    convert = _pairs("convert", held_out, unit_types)
    adds = _pairs("add", held_out, unit_types) if include_can_add else []
    if not adds or rng.random() < CONVERT_SHARE:
        a, b = rng.choice(convert)
        return f"{_unit_value(rng, *values)} {a} to {b}"
    same = rng.random() < 0.5
    pool = [p for p in adds if U.can_add(*p) == same] or adds
    a, b = rng.choice(pool)
    return f"{_unit_value(rng, *values)} {a} + {_unit_value(rng, *values)} {b}"


_PAIR_CACHE: dict = {}


def _pairs(kind: str, held_out: bool, unit_types: tuple[str, ...] = tuple(DIMENSION_UNITS)) -> list[tuple[str, str]]:
    """The (from, to) pairs of one kind whose units are both of `unit_types`."""
    key = (kind, held_out, tuple(unit_types))
    if key not in _PAIR_CACHE:
        pairs = U.convert_pairs(held_out) if kind == "convert" else U.add_pairs(held_out)
        _PAIR_CACHE[key] = [p for p in pairs if all(UNIT_DIMENSION_NAME[u] in unit_types for u in p)]
    return _PAIR_CACHE[key]


def _distinct_choices(key: str, values, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """`values` as a tuple when it is a non-empty list of distinct members of `allowed`; else a
    one-line ConfigError naming `key`."""
    chosen = tuple(values)
    bad = [v for v in chosen if v not in allowed]
    if bad or not chosen or len(set(chosen)) != len(chosen):
        raise ConfigError(f"{key}: {bad[0] if bad else list(chosen)!r} is not a list of distinct choices out of "
                          f"{', '.join(allowed)}")
    return chosen


def resolve_spec(preset: str, spec: dict | None) -> dict:
    """The dataset spec with every key filled (SPEC_DEFAULTS, the preset's OOD magnitude),
    checked: a ConfigError naming task.<key> for an impossible one."""
    full = {**SPEC_DEFAULTS, **{k: v for k, v in (spec or {}).items() if v is not None}}
    unknown = set(full) - set(SPEC_DEFAULTS)
    if unknown:
        raise ConfigError(f"task.{sorted(unknown)[0]}: unknown dataset option (known: {', '.join(SPEC_DEFAULTS)})")
    if full["ood_magnitude"] is None:
        full["ood_magnitude"] = PRESETS[preset]["arith_ood_magnitude"]
    for key in ("operands", "ood_magnitude", "ood_length"):
        r = full[key]
        if (not isinstance(r, (list, tuple)) or len(r) != 2
                or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in r)):
            raise ConfigError(f"task.{key}: must be [low, high], two non-negative integers, got {r!r}")
        if r[0] > r[1]:
            raise ConfigError(f"task.{key}: low {r[0]} > high {r[1]}")
        full[key] = (int(r[0]), int(r[1]))
    if isinstance(full["max_ops"], bool) or not isinstance(full["max_ops"], int) or full["max_ops"] < 1:
        raise ConfigError(f"task.max_ops: must be a positive integer, got {full['max_ops']!r}")
    if full["ood_length"][0] < 1:
        raise ConfigError(f"task.ood_length: must count at least 1 operation, got {list(full['ood_length'])}")
    full["operations"] = _distinct_choices("task.operations", full["operations"], OPERATORS)
    full["unit_types"] = _distinct_choices("task.unit_types", full["unit_types"], tuple(DIMENSION_UNITS))
    if not isinstance(full["include_can_add"], bool):
        raise ConfigError(f"task.include_can_add: must be true or false, got {full['include_can_add']!r}")
    return full


def _split_sampler(dataset: str, split: str, spec: dict):
    if dataset == "arithmetic":
        n_ops = spec["ood_length"] if split == "test_ood_length" else (1, spec["max_ops"])
        operands = spec["ood_magnitude"] if split == "test_ood_magnitude" else spec["operands"]
        return lambda rng: _arith_question(rng, n_ops, operands, spec["operations"])
    values = UNIT_OOD_VALUES if split == "test_ood_magnitude" else UNIT_VALUES
    held_out = split == "test_ood_types"
    return lambda rng: _units_question(rng, values, held_out, spec["unit_types"], spec["include_can_add"])


def make_numeric_splits(dataset: str, preset: str, seed: int, *,
                        sizes: dict[str, int] | None = None, spec: dict | None = None) -> dict[str, list[dict]]:
    """Problems per split for `task.dataset` (arithmetic | units) and `task.preset` (small | full).

    Sizes: train 1,000 (small) / 10,000 (full); each test split 200 / 1,000. `sizes` overrides
    some of them ({"train": 50}, for tests); `spec` the dataset options (`resolve_spec`).
    Deterministic per (dataset, preset, seed, spec); test splits are drawn first and train
    never repeats a test question."""
    if dataset not in DATASETS:
        raise ConfigError(f"task.dataset: unknown dataset {dataset!r} (choose one of {', '.join(DATASETS)})")
    if preset not in PRESETS:
        raise ConfigError(f"task.preset: unknown preset {preset!r} (choose one of {', '.join(PRESETS)})")
    spec = resolve_spec(preset, spec)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed: must be an integer, got {seed!r}")
    splits = SPLITS[dataset]
    n = {s: PRESETS[preset]["train" if s == "train" else "test"] for s in splits}
    for key, value in (sizes or {}).items():
        if key not in n:
            raise ConfigError(f"task.sizes.{key}: unknown split (choose from {', '.join(splits)})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"task.sizes.{key}: must be a non-negative integer, got {value!r}")
        n[key] = value
    for split in splits:
        if n[split] == 0:
            raise ConfigError(f"task.sizes.{split}: split {split!r} would be empty")

    seen: set[str] = set()
    out: dict[str, list[dict]] = {}
    for split in [s for s in splits if s != "train"] + ["train"]:
        rng = random.Random(f"metaexamples/numeric/{dataset}/{preset}/{seed}/{split}")
        sample = _split_sampler(dataset, split, spec)
        rows, tries = [], 0
        while len(rows) < n[split]:
            tries += 1
            if tries > 50 * n[split] + 1000:
                raise ConfigError(f"task.sizes.{split}: cannot draw {n[split]} distinct problems "
                                  f"(got {len(rows)})")
            question = sample(rng)
            if question in seen:
                continue
            seen.add(question)
            truth = answer_question(question)
            rows.append({"id": f"{dataset}-{split}-{len(rows):05d}", "dataset": dataset, "split": split,
                         "question": question, **truth})
        out[split] = rows
    return {s: out[s] for s in splits}


# -- answers and scores ----------------------------------------------------------------------
def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def _pred_number_text(pred: dict) -> str | None:
    parsed = parse_answer(pred.get("prediction_text"))
    if parsed is not None and parsed["number_text"] is not None:
        return parsed["number_text"]
    value = pred.get("prediction")
    return repr(float(value)) if _is_number(value) else None


def relative_error(prediction: float, target: float) -> float:
    """|pred - target| / |target|; |pred - target| / 1 for a zero target; capped at 1e30."""
    err = abs(float(prediction) - float(target)) / (abs(float(target)) if target != 0 else 1.0)
    return min(err, REL_ERROR_CAP) if math.isfinite(err) else REL_ERROR_CAP


def _unit_dimension(unit: str | None) -> str | None:
    if not isinstance(unit, str) or not unit:
        return None
    try:
        return U.dimensionality(unit)
    except ConfigError:
        return None


def score_prediction(problem: dict, pred: dict) -> dict:
    """Per-problem scores: {"parseable", "exact", "rel_error" (None for can_add or unreadable),
    "dimension_ok" (convert only), "unit_ok" (convert only)}; see the module docstring."""
    kind = problem["kind"]
    value = pred.get("prediction")
    if kind == "can_add":
        ok = isinstance(value, bool)
        return {"parseable": ok, "exact": ok and value == problem["target"], "rel_error": None,
                "dimension_ok": None, "unit_ok": None}
    if not _is_number(value):
        out = {"parseable": False, "exact": False, "rel_error": None, "dimension_ok": None, "unit_ok": None}
        if kind == "convert":
            out["dimension_ok"] = _unit_dimension(pred.get("unit")) == problem["dimension"]
            out["unit_ok"] = pred.get("unit") == problem["unit"]
        return out
    number_text = _pred_number_text(pred)
    target_number = problem["target_text"].split()[0]
    if kind == "arith":
        try:
            exact = Decimal(number_text) == Decimal(target_number)
        except (InvalidOperation, TypeError):
            exact = False
        return {"parseable": True, "exact": exact, "rel_error": relative_error(value, problem["target"]),
                "dimension_ok": None, "unit_ok": None}
    unit_ok = pred.get("unit") == problem["unit"]
    try:
        same_value = format_number(Decimal(number_text), TARGET_SIG) == target_number
    except (InvalidOperation, TypeError, ValueError):
        same_value = False
    return {"parseable": True, "exact": same_value and unit_ok,
            "rel_error": relative_error(value, problem["target"]),
            "dimension_ok": _unit_dimension(pred.get("unit")) == problem["dimension"], "unit_ok": unit_ok}


def numeric_metrics(problems: list[dict], predictions: list[dict]) -> dict:
    """Metrics of one split (definitions in the module docstring):

    n, n_unparseable, exact_match (arith and convert problems, n_exact_match of them; None if
    none), rel_error_median, rel_error_mean, n_rel_error (problems they
    are over), dimensional_correctness and unit_match (convert problems; None if none),
    bool_accuracy (can_add problems; None if none)."""
    if len(problems) != len(predictions):
        raise ValueError(f"{len(problems)} problems but {len(predictions)} predictions")
    scores = [score_prediction(p, q) for p, q in zip(problems, predictions)]
    rel = [s["rel_error"] for s in scores if s["rel_error"] is not None]
    numbers = [s for p, s in zip(problems, scores) if p["kind"] != "can_add"]
    conv = [s for p, s in zip(problems, scores) if p["kind"] == "convert"]
    bools = [s for p, s in zip(problems, scores) if p["kind"] == "can_add"]

    def mean(xs):
        return sum(xs) / len(xs) if xs else None

    return {
        "n": len(problems),
        "n_unparseable": sum(not s["parseable"] for s in scores),
        "exact_match": mean([float(s["exact"]) for s in numbers]),  # can_add apart: bool_accuracy
        "n_exact_match": len(numbers),
        "rel_error_median": statistics.median(rel) if rel else None,
        "rel_error_mean": mean(rel),
        "n_rel_error": len(rel),
        "dimensional_correctness": mean([float(s["dimension_ok"]) for s in conv]),
        "unit_match": mean([float(s["unit_ok"]) for s in conv]),
        "bool_accuracy": mean([float(s["exact"]) for s in bools]),
    }


def verify(problem: dict, completion: str) -> tuple[float, str, dict | None]:
    """The verifier: a completion text -> (reward 1.0 or 0.0, verdict kind, what was read).

    Kinds: "correct", "unparseable", "wrong_value", "wrong_unit" (convert: right value, wrong
    unit)."""
    parsed = parse_answer(completion)
    pred = {"prediction": parsed["value"] if parsed else None, "prediction_text": completion,
            "unit": parsed["unit"] if parsed else None}
    s = score_prediction(problem, pred)
    if s["exact"]:
        return 1.0, "correct", parsed
    if not s["parseable"]:
        return 0.0, "unparseable", parsed
    if problem["kind"] == "convert" and not s["unit_ok"]:
        number_text = _pred_number_text(pred)
        if number_text and format_number(Decimal(number_text)) == problem["target_text"].split()[0]:
            return 0.0, "wrong_unit", parsed
    return 0.0, "wrong_value", parsed
