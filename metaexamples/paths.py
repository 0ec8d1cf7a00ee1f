"""Where shared, content-keyed artifacts live (generated data, converted models)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(cfg_paths=None) -> Path:
    """paths.cache_dir, else $METAEXAMPLES_CACHE, else <cwd>/.cache/metaexamples."""
    configured = getattr(cfg_paths, "cache_dir", None) if cfg_paths is not None else None
    root = configured or os.environ.get("METAEXAMPLES_CACHE") or Path.cwd() / ".cache" / "metaexamples"
    return Path(root).expanduser().resolve()
