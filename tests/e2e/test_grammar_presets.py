"""Issue #22: a grammar preset runs under its own name. `grammar.language` picks the recognizer
class, `grammar.name` labels the run (run name, results.json `grammar`, the data cache folder,
report rows); a preset in the user's own config folder that extends a built-in one and keeps its
`name` is refused in one line (through `cli.main`, as a user meets it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_bad_input import SMALL, assert_one_line, run_main

pytestmark = pytest.mark.e2e


def user_conf(tmp_path: Path, name: str | None) -> Path:
    """The user's own config folder: grammar/g2_long.yaml extends g2 with longer strings."""
    folder = tmp_path / "my_conf"
    (folder / "grammar").mkdir(parents=True)
    lines = ["defaults: [g2]", *([f"name: {name}"] if name else []), "max_len: 32"]
    (folder / "grammar" / "g2_long.yaml").write_text("\n".join(lines) + "\n")
    return folder


def data_run(capsys, tmp_path: Path, cache: Path, run: str, *args: str) -> dict:
    code, errors, err = run_main([*args, *SMALL, "stages=[data]", f"hydra.run.dir={tmp_path / run}"], capsys, cache)
    assert code == 0, err[-2000:]
    return json.loads((tmp_path / run / "results.json").read_text())


@pytest.mark.parametrize("how", ["config-dir", "searchpath"])
def test_a_preset_that_keeps_its_base_name_is_refused(capsys, tmp_path, how):
    conf = user_conf(tmp_path, name=None)
    where = [f"--config-dir={conf}"] if how == "config-dir" else [f"hydra.searchpath=[file://{conf}]"]
    code, errors, err = run_main([*where, "grammar=g2_long", f"hydra.run.dir={tmp_path / 'run'}"], capsys,
                                 tmp_path / "cache")
    assert_one_line(code, errors, err, "error: grammar.name: grammar=g2_long is named 'g2'",
                    "add `name: g2_long` to g2_long.yaml")
    assert not (tmp_path / "cache").exists()  # refused before the data stage (and the cache folder)


def test_a_preset_runs_caches_and_reports_under_its_own_name(capsys, tmp_path):
    conf, cache = user_conf(tmp_path, name="g2_long"), tmp_path / "cache"
    base = data_run(capsys, tmp_path, cache, "g2", "grammar=g2")
    preset = data_run(capsys, tmp_path, cache, "g2_long", f"--config-dir={conf}", "grammar=g2_long")
    # a command-line label is the user's own choice: accepted
    renamed = data_run(capsys, tmp_path, cache, "cli", "grammar=g2", "grammar.max_len=32", "grammar.name=g2_cli")
    assert (base["run"], base["grammar"]) == ("g2-meta_5pct-tiny", "g2")  # built-in: as before
    assert (preset["run"], preset["grammar"]) == ("g2_long-meta_5pct-tiny", "g2_long")
    assert (renamed["run"], renamed["grammar"]) == ("g2_cli-meta_5pct-tiny", "g2_cli")
    folders = sorted(p.name.rsplit("-", 1)[0] for p in (cache / "data").iterdir())
    assert folders == ["g2-meta_5pct", "g2_cli-meta_5pct", "g2_long-meta_5pct"]
    # the preset's data follows g2's rule at its own lengths
    manifest = json.loads(next((cache / "data").glob("g2_long-*/manifest.json")).read_text())
    assert manifest["config"]["grammar"]["language"] == "g2" and manifest["config"]["grammar"]["max_len"] == 32
    rows = [json.loads(line) for line in next((cache / "data").glob("g2_long-*/test_valid.jsonl")).open()]
    assert max(len(r["symbols"]) for r in rows) > 16
    assert all(all(r["symbols"].count(s) % 2 == 0 for s in set(r["symbols"])) for r in rows)


def test_an_unknown_language_is_one_line(capsys, tmp_path):
    code, errors, err = run_main(["grammar.language=g9", f"hydra.run.dir={tmp_path / 'run'}"], capsys,
                                 tmp_path / "cache")
    assert_one_line(code, errors, err, "error: grammar.language: unknown language 'g9'; available: anbncn, copy")
