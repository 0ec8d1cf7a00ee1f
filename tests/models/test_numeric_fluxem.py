"""Issue #23 on task=numeric: the fluxem codec (model=numeric_fluxem: fluxem's own embeddings
reach the model unchanged, the fluxem readout's round trip), the token-only options (reversed
answers, Abacus digit places), the dataset options, train.epochs, model.arch.dropout, the seed's
presets, exact match without can_add, and one-line bad input for each new key."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from metaexamples.errors import ConfigError
from metaexamples.tasks.numeric.data import answer_question, make_numeric_splits, numeric_metrics, resolve_spec
from test_numeric import _train

TINY = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128}
FLUXEM = {**TINY, "encoder": "fluxem", "readout": "fluxem"}


@pytest.fixture(autouse=True)
def one_thread():
    """Every test here on one thread (results then do not depend on what ran before)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sizes(dataset: str, train: int, test: int) -> dict:
    from metaexamples.tasks.numeric.data import SPLITS

    return {s: train if s == "train" else test for s in SPLITS[dataset]}


def _problems(questions):
    return [{"id": str(i), "question": q, **answer_question(q)} for i, q in enumerate(questions)]


# -- the fluxem codec ------------------------------------------------------------------------
def test_fluxem_embeddings_reach_the_model_unchanged():
    """The projection's input at a number's position is exactly fluxem's ArithmeticEncoder
    embedding of that number, at a unit word's last character exactly fluxem's UnitEncoder
    embedding of that unit (inch as fluxem's "in"); degC, which fluxem cannot encode, gets none."""
    from fluxem.domains.math.arithmetic import ArithmeticEncoder
    from fluxem.domains.physics.units import UnitEncoder

    from metaexamples.models.numeric import build_numeric_model, collate

    model = build_numeric_model("numeric_hybrid", FLUXEM, 0)
    problems = _problems(["12 + 7 * 305", "3.5 km to inch", "2 degC + 3 K"])
    batch = collate(model, problems)
    seen: dict[str, torch.Tensor] = {}
    model.num_encoder.register_forward_hook(lambda m, args, out: seen.__setitem__("num", args[0].detach()))
    model.unit_encoder.register_forward_hook(lambda m, args, out: seen.__setitem__("unit", args[0].detach()))
    model.eval()
    model(**{k: batch[k] for k in ("input_ids", "attention_mask", "num_features", "num_mask", "unit_features",
                                   "unit_mask")})
    arith, units = ArithmeticEncoder(), UnitEncoder()
    expected_numbers = [[12, 7, 305], [3.5], [2, 3]]
    for i, values in enumerate(expected_numbers):
        positions = batch["num_mask"][i].nonzero().flatten().tolist()
        assert len(positions) == len(values)
        for p, v in zip(positions, values):
            assert np.array_equal(seen["num"][i, p].numpy(), np.asarray(arith.encode(v), dtype=np.float32))
    unit_rows = {1: ["km", "in"], 2: ["K"]}  # degC: no fluxem embedding
    from metaexamples.models.numeric.fluxem_codec import UNIT_HASH_DIMS, stable_unit_hash

    for i, names in unit_rows.items():
        positions = batch["unit_mask"][i].nonzero().flatten().tolist()
        assert len(positions) == len(names)
        for p, name in zip(positions, names):
            expected = np.asarray(units.encode(name), dtype=np.float32).copy()
            expected[UNIT_HASH_DIMS] = stable_unit_hash(name)  # fluxem's own: salted per process
            assert np.array_equal(seen["unit"][i, p].numpy(), expected)
    assert not batch["unit_mask"][0].any()
    # fixed, not learned: no parameter holds the embeddings, and training does not change them
    assert not any(p.shape[-1:] == (128,) and p.shape[0] > 1000 for p in model.parameters())


