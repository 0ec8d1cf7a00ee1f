"""The content-keyed data cache every task uses: one folder per (task data config, format),
built atomically in a temporary sibling and reused while it is intact, so sweep jobs with the
same data config share it and a crash never leaves a half-written folder.

Intact means: its manifest.json parses and every file the manifest lists has the size and the
sha256 recorded there (sizes first; each file is hashed once per process). A folder that is not
intact (a truncated, garbled or deleted file) is rebuilt by the data stage, and named, with the
stage to run, by a later stage alone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from metaexamples.errors import ConfigError
from metaexamples.io import atomic_dir, file_sha256, read_jsonl, stable_hash, write_json, write_jsonl

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_HASHED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: once per process


def keyed_folder(cache_root: Path, prefix: str, key: dict) -> Path:
    """cache_root/data/<prefix>-<hash of key>."""
    return Path(cache_root) / "data" / f"{prefix}-{stable_hash(key)}"


def build_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """Reuse `folder` if it is intact; else (missing, or damaged: rebuilt) `build(tmp)` writes it
    (manifest last, with `file_hashes` and `file_sizes` of what it wrote)."""
    folder = Path(folder)
    if folder.exists():
        problem = check_folder(folder)
        if problem is None:
            log.info("data: reusing %s", folder)
            return folder
        log.warning("data: %s; rebuilding %s", problem, folder)
        discard(folder)
    with atomic_dir(folder) as tmp:
        build(tmp)
    log.info("data: wrote %s", folder)
    return folder


def build_jsonl_splits(folder: Path, data_format: int, key: dict,
                       make_splits: Callable[[], dict[str, list[dict]]]) -> Path:
    """`build_once` for tasks whose data is a few row lists: one `<split>.jsonl` per split of
    `make_splits()` and a manifest with the format, the config key and the row counts."""
    def build(tmp: Path) -> None:
        counts = {name: write_jsonl(tmp / f"{name}.jsonl", rows) for name, rows in make_splits().items()}
        write_json(tmp / MANIFEST, {"format": data_format, "config": key, "counts": counts,
                                    "files": file_hashes(tmp)})

    return build_once(folder, build)


def read_jsonl_split(folder: Path, split: str) -> list[dict]:
    """The rows of one split written by `build_jsonl_splits`; a missing file is one clear error."""
    path = Path(folder) / f"{split}.jsonl"
    if not path.exists():
        raise ConfigError(f"{path}: missing; run the data stage (stages=[data])")
    return read_jsonl(path)


def require_intact(folder: Path, what: str) -> Path:
    """`folder` if intact; else one clear error naming `what` (e.g. "task=numeric dataset=units")
    and the stage that builds it."""
    folder = Path(folder)
    problem = check_folder(folder) if folder.exists() else f"{folder}: missing"
    if problem is not None:
        raise ConfigError(f"no intact data for {what} ({problem}); run the data stage first (add `data` to stages)")
    return folder


def discard(folder: Path) -> None:
    """Move a damaged cache folder out of the way and delete it (another process may be reading
    or rebuilding it at the same time: renaming first keeps the name free for the rebuild)."""
    folder = Path(folder)
    aside = folder.with_name(f".{folder.name}.broken-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.rename(folder, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file in the folder (for the manifest)."""
    return {p.name: cached_sha256(p, p.stat()) for p in sorted(Path(folder).iterdir()) if p.is_file()}


def file_sizes(folder: Path) -> dict[str, int]:
    """Size in bytes of every file in the folder (for the manifest: the cheap first check)."""
    return {p.name: p.stat().st_size for p in sorted(Path(folder).iterdir()) if p.is_file()}


def cached_sha256(path: Path, st: os.stat_result) -> str:
    """sha256 of the file, computed once per process per (path, size, mtime)."""
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = file_sha256(path)
    return _HASHED[key]


def read_manifest(folder: Path, name: str = MANIFEST) -> dict:
    """The folder's manifest; ValueError (one line naming it) if it is missing or unreadable."""
    path = Path(folder) / name
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing") from None
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{path}: unreadable (truncated or garbled)") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: unreadable (not a JSON object)")
    return manifest


def check_folder(folder: Path, name: str = MANIFEST) -> str | None:
    """None if the folder is intact, else what is wrong, in one line naming the file."""
    folder = Path(folder)
    try:
        manifest = read_manifest(folder, name)
    except ValueError as exc:
        return str(exc)
    files, sizes = manifest.get("files"), manifest.get("sizes") or {}
    if not isinstance(files, dict) or not files:
        return f"{folder / name}: lists no files to check"
    for file, digest in files.items():
        path = folder / file
        try:
            st = path.stat()
        except FileNotFoundError:
            return f"{path}: missing"
        if file in sizes and st.st_size != sizes[file]:
            return f"{path}: {st.st_size} bytes where {name} says {sizes[file]} (truncated or changed)"
        if cached_sha256(path, st) != digest:
            return f"{path}: its sha256 differs from {name}'s (garbled or changed)"
    return None
