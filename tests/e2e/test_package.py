"""The installed package, not the source tree: a wheel built from this checkout (offline, with
this environment's setuptools), installed into a fresh virtual environment, runs from another
folder on its shipped configs and corpus, and takes a user's own YAML (a model, a grammar) from
outside the package through Hydra's search path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
USER_MODEL = """\
# A user's own model preset, outside the package: tiny, twice as wide.
defaults:
  - tiny
  - _self_
name: tiny_wide
arch:
  hidden_size: 128
"""
USER_GRAMMAR = """\
# A user's own grammar preset: g2 (its language) with longer strings, under its own name.
defaults:
  - g2
  - _self_
name: g2_long
max_len: 24
"""


def run(args: list, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the fresh venv, the wheel)."""
    root = tmp_path_factory.mktemp("package")
    src = root / "src"  # a copy: building in the shared checkout would leave build/ and egg-info there
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "metaexamples", src / "metaexamples", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", root / "dist", src])
    [wheel] = (root / "dist").glob("metaexamples-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # The dependencies: this environment's site-packages, after the venv's own. A plain path in a
    # .pth file: the .pth files in there (this checkout's editable install) are not run.
    Path(purelib, "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    return venv, wheel


def test_the_wheel_ships_every_config(installed):
    import zipfile

    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "metaexamples" / "conf").rglob("*.yaml")}
    assert shipped and shipped <= names


def test_installed_package_runs_from_another_folder_with_a_users_own_yaml(installed, tmp_path):
    venv, _ = installed
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "myconf" / "model").mkdir(parents=True)
    (elsewhere / "myconf" / "grammar").mkdir()
    (elsewhere / "myconf" / "model" / "tiny_wide.yaml").write_text(USER_MODEL)
    (elsewhere / "myconf" / "grammar" / "g2_long.yaml").write_text(USER_GRAMMAR)
    where = run([venv / "bin" / "python", "-c", "import metaexamples, sys; print(metaexamples.__file__)"],
                cwd=elsewhere).stdout
    assert where.startswith(str(venv)), where  # the installed copy, not this checkout

    env = {**os.environ, "METAEXAMPLES_CACHE": str(tmp_path / "cache"), "WANDB_SILENT": "true"}
    env.pop("PYTHONPATH", None)
    run_dir = elsewhere / "run"
    run([venv / "bin" / "metaexamples", "experiment=smoke", "stages=[data]", "logger=none", "model=tiny_wide",
         "grammar=g2_long", f"hydra.searchpath=[file://{elsewhere / 'myconf'}]", f"hydra.run.dir={run_dir}"],
        cwd=elsewhere, env=env)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["model"] == "tiny_wide"
    assert results["grammar"] == "g2_long"  # the preset's name, not its base's
    manifest = json.loads((Path(results["data"]["folder"]) / "manifest.json").read_text())
    assert manifest["config"]["grammar"]["max_len"] == 24 and manifest["canonical"]  # the builtin corpus
    hydra_cfg = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "hidden_size: 128" in hydra_cfg
    assert not (elsewhere / "outputs").exists()  # hydra.run.dir was honoured
