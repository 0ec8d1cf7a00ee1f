"""Config composition (Hydra compose API): every group option composes and validates."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from metaexamples.config import validate
from metaexamples.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ["grammar", "condition", "corpus", "model", "train", "decoding", "logger", "experiment"]
NEEDS_VALUE = {("model", "local"): ["model.path=/some/checkpoint"], ("corpus", "text_files"): ["corpus.glob=*.txt"]}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_and_validates(compose_cfg, group, option):
    cfg = compose_cfg([f"{group}={option}", *NEEDS_VALUE.get((group, option), [])])
    validate(cfg)
    assert OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    if group in ("grammar", "condition", "decoding", "model", "corpus"):
        assert cfg[group].name == option


def test_defaults_are_the_embedded_offline_default(compose_cfg):
    cfg = compose_cfg()
    assert (cfg.grammar.name, cfg.condition.name, cfg.model.name, cfg.corpus.name) == ("g1", "meta_5pct", "tiny", "builtin")
    assert cfg.logger.backend == "wandb" and cfg.logger.mode == "offline"
    assert list(cfg.stages) == ["data", "train", "eval_ppl", "eval_gen"]


def test_experiment_olmo_1b_sets_the_reference_settings(compose_cfg):
    cfg = compose_cfg(["experiment=olmo_1b"])
    assert cfg.model.hf_id == "allenai/OLMo-1B-hf"
    assert (cfg.train.max_steps, cfg.train.eval_steps, cfg.eval.n_samples) == (2000, 250, 5000)
    assert cfg.data.synthetic_mix_ratio == 0.1


@pytest.mark.parametrize("override,key", [
    ("grammar.min_len=20", "grammar.min_len"),
    ("data.synthetic_mix_ratio=1.5", "data.synthetic_mix_ratio"),
    ("data.n_test=0", "data.n_test"),
    ("decoding.top_p=0", "decoding.top_p"),
    ("decoding.temperature=-1", "decoding.temperature"),
    ("train.max_steps=-3", "train.max_steps"),
    ("stages=[data,bogus]", "stages"),
    ("condition.meta_fraction=2", "condition.meta_fraction"),
])
def test_bad_values_fail_with_one_line_naming_the_key(compose_cfg, override, key):
    cfg = compose_cfg([override])
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    message = str(info.value)
    assert message.startswith(key) and "\n" not in message


def test_wrong_type_is_rejected_by_the_schema(compose_cfg):
    from omegaconf.errors import ValidationError
    from hydra.errors import ConfigCompositionException

    with pytest.raises((ValidationError, ConfigCompositionException)):
        compose_cfg(["train.max_steps=abc"])
