"""Issue #25: a sweep of a preset that pairs runs over seeds (experiment=seed_matrix, its
`min_seeds: 2`) with fewer distinct seeds is refused before any job runs: one line naming
`seed`, exit 2, no sweep folder (through `cli.main`, as a user meets it)."""

from __future__ import annotations

import pytest

from test_bad_input import LAST_OUT, assert_one_line, run_main

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("seeds", ["seed=0", "seed=0,0"])
def test_a_seed_matrix_sweep_of_one_seed_is_refused(capsys, tmp_path, seeds):
    code, errors, err = run_main(["-m", "experiment=seed_matrix", seeds, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                                 capsys, tmp_path / "cache")
    assert_one_line(code, errors, err, "error: seed: experiment=seed_matrix pairs runs over seeds and needs >= 2 "
                    "distinct seeds, this sweep has 1 (seed=0); sweep seed=0,1,2 (or more); no job ran")
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "cache").exists()
    assert "report:" not in LAST_OUT[0]


def test_two_seeds_pass_the_sweep_check(capsys, tmp_path):
    """Two seeds get past the check: the jobs start (and here each refuses its bad stage)."""
    code, errors, err = run_main(["-m", "experiment=seed_matrix", "seed=0,1", "grammar=g1", "condition=examples",
                                  "stages=[bogus]", f"hydra.sweep.dir={tmp_path / 'sweep'}"], capsys, tmp_path / "cache")
    assert_one_line(code, errors, err, "error: stages: unknown stage 'bogus'")
    assert (tmp_path / "sweep" / "0_g1_examples" / ".hydra").is_dir()


def test_a_single_run_of_the_preset_is_not_a_sweep(compose_cfg, tmp_path):
    """min_seeds is about sweeps: one run of one cell validates (and min_seeds itself is checked)."""
    from metaexamples.config import validate
    from metaexamples.errors import ConfigError

    validate(compose_cfg(["experiment=seed_matrix", "seed=0"], cache_dir=tmp_path))
    with pytest.raises(ConfigError, match=r"^min_seeds: must be an integer >= 1, got 0"):
        validate(compose_cfg(["min_seeds=0"], cache_dir=tmp_path))
