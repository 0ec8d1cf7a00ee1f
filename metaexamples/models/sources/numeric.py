"""source: numeric: task=numeric's own models (metaexamples/models/numeric): built from
model.arch with a seed, or loaded from a trained folder (model.path), with their character
tokenizer."""

from __future__ import annotations

from pathlib import Path

from metaexamples.errors import ConfigError
from metaexamples.models.hf_files import first_line
from metaexamples.models.sources import ModelSource

# metaexamples.models.numeric (and any submodule of it, which runs its __init__) is imported in
# the functions below, not here: the package loads transformers' model classes (about 5 s),
# which only a numeric model needs, and every job's validation imports this module (the model
# source registry), so `metaexamples` would start that much slower for every task.


class Numeric(ModelSource):
    name = "numeric"
    kind = "numeric"

    @classmethod
    def check(cls, model_cfg) -> None:
        if not model_cfg.get("path"):
            numeric_arch(model_cfg)

    @classmethod
    def load_tokenizer(cls, model_cfg, cache_root: Path):
        return numeric_tokenizer(model_cfg)

    @classmethod
    def load_model(cls, model_cfg, tokenizer, cache_root: Path, seed: int):
        return numeric_model(model_cfg, seed)


def numeric_arch(model_cfg) -> tuple[str, dict]:
    """(model type, checked arch) of a numeric model: model.arch.model_type (numeric_token_only |
    numeric_hybrid; default: model.name) and the rest of model.arch (build_numeric_model's keys)."""
    from omegaconf import OmegaConf

    from metaexamples.models.numeric import MODEL_NAMES, _check_arch

    arch = OmegaConf.to_container(model_cfg.arch, resolve=True) if OmegaConf.is_config(model_cfg.arch) \
        else dict(model_cfg.get("arch") or {})
    kind = arch.pop("model_type", model_cfg.name)
    if kind not in MODEL_NAMES:
        raise ConfigError(f"model.arch.model_type: unknown numeric model {kind!r}; available: {', '.join(MODEL_NAMES)}")
    return kind, _check_arch(kind, arch)


def numeric_tokenizer(model_cfg):
    """The numeric models' character tokenizer: the checkpoint's (model.path), else the default."""
    from metaexamples.models.numeric import CharTokenizer
    from metaexamples.models.numeric.tokenizer import TOKENIZER_FILE

    if not model_cfg.get("path"):
        return CharTokenizer()
    folder = Path(model_cfg.path).expanduser()
    if not (folder / TOKENIZER_FILE).is_file():
        raise ConfigError(f"model.path: {folder} holds no {TOKENIZER_FILE} (not a numeric model folder; "
                          "train one with task=numeric, or drop model.path)")
    try:
        return CharTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"model.path: {folder / TOKENIZER_FILE} cannot be read ({type(exc).__name__}: "
                          f"{first_line(exc)})") from None


def numeric_model(model_cfg, seed: int = 0):
    """A numeric model: from model.path (a trained one), else built from model.arch with `seed`."""
    from metaexamples.models.numeric import build_numeric_model, load_numeric_model

    if model_cfg.get("path"):
        folder = Path(model_cfg.path).expanduser()
        if not (folder / "config.json").is_file():
            raise ConfigError(f"model.path: {folder} is not a model folder (no config.json)")
        try:
            return load_numeric_model(folder)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - truncated weights raise safetensors', torch's or json's own errors
            raise ConfigError(f"model.path: {folder} has no loadable numeric model ({type(exc).__name__}: "
                              f"{first_line(exc)})") from None
    kind, arch = numeric_arch(model_cfg)
    return build_numeric_model(kind, arch, seed)
