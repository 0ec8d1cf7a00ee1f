"""The statistics of the seed matrix (evaluation/stats.py and grammar/seed_summary.py) against
examples computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from metaexamples.errors import ConfigError
from metaexamples.evaluation.stats import bootstrap_ci, compare_arms, paired_test, sign_flip_p
from metaexamples.tasks.grammar.seed_summary import sections


def test_sign_flip_p_enumerates_all_sign_vectors():
    # d = (1, 2, 3): of the 8 sign vectors only (+,+,+) and (-,-,-) reach |sum| >= 6: p = 2/8
    assert sign_flip_p(np.array([1.0, 2.0, 3.0])) == pytest.approx(0.25)
    # d = (3, 1, -1): |sums| over the 8 vectors are 3, 5, 1, 3 and their mirrors; >= 3: 6 of 8
    assert sign_flip_p(np.array([3.0, 1.0, -1.0])) == pytest.approx(0.75)
    assert sign_flip_p(np.array([0.0, 0.0])) == 1.0


def test_bootstrap_interval_of_three_seeds_spans_min_to_max():
    # resampling 3 values: all three draws equal the smallest with probability 1/27 = 3.7% > 2.5%,
    # so the 2.5% quantile of the resampled means is the smallest value (and 97.5%: the largest)
    ci = bootstrap_ci([0.6, 0.8, 0.7])
    assert ci == pytest.approx({"mean": 0.7, "lo": 0.6, "hi": 0.8, "n": 3})


def test_paired_test_by_hand():
    # b - a = (0.1, 0.2, 0.0): mean 0.1; |sum| of the sign flips: 0.3 (x4), 0.1 (x4) -> p = 4/8
    t = paired_test([0.5, 0.6, 0.7], [0.6, 0.8, 0.7])
    assert t["diff"] == pytest.approx(0.1) and t["p"] == pytest.approx(0.5) and t["n"] == 3
    assert t["lo"] == pytest.approx(0.0) and t["hi"] == pytest.approx(0.2)


def test_compare_arms_pairs_on_shared_units_only():
    units = {"examples": {0: {"m": 0.5}, 1: {"m": 0.6}, 2: {"m": 0.7}},
             "meta": {0: {"m": 0.6}, 1: {"m": 0.8}, 2: {"m": 0.7}, 3: {"m": 0.1}}}
    out = compare_arms(units, "examples", ["m"])
    meta = out["meta"]
    assert meta["units"] == 4 and meta["paired_units"] == 3
    assert meta["m"]["mean"] == pytest.approx(0.55)  # its own mean over all 4 seeds
    assert meta["m"]["diff"] == pytest.approx(0.1) and meta["m"]["p"] == pytest.approx(0.5)
    assert meta["m"]["ratio"] == pytest.approx(0.7 / 0.6)  # over the 3 paired seeds
    assert out["examples"]["m"]["diff"] == pytest.approx(0.0) and out["examples"]["m"]["p"] == 1.0


def row(condition, seed, auroc, validity, grammar="g2"):
    return {"grammar": grammar, "condition": condition, "seed": seed, "job": f"{grammar}-{condition}-{seed}",
            "ppl": {"auroc": auroc, "auroc_hard": auroc, "auroc_random": auroc},
            "gen": {"validity_rate": validity, "novel_valid": int(100 * validity)}}


def test_sections_findings_from_the_numbers():
    rows = [row("examples", s, a, v) for s, a, v in ((0, 0.70, 0.5), (1, 0.72, 0.4), (2, 0.71, 0.6))]
    rows += [row("meta_5pct", s, a, v) for s, a, v in ((0, 0.80, 0.5), (1, 0.78, 0.45), (2, 0.83, 0.5))]
    means, paired, findings = sections(rows)
    assert means.rows[0][:3] == ["g2", "examples", "0,1,2"]
    assert means.rows[1][3] == "0.8033 [0.7800, 0.8300]"  # mean of .80 .78 .83; min and max
    # AUROC differences (0.10, 0.06, 0.12): all positive, mean 0.0933, p = 2/8
    assert paired.rows == [["g2", "meta_5pct", "3", *[paired.rows[0][3]] * 3, paired.rows[0][6], paired.rows[0][7]]]
    assert paired.rows[0][3] == "+0.0933 [+0.0600, +0.1200], p=0.25"
    text = "\n".join(findings.text)
    assert "Best cell by discrimination (AUROC): g2 meta_5pct, 0.8033 [0.7800, 0.8300] (3 seeds)" in text
    assert "worst: g2 examples, 0.7100 [0.7000, 0.7200]" in text
    assert "g2 meta_5pct vs examples: AUROC higher by +0.0933 [+0.0600, +0.1200], p=0.25 (3 paired seeds)." in text
    # validity differences (0, +0.05, -0.1) straddle 0: no finding for it
    assert "Validity higher" not in text and "Validity lower" not in text
    assert "smallest sign-flip p is 0.25" in text


def test_one_seed_cannot_be_paired():
    rows = [row("examples", 0, 0.7, 0.5), row("meta_5pct", 0, 0.8, 0.6)]
    _, paired, findings = sections(rows)
    assert paired.rows == [["g2", "meta_5pct", "1", *["cannot pair"] * 5]]
    assert any("g2 meta_5pct: cannot pair with examples: 1 shared seed(s) [0]; a paired comparison needs >= 2"
               in line for line in findings.text)
    assert not any("higher" in line or "lower" in line for line in findings.text)


def test_a_paired_preset_that_cannot_pair_is_refused():
    """Jobs of a preset that pairs over seeds (min_seeds=2, experiment=seed_matrix) with one
    shared seed: one line naming `seed`, not a report of empty comparisons."""
    rows = [{**row("examples", 0, 0.7, 0.5), "min_seeds": 2}, {**row("meta_5pct", 0, 0.8, 0.6), "min_seeds": 2}]
    with pytest.raises(ConfigError, match=r"^seed: these jobs pair conditions over seeds \(min_seeds=2\) and g2 "
                                          r"meta_5pct: cannot pair with examples: 1 shared seed") as err:
        sections(rows)
    assert "\n" not in str(err.value) and "--allow-unpaired" in str(err.value)
    # two shared seeds pair (a third job missing is fine)
    rows += [{**row(c, 1, 0.7, 0.5), "min_seeds": 2} for c in ("examples", "meta_5pct")]
    rows.append({**row("examples", 2, 0.7, 0.5), "min_seeds": 2})
    _, paired, _ = sections(rows)
    assert paired.rows[0][:3] == ["g2", "meta_5pct", "2"]