def test_unit_embeddings_are_the_same_in_every_process():
    """fluxem hashes unit names with Python's salted hash(); ours must not depend on the process
    (a model trained in one process is evaluated in another)."""
    import subprocess
    import sys

    code = ("from metaexamples.models.numeric.fluxem_codec import unit_embedding;"
            "print(','.join(repr(float(x)) for x in unit_embedding('ft/s')))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outs) == 1


def test_fluxem_readout_composes_and_decodes_with_fluxem():
    """fluxem's algebra on the operands' embeddings: exact while fluxem's float32 coordinates
    are (results up to ~10^6), close beyond (relative error ~1e-7, not exact)."""
    from metaexamples.models.numeric import fluxem_codec as F

    plus, minus, mul = F.ROLE_PLUS, F.ROLE_MINUS, F.ROLE_MUL
    cases = [([12, 7, 3], [plus, plus, mul], 33), ([2, 3, 4, 5], [plus, minus, mul, plus], -5),
             ([99, 98], [plus, mul], 9702), ([0, 5], [plus, mul], 0), ([40, 2], [plus, minus], 38),
             ([12, 34, 56], [plus, mul, minus], 352)]
    for values, roles, answer in cases:
        assert round(F.decode(F.compose(values, roles))) == answer, (values, roles)
    for values, exact in (([99, 98, 97], 941094), ([98765, 43210], 98765 * 43210)):
        close = F.decode(F.compose(values, [plus] + [mul] * (len(values) - 1)))
        assert round(close) != exact and abs(close / exact - 1) < 1e-6  # float32: close, not exact
    assert F.convert(14.7, "km", "m") == pytest.approx(14700, rel=1e-6)
    assert F.convert(1.0, "mph", "km/h") == pytest.approx(1.609344, rel=1e-6)
    assert F.convert(1.0, "degC", "K") is None  # affine: outside fluxem's factor model
    assert F.same_dimensions("mi", "ft") and F.same_dimensions("mph", "m/s") and not F.same_dimensions("m", "s")
    assert F.same_dimensions("degC", "K") is None  # the learned latent kinds decide there


@pytest.fixture(scope="module")
def trained_fluxem():
    """numeric_fluxem trained 60 steps on one-operation facts with operands 0-99."""
    from metaexamples.models.numeric import build_numeric_model

    torch.set_num_threads(1)
    rng = random.Random(0)
    facts = _problems(sorted({f"{rng.randint(0, 99)} {rng.choice('+-*')} {rng.randint(0, 99)}" for _ in range(400)}))
    model = build_numeric_model("numeric_hybrid", FLUXEM, 0)
    _train(model, facts, 60, 3e-3)
    return model, facts


def test_fluxem_readout_learns_the_roles_and_round_trips(trained_fluxem, tmp_path):
    from metaexamples.models.numeric import build_numeric_model, load_numeric_model, predict

    model, facts = trained_fluxem
    fresh = numeric_metrics(facts, predict(build_numeric_model("numeric_hybrid", FLUXEM, 0), facts, 128))
    after = numeric_metrics(facts, predict(model, facts, 128))
    assert fresh["exact_match"] < 0.6 and after["exact_match"] >= 0.95
    larger = _problems([f"{a} {op} {b}" for a, op, b in zip(range(10000, 99999, 4321), "+-*" * 9, range(20000, 99999, 3907))])
    m = numeric_metrics(larger, predict(model, larger, 64))
    assert m["rel_error_median"] < 1e-5  # magnitudes never seen: close through fluxem's algebra
    probe = facts[:30] + larger
    before = predict(model, probe, 16)
    model.save_pretrained(tmp_path)
    loaded = load_numeric_model(tmp_path)
    assert loaded.config.encoder == "fluxem" and loaded.config.readout == "fluxem"
    assert predict(loaded, probe, 7) == before


def test_fluxem_units_conversions_and_table_fallback():
    """Conversions through fluxem's unit factors; temperatures (affine) through the fitted table."""
    from metaexamples.models.numeric import build_numeric_model, predict

    splits = make_numeric_splits("units", "small", 0, sizes=_sizes("units", 400, 40))
    model = build_numeric_model("numeric_hybrid", FLUXEM, 0)
    _train(model, splits["train"], 3, 3e-3, batch_size=400)
    idx = model.unit_index
    assert model.convert_value(0.0, idx["degC"], idx["K"]) == pytest.approx(273.15, rel=1e-9)
    preds = predict(model, splits["test_id"], 20)
    assert len(preds) == 40 and all(p["prediction"] is None or isinstance(p["prediction"], (bool, float))
                                    for p in preds)


# -- token-only options ----------------------------------------------------------------------
def test_reversed_answers_and_abacus_places():
    from metaexamples.models.numeric import build_numeric_model, collate
    from metaexamples.models.numeric.token_only import digit_places, read_answer, write_answer

    for text in ("1234", "-1234", "3500 m", "0.00123 km", "True", "-7"):
        assert read_answer(write_answer(text, "reversed"), "reversed") == text
    assert write_answer("-1230 m", "reversed") == "-0321 m" and write_answer("1230", "normal") == "1230"
    model = build_numeric_model("numeric_token_only", {**TINY, "answer_order": "reversed", "digit_positions": True}, 0)
    tok = model.numeric_tokenizer
    batch = collate(model, _problems(["12 * 34"]))
    labels = [i for i in batch["labels"][0].tolist() if i != -100]
    assert tok.decode(labels) == "804"  # 408 written least-significant digit first
    ids = batch["input_ids"][0].tolist()
    places = batch["digit_places"][0].tolist()
    # <bos> 1 2 _ * _ 3 4 = 8 0 4 <eos>: question digits counted from the units digit, answer from its first
    assert places == [0, 2, 1, 0, 0, 0, 2, 1, 0, 1, 2, 3, 0]
    assert places == digit_places(ids, model.is_digit(), 9)


def test_token_only_options_train_and_round_trip(tmp_path):
    """Reversed + Abacus: greedy generation keeps the digit places consistent with training
    (the predictions of a model after a few steps equal those of its saved copy) and the
    texts are turned back before scoring."""
    from metaexamples.models.numeric import build_numeric_model, load_numeric_model, predict

    arch = {**TINY, "answer_order": "reversed", "digit_positions": True, "dropout": 0.1}
    model = build_numeric_model("numeric_token_only", arch, 0)
    rng = random.Random(0)
    facts = _problems(sorted({f"{rng.randint(0, 9)} + {rng.randint(0, 9)}" for _ in range(200)}))
    _train(model, facts, 40, 3e-3)
    before = predict(model, facts, 16)
    assert sum(p["prediction"] is not None for p in before) > len(facts) // 2
    model.save_pretrained(tmp_path)
    loaded = load_numeric_model(tmp_path)
    assert loaded.config.answer_order == "reversed" and loaded.config.digit_positions
    assert predict(loaded, facts, 5) == before


def test_dropout_is_applied_in_training_only():
    from metaexamples.models.numeric import build_numeric_model, collate

    for name, arch in (("numeric_token_only", TINY), ("numeric_hybrid", FLUXEM)):
        model = build_numeric_model(name, {**arch, "dropout": 0.3}, 0)
        assert model.config.attention_dropout == 0.3 and model.input_dropout.p == 0.3
        batch = collate(model, _problems(["12 + 3", "4 * 5"]))
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "num_features", "num_mask",
                                                         "unit_features", "unit_mask", "digit_places")}

        def out(m):
            res = m(**inputs)
            return res.logits if hasattr(res, "logits") else res.last_hidden_state

        model.train()
        torch.manual_seed(0)
        a = out(model)
        assert not torch.equal(a, out(model))
        model.eval()
        assert torch.equal(out(model), out(model))
        assert build_numeric_model(name, arch, 0).input_dropout.p == 0.0


