"""The content-keyed data cache every task uses: one folder per (task data config, format),
built atomically in a temporary sibling and reused while its manifest is there, so sweep jobs
with the same data config share it and a crash never leaves a half-written folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from metaexamples.io import atomic_dir, file_sha256, stable_hash

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def keyed_folder(cache_root: Path, prefix: str, key: dict) -> Path:
    """cache_root/data/<prefix>-<hash of key>."""
    return Path(cache_root) / "data" / f"{prefix}-{stable_hash(key)}"


def build_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """Reuse `folder` if its manifest exists; else `build(tmp)` writes it (manifest last)."""
    folder = Path(folder)
    if (folder / MANIFEST).exists():
        log.info("data: reusing %s", folder)
        return folder
    with atomic_dir(folder) as tmp:
        build(tmp)
    log.info("data: wrote %s", folder)
    return folder


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file in the folder (for the manifest)."""
    return {p.name: file_sha256(p) for p in sorted(Path(folder).iterdir()) if p.is_file()}
