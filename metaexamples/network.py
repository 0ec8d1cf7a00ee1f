"""Fast reachability checks, so that offline runs fail (or fall back) at once instead of
retrying for minutes inside a library."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse


def reachable(url: str, timeout: float = 3.0) -> bool:
    """True if a TCP connection to the URL's host and port opens within `timeout` seconds."""
    parsed = urlparse(url if "://" in url else f"https://{url}")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def hub_reachable(timeout: float = 3.0) -> bool:
    """The Hugging Face hub answers, and no *_OFFLINE variable forbids using it."""
    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in flags):
        return False
    return reachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"), timeout)
