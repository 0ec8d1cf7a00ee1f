"""task=numeric data (arithmetic, units with pint ground truth) and the numeric models
(token-only character transformer, FluxEM-like hybrid)."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from metaexamples.errors import ConfigError
from metaexamples.models.numeric.text import UNIT_NAMES
from metaexamples.tasks.numeric import units as U
from metaexamples.tasks.numeric.data import (answer_question, format_number, make_numeric_splits, numeric_metrics,
                                             parse_answer, parse_question, verify)

torch.set_num_threads(1)

TINY = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128}
ALGEBRAIC = {**TINY, "readout": "algebraic"}  # the hybrid's structured readout (default: regression)


# -- data ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def arith_splits():
    return make_numeric_splits("arithmetic", "small", 0)


@pytest.fixture(scope="module")
def units_splits():
    return make_numeric_splits("units", "small", 0)


def test_splits_are_deterministic_sized_and_disjoint(arith_splits, units_splits):
    assert json.dumps(arith_splits) == json.dumps(make_numeric_splits("arithmetic", "small", 0))
    assert json.dumps(make_numeric_splits("units", "small", 1, sizes={"train": 50})) == \
        json.dumps(make_numeric_splits("units", "small", 1, sizes={"train": 50}))
    assert make_numeric_splits("arithmetic", "small", 1)["train"] != arith_splits["train"]
    for splits, names in ((arith_splits, {"test_ood_magnitude", "test_ood_length"}),
                          (units_splits, {"test_ood_magnitude", "test_ood_types"})):
        assert set(splits) == {"train", "test_id"} | names
        assert len(splits["train"]) == 1000 and all(len(v) == 200 for k, v in splits.items() if k != "train")
        train = {p["question"] for p in splits["train"]}
        for name, rows in splits.items():
            if name != "train":
                assert not train & {p["question"] for p in rows}
        keys = {"id", "dataset", "split", "question", "target", "target_text", "unit", "kind", "n_ops",
                "max_abs_operand", "dimension"}
        assert all(set(p) == keys for rows in splits.values() for p in rows)


def test_arithmetic_ranges_and_precedence(arith_splits):
    assert all(1 <= p["n_ops"] <= 4 and p["max_abs_operand"] <= 999 for p in arith_splits["train"])
    assert all(p["n_ops"] >= 5 and p["max_abs_operand"] <= 999 for p in arith_splits["test_ood_length"])
    for p in arith_splits["test_ood_magnitude"]:
        assert all(10**4 <= int(x) <= 10**5 for x in p["question"].split()[::2])
    assert answer_question("2 - 3 * 4 + 5")["target_text"] == "-5"   # * first, then left to right
    assert answer_question("10 - 4 - 3")["target"] == 3.0
    big = answer_question("999999999 * 999999999 * 999999999 * 999999999 * 999999999")
    assert big["target_text"] == str(999999999**5)                 # exact beyond float precision
    assert make_numeric_splits("arithmetic", "full", 0, sizes={"train": 5, "test_ood_magnitude": 20})[
        "test_ood_magnitude"][0]["max_abs_operand"] >= 10**6


def test_units_ground_truth_from_pint():
    t = answer_question("100 degC to degF")
    assert t["target"] == 212.0 and t["target_text"] == "212 degF" and t["dimension"] == "[temperature]"
    t = answer_question("1 mph to m/s")
    assert t["target"] == pytest.approx(0.44704, rel=1e-12) and t["dimension"] == "[length] / [time]"
    t = answer_question("3.5 km to m")
    assert (t["target"], t["target_text"], t["unit"], t["kind"]) == (3500.0, "3500 m", "m", "convert")
    assert answer_question("-40 degC to degF")["target"] == -40.0
    assert answer_question("3 m + 2 s")["target"] is False
    assert answer_question("3 m + 2 ft")["target"] is True
    assert answer_question("3 degC + 2 K")["target"] is True           # dimensional, not pint's offset rule
    assert format_number(0.000123456789) == "0.000123457" and format_number(1.6e15) == "1600000000000000"


def test_units_ood_types_use_only_held_out_pairs(units_splits):
    def pair(p):
        q = parse_question(p["question"])
        return (q["from"], q["to"]) if q["kind"] == "convert" else frozenset(q["units"])

    held_convert, held_add = U.held_out_convert_pairs(), set(U.HELD_OUT_ADD)
    train = [pair(p) for p in units_splits["train"]]
    assert not set(train) & (held_convert | held_add)
    ood = [pair(p) for p in units_splits["test_ood_types"]]
    assert all(x in held_convert or x in held_add for x in ood)
    kinds = {p["kind"] for p in units_splits["test_ood_types"]}
    assert kinds == {"convert", "can_add"}
    sources = {x[0] for x in train if isinstance(x, tuple)}
    targets = {x[1] for x in train if isinstance(x, tuple)}
    assert sources == targets == set(UNIT_NAMES)  # every unit is known, only the pair is new
    assert all(1e6 <= p["max_abs_operand"] <= 1e9 for p in units_splits["test_ood_magnitude"])


def test_config_errors_name_the_key():
    cases = [
        (lambda: make_numeric_splits("algebra", "small", 0), "task.dataset:"),
        (lambda: make_numeric_splits("units", "huge", 0), "task.preset:"),
        (lambda: make_numeric_splits("units", "small", 0, sizes={"train": 0}), "task.sizes.train:"),
        (lambda: make_numeric_splits("units", "small", 0, sizes={"test_ood_length": 3}), "task.sizes.test_ood_length:"),
        (lambda: parse_question("3 + + 4"), "question '3 + + 4':"),
        (lambda: parse_question("3 +"), "question '3 +':"),
        (lambda: parse_question("3 furlongz to m"), "unit 'furlongz':"),
    ]
    for fn, prefix in cases:
        with pytest.raises(ConfigError) as err:
            fn()
        assert str(err.value).startswith(prefix), str(err.value)
        assert "\n" not in str(err.value)


# -- scoring ---------------------------------------------------------------------------------
def test_metrics_definitions():
    problems = [answer_question(q) | {"question": q} for q in
                ("2 + 3", "5 - 5", "3.5 km to m", "3.5 km to m", "1 m + 2 s", "1 m + 2 ft")]
    preds = [
        {"prediction": 5.0, "prediction_text": "5", "unit": None},            # exact
        {"prediction": 0.5, "prediction_text": "0.5", "unit": None},          # zero target: |0.5 - 0| / 1
        {"prediction": 3500.0004, "prediction_text": "3500.0004 mm", "unit": "mm"},  # right kind, wrong unit
        {"prediction": None, "prediction_text": "35oo m", "unit": None},      # unparseable
        {"prediction": False, "prediction_text": "False", "unit": None},
        {"prediction": False, "prediction_text": "False", "unit": None},
    ]
    m = numeric_metrics(problems, preds)
    assert m["n"] == 6 and m["n_unparseable"] == 1
    assert m["exact_match"] == pytest.approx(1 / 4) and m["n_exact_match"] == 4  # can_add apart (bool_accuracy)
    assert m["n_rel_error"] == 3
    assert m["rel_error_median"] == pytest.approx(0.0004 / 3500)
    assert m["rel_error_mean"] == pytest.approx((0 + 0.5 + 0.0004 / 3500) / 3)
    assert m["dimensional_correctness"] == 0.5 and m["unit_match"] == 0.0
    assert m["bool_accuracy"] == 0.5
    assert parse_answer("3500 m") == {"value": 3500.0, "number_text": "3500", "unit": "m"}
    assert parse_answer("True")["value"] is True and parse_answer("12a") is None
    assert verify(problems[2], "3500 m")[:2] == (1.0, "correct")
    assert verify(problems[2], "3500 km")[:2] == (0.0, "wrong_unit")
    assert verify(problems[0], "five")[:2] == (0.0, "unparseable")


# -- models ----------------------------------------------------------------------------------
def test_number_span_detection():
    from metaexamples.models.numeric import find_number_spans, number_features

    def spans(text):
        return [s[2] for s in find_number_spans(text)]

    assert spans("3.5 km to m") == ["3.5"]
    assert spans("-40 degC to degF") == ["-40"]
    assert spans("3 - 5") == ["3", "5"] and spans("3-5") == ["3", "5"]
    assert spans("3 - -5 * +2") == ["3", "-5", "+2"]
    assert spans("1e9 + 2.5E-3 + .5") == ["1e9", "2.5E-3", ".5"]
    assert spans("x1 + 2 m/s") == ["2"]
    assert find_number_spans("12 + 345") == [(0, 2, "12"), (5, 8, "345")]
    f_small, f_big = number_features(3.0), number_features(3e8)
    assert f_small[0] == f_big[0] == 1.0 and f_big[2] - f_small[2] == pytest.approx(0.8)  # log10 axis
    assert number_features(0)[1] == 1.0 and number_features(-2.5)[0] == -1.0


def test_build_errors_name_the_key():
    from metaexamples.models.numeric import build_numeric_model, predict

    cases = [
        (lambda: build_numeric_model("numeric_bogus", {}, 0), "model:"),
        (lambda: build_numeric_model("numeric_hybrid", {"hidden": 3}, 0), "model.arch.hidden:"),
        (lambda: build_numeric_model("numeric_hybrid", {"readout": "digits"}, 0), "model.arch.readout:"),
        (lambda: build_numeric_model("numeric_token_only", {"readout": "algebraic"}, 0), "model.arch.readout:"),
        (lambda: build_numeric_model("numeric_token_only", {"num_layers": 0}, 0), "model.arch.num_layers:"),
        (lambda: build_numeric_model("numeric_token_only", {"hidden_size": 30, "num_heads": 4}, 0),
         "model.arch.num_heads:"),
        (lambda: predict(build_numeric_model("numeric_hybrid", TINY, 0), [], 0), "eval.batch_size:"),
    ]
    for fn, prefix in cases:
        with pytest.raises(ConfigError) as err:
            fn()
        assert str(err.value).startswith(prefix), str(err.value)


def _one_op_problems(n: int, seed: int, operands=(0, 9)) -> list[dict]:
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        q = f"{rng.randint(*operands)} {rng.choice('+-*')} {rng.randint(*operands)}"
        if q not in seen:
            seen.add(q)
            rows.append({"id": str(len(rows)), "dataset": "arithmetic", "split": "train", "question": q,
                         **answer_question(q)})
    return rows


def _train(model, problems, steps: int, lr: float, batch_size: int = 64, seed: int = 0):
    from metaexamples.models.numeric import collate, training_loss

    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        loss = training_loss(model, collate(model, rng.sample(problems, min(batch_size, len(problems)))))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


@pytest.fixture(scope="module")
def trained():
    """Both models, briefly trained on 1-op arithmetic of one-digit operands (all 300 facts):
    150 steps for the token-only model (enough to write well-formed numbers), 100 for the hybrid
    (algebraic readout)."""
    from metaexamples.models.numeric import build_numeric_model

    facts = _one_op_problems(300, 0)
    token = build_numeric_model("numeric_token_only", TINY, 0)
    _train(token, facts, 150, 3e-3)
    hybrid = build_numeric_model("numeric_hybrid", ALGEBRAIC, 0)
    _train(hybrid, facts, 100, 3e-3)
    return {"facts": facts, "numeric_token_only": token, "numeric_hybrid": hybrid}


def test_same_seed_same_init_and_model_sizes():
    from metaexamples.models.numeric import build_numeric_model

    for name in ("numeric_token_only", "numeric_hybrid"):
        a, b = build_numeric_model(name, TINY, 3), build_numeric_model(name, TINY, 3)
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
        n = sum(p.numel() for p in build_numeric_model(name, {}, 0).parameters())
        assert 5e5 <= n <= 2e6, (name, n)


@pytest.mark.parametrize("name", ["numeric_token_only", "numeric_hybrid"])
def test_trained_weights_are_used(trained, name):
    from metaexamples.models.numeric import build_numeric_model, predict

    facts = trained["facts"]
    fresh = predict(build_numeric_model(name, ALGEBRAIC if name == "numeric_hybrid" else TINY, 0), facts, 128)
    after = predict(trained[name], facts, 128)
    assert fresh != after
    m_fresh, m_after = numeric_metrics(facts, fresh), numeric_metrics(facts, after)
    if name == "numeric_token_only":  # from garbage to well-formed numbers
        assert m_after["n_unparseable"] < m_fresh["n_unparseable"]
    else:  # the routing is learned; it generalises to unseen, larger operands
        assert m_fresh["exact_match"] < 0.5 <= 0.9 <= m_after["exact_match"]
        unseen = _one_op_problems(100, 1, operands=(100, 99999))
        assert numeric_metrics(unseen, predict(trained[name], unseen, 64))["exact_match"] >= 0.9


@pytest.mark.slow
def test_token_only_learns_one_op_arithmetic():
    """~20-30 s on one thread: 800 steps of the tiny token-only model on the 300 one-digit facts.

    Deterministic: the run is seeded (init, batch order) and pinned to one thread here (torch's
    thread count is process-wide, set by whichever test module ran last, and float reductions
    differ between thread counts). Measured on 2026-12-01: 1.000 on one thread and on two; the
    0.88 of an earlier loaded run was not reproduced. The bar, 0.95, leaves that margin."""
    from metaexamples.models.numeric import build_numeric_model, predict

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        facts = _one_op_problems(300, 0)
        model = build_numeric_model("numeric_token_only", TINY, 0)
        _train(model, facts, 800, 3e-3)
        assert numeric_metrics(facts, predict(model, facts, 128))["exact_match"] >= 0.95
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["numeric_token_only", "numeric_hybrid"])
def test_save_pretrained_round_trip(trained, name, tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    from metaexamples.models.numeric import CharTokenizer, load_numeric_model, predict

    model = trained[name]
    probe = trained["facts"][:40] + make_numeric_splits("arithmetic", "small", 0, sizes={"train": 5})["test_id"][:20]
    before = predict(model, probe, 16)
    model.save_pretrained(tmp_path)
    assert CharTokenizer.from_pretrained(tmp_path).itos == model.numeric_tokenizer.itos
    assert AutoConfig.from_pretrained(tmp_path).model_type == name
    auto = (AutoModelForCausalLM if name == "numeric_token_only" else AutoModel).from_pretrained(tmp_path)
    assert type(auto) is type(model)
    for loaded in (auto, load_numeric_model(tmp_path)):
        assert predict(loaded, probe, 7) == before


def test_hybrid_units_table_and_round_trip(units_splits, tmp_path):
    """The hybrid's unit table is fitted from training conversions (saved with the model) and
    composes held-out pairs; the regression readout builds, trains and round-trips too."""
    from metaexamples.models.numeric import build_numeric_model, load_numeric_model, predict

    model = build_numeric_model("numeric_hybrid", ALGEBRAIC, 0)
    _train(model, units_splits["train"], 3, 1e-3, batch_size=500)
    idx = model.unit_index

    def conv(x, a, b):
        return model.convert_value(x, idx[a], idx[b])

    assert conv(3.5, "km", "m") == pytest.approx(3500, rel=1e-9)
    assert conv(2.0, "ft", "km") == pytest.approx(U.convert(2.0, "ft", "km"), rel=1e-9)    # held-out pair
    assert conv(50.0, "degF", "K") == pytest.approx(U.convert(50.0, "degF", "K"), rel=1e-9)  # held-out, affine
    assert conv(0.0, "degC", "K") == pytest.approx(273.15, rel=1e-9)
    assert conv(4e8, "mph", "km/h") == pytest.approx(U.convert(4e8, "mph", "km/h"), rel=1e-9)
    probe = units_splits["test_ood_types"][:30]
    before = predict(model, probe, 8)
    model.save_pretrained(tmp_path / "alg")
    assert predict(load_numeric_model(tmp_path / "alg"), probe, 8) == before

    reg = build_numeric_model("numeric_hybrid", {**TINY, "readout": "regression"}, 0)
    assert math.isfinite(_train(reg, units_splits["train"], 2, 1e-3))
    before = predict(reg, probe, 8)
    reg.save_pretrained(tmp_path / "reg")
    assert predict(load_numeric_model(tmp_path / "reg"), probe, 8) == before


def test_hybrid_default_readout_is_the_learned_numeric_head():
    """model=numeric_hybrid regresses the answer (sign + log10 magnitude); the algebraic
    readout (exact arithmetic on the parsed spans) must be asked for."""
    from metaexamples.models.numeric import build_numeric_model

    model = build_numeric_model("numeric_hybrid", TINY, 0)
    assert model.config.readout == "regression" and hasattr(model, "value_head")
    assert not hasattr(model, "route_head")
    assert build_numeric_model("numeric_hybrid", ALGEBRAIC, 0).config.readout == "algebraic"


def test_log_linear_readout_anchors_the_regression_on_the_operands(tmp_path):
    """readout=log_linear: log10|answer| = beta + sum_i alpha_i log10|x_i|. With alpha = 1 and
    beta = 0 set by hand, a product comes out right at any magnitude (what lets it extrapolate
    where the plain regression saturates); it trains and round-trips like the others."""
    from metaexamples.models.numeric import build_numeric_model, load_numeric_model, predict

    model = build_numeric_model("numeric_hybrid", {**TINY, "readout": "log_linear"}, 0)
    with torch.no_grad():
        model.coef_head.weight.zero_()
        model.coef_head.bias.fill_(1.0)          # alpha_i = 1
        last = model.value_head[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([-9.0, -9.0, 9.0, 0.0]))  # sign +, beta = 0
    problems = [answer_question(q) | {"question": q, "id": q} for q in ("300 * 20", "30000 * 2000", "7 * 8 * 9")]
    values = [p["prediction"] for p in predict(model, problems, 4)]
    assert values == [pytest.approx(6000, rel=1e-5), pytest.approx(6e7, rel=1e-5), pytest.approx(504, rel=1e-5)]
    fresh = build_numeric_model("numeric_hybrid", {**TINY, "readout": "log_linear"}, 0)
    facts = _one_op_problems(64, 0)
    assert math.isfinite(_train(fresh, facts, 2, 1e-3))
    fresh.save_pretrained(tmp_path)
    assert predict(load_numeric_model(tmp_path), facts, 16) == predict(fresh, facts, 16)
