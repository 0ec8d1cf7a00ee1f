"""Config composition (Hydra compose API): every group option composes and validates."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from metaexamples.config import validate

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ["grammar", "condition", "corpus", "model", "train", "decoding", "logger", "experiment"]
NEEDS_VALUE = {("model", "local"): ["model.path=/some/checkpoint"],
               ("corpus", "text_files"): [f"corpus.glob={CONF.parent / 'docs' / '*.md'}"]}  # files that exist
NEEDS_VALUE.update({("model", p.stem): ["task=numeric"] for p in (CONF / "model").glob("numeric_*.yaml")})  # numeric models


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
    assert (cfg.train.max_steps, cfg.train.eval_steps, cfg.task.n_samples) == (2000, 250, 5000)
    assert cfg.data.synthetic_mix_ratio == 0.1


def test_experiment_reference_cpu_is_smollm2_at_the_reference_mix(compose_cfg):
    """The CPU preset of the reference comparison: SmolLM2 at the reference's 10% mix, a token
    budget that fits 30 minutes per grammar on 2 cores (fp32 SmolLM2 trains at ~55-80 tokens/s)."""
    cfg = compose_cfg(["experiment=reference_cpu", "grammar=g2"])
    validate(cfg)
    assert (cfg.model.name, cfg.data.synthetic_mix_ratio, cfg.experiment_name) == ("smollm2_135m", 0.1, "reference_cpu")
    assert cfg.train.max_steps * cfg.train.batch_size * cfg.data.block_size <= 70_000  # ~80 tokens/s on 2 cores


# Bad values (one line naming the key, exit 2): the table in tests/e2e/test_bad_input.py.


def test_wrong_type_is_rejected_by_the_schema(compose_cfg):
    from omegaconf.errors import ValidationError
    from hydra.errors import ConfigCompositionException

    with pytest.raises((ValidationError, ConfigCompositionException)):
        compose_cfg(["train.max_steps=abc"])