# -- dataset options -------------------------------------------------------------------------
def test_dataset_options_shape_every_split():
    spec = {"operands": [0, 99], "operations": ["+", "*"], "max_ops": 2, "ood_magnitude": [10000, 99999],
            "ood_length": [4, 5]}
    s = make_numeric_splits("arithmetic", "small", 0, sizes=_sizes("arithmetic", 300, 60), spec=spec)
    from metaexamples.tasks.numeric.data import parse_question

    for split, rows in s.items():
        for r in rows:
            q = parse_question(r["question"])
            assert set(q["ops"]) <= {"+", "*"}
            lo, hi = (10000, 99999) if split == "test_ood_magnitude" else (0, 99)
            assert all(lo <= x <= hi for x in q["numbers"]), r["question"]
            n_lo, n_hi = (4, 5) if split == "test_ood_length" else (1, 2)
            assert n_lo <= len(q["ops"]) <= n_hi
    assert {len(parse_question(r["question"])["ops"]) for r in s["test_ood_length"]} == {4, 5}
    u = make_numeric_splits("units", "small", 0, sizes=_sizes("units", 200, 40),
                            spec={"unit_types": ["length", "temperature"], "include_can_add": False})
    from metaexamples.models.numeric.text import UNIT_DIMENSION_NAME

    for rows in u.values():
        assert {r["kind"] for r in rows} == {"convert"}
        assert {UNIT_DIMENSION_NAME[r["unit"]] for r in rows} <= {"length", "temperature"}
    # the defaults are the data the task always made
    default = make_numeric_splits("arithmetic", "small", 0, sizes=_sizes("arithmetic", 20, 5))
    assert default == make_numeric_splits("arithmetic", "small", 0, sizes=_sizes("arithmetic", 20, 5),
                                          spec=resolve_spec("small", None))


@pytest.mark.parametrize("spec, key", [
    ({"operands": [9, 1]}, "task.operands: low 9 > high 1"),
    ({"ood_magnitude": [5, 2]}, "task.ood_magnitude: low 5 > high 2"),
    ({"operations": ["/"]}, "task.operations:"),
    ({"operations": []}, "task.operations:"),
    ({"unit_types": ["volume"]}, "task.unit_types:"),
    ({"max_ops": 0}, "task.max_ops:"),
    ({"ood_length": [0, 2]}, "task.ood_length:"),
    ({"include_can_add": "yes"}, "task.include_can_add:"),
])
def test_bad_dataset_options_name_the_key(spec, key):
    with pytest.raises(ConfigError) as err:
        resolve_spec("small", spec)
    assert str(err.value).startswith(key), str(err.value)


@pytest.mark.parametrize("overrides, key", [
    (["task=numeric", "task.operands=[9,1]"], "task.operands:"),
    (["task=numeric", "task.operations=[/]"], "task.operations:"),
    (["task=numeric", "task.dataset=units", "task.unit_types=[volume]"], "task.unit_types:"),
    (["task=numeric", "task.max_ops=6"], "task.ood_length:"),
    (["experiment=arithmetic_small", "train.max_steps=100"], "train.epochs: (20) and train.max_steps (100)"),
    (["task=numeric", "train.max_steps=null"], "train.max_steps: and train.epochs are both null"),
    (["task=numeric", "train.max_steps=null", "train.epochs=0"], "train.epochs: must be positive"),
    (["task=numeric", "model=numeric_hybrid", "model.arch.readout=fluxem"], "model.arch.readout: the fluxem readout"),
    (["task=numeric", "model=numeric_fluxem", "model.arch.encoder=features"], "model.arch.readout: the fluxem readout"),
    (["task=numeric", "model.arch.dropout=1.5"], "model.arch.dropout:"),
    (["task=numeric", "model=numeric_token_only", "model.arch.answer_order=backwards"], "model.arch.answer_order:"),
])
def test_bad_config_is_one_line_naming_the_key(compose_cfg, overrides, key):
    from metaexamples.config import validate

    cfg = compose_cfg(overrides)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value).startswith(key), str(err.value)
    assert "\n" not in str(err.value)


# -- presets, epochs, metrics ----------------------------------------------------------------
def test_seed_presets_compose_to_the_seed_files(compose_cfg):
    from metaexamples.config import validate

    small = compose_cfg(["experiment=arithmetic_small", "model=numeric_fluxem"])
    validate(small)
    t, a, tr = small.task, small.model.arch, small.train
    assert (t.dataset, t.sizes.train, t.sizes.test, list(t.operands), list(t.ood_magnitude), t.ood_length[1]) == \
        ("arithmetic", 1000, 200, [0, 99], [10000, 99999], 5)
    assert list(t.operations) == ["+", "-", "*"]
    assert (a.hidden_size, a.num_layers, a.num_heads, a.dropout) == (128, 2, 4, 0.1)
    assert (tr.epochs, tr.max_steps, tr.batch_size, tr.lr) == (20, None, 32, 1e-3)
    full = compose_cfg(["experiment=arithmetic_full"])
    assert (full.task.sizes.train, list(full.task.operands), list(full.task.ood_magnitude), full.task.ood_length[0]) == \
        (10000, [0, 999], [10**6, 10**9], 5)
    units = compose_cfg(["experiment=units_full", "model=numeric_fluxem"])
    validate(units)
    assert (units.task.dataset, units.task.sizes.train, units.task.sizes.test, units.task.include_can_add) == \
        ("units", 5000, 500, True)
    assert list(units.task.unit_types) == ["length", "mass", "time", "temperature", "velocity"]
    assert (units.model.arch.hidden_size, units.model.arch.num_layers, units.model.arch.num_heads) == (256, 3, 8)
    assert (units.train.epochs, units.train.batch_size, units.train.lr) == (30, 64, 5e-4)
    sweep = compose_cfg(["experiment=fluxem_small"])
    assert sweep.experiment_name == "fluxem_small" and sweep.task.operands[1] == 99


def test_epochs_set_the_number_of_steps():
    from omegaconf import OmegaConf

    from metaexamples.training.loop import total_steps

    t = OmegaConf.create({"max_steps": None, "epochs": 20, "batch_size": 32, "grad_accum": 1})
    assert total_steps(t, 1000, 1) == 625  # 20 x 1000 / 32
    assert total_steps(OmegaConf.merge(t, {"epochs": 3}), 1000, 2) == 47  # ceil(3000 / 64)
    assert total_steps(OmegaConf.create({"max_steps": 7, "epochs": None, "batch_size": 8, "grad_accum": 1}), 10, 1) == 7


def test_exact_match_is_never_filled_by_can_add():
    """A model that gets every can_add right and every conversion wrong has exact match 0."""
    problems = _problems(["3 m + 2 s", "3 m + 2 ft", "3.5 km to m", "2 h to min"])
    preds = [{"prediction": False, "prediction_text": "False", "unit": None},
             {"prediction": True, "prediction_text": "True", "unit": None},
             {"prediction": 1.0, "prediction_text": "1 m", "unit": "m"},
             {"prediction": 1.0, "prediction_text": "1 h", "unit": "h"}]  # echoes the source unit
    m = numeric_metrics(problems, preds)
    assert (m["exact_match"], m["n_exact_match"], m["bool_accuracy"]) == (0.0, 2, 1.0)
    assert m["dimensional_correctness"] == 1.0 and m["unit_match"] == 0.5  # the echo is not a unit match
    assert numeric_metrics(problems[:2], preds[:2])["exact_match"] is None
    assert not math.isnan(m["rel_error_median"])
