"""The sweep report over job folders: tables in the reference report's column order, failed and
missing jobs listed, plots written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metaexamples.report import build_report, main
from metaexamples.tasks.grammar import GEN_COLUMNS, PPL_COLUMNS


def make_job(sweep: Path, name: str, results: dict | None) -> None:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text("{}\n")
    if results is not None:
        (job / "results.json").write_text(json.dumps(results))


def completed(grammar: str, condition: str, auroc: float, rate: float) -> dict:
    return {"status": "completed", "run": f"{grammar}-{condition}-tiny", "grammar": grammar,
            "condition": condition, "model": "tiny", "decoding": "sample", "seed": 0,
            "ppl": {"valid_ppl": 3.0, "invalid_ppl": 9.0, "gap": 6.0, "ratio": 3.0, "auroc": auroc,
                    "aupr": 0.9, "best_f1": 0.8, "balanced_acc": 0.75},
            "gen": {"samples": 100, "valid": int(rate * 100), "invalid": 100 - int(rate * 100),
                    "validity_rate": rate, "failures": {"no_close": 1, "foreign_token": 2, "length": 3, "rule": 4}}}


def test_report_tables_failures_and_plots(tmp_path, capsys):
    make_job(tmp_path, "0_g1_examples", completed("g1", "examples", 0.99, 0.5))
    make_job(tmp_path, "1_g2_meta_5pct", completed("g2", "meta_5pct", 0.91, 0.0))
    make_job(tmp_path, "2_g3_examples", {"status": "failed", "error": "ConfigError: grammar.min_len: bad"})
    make_job(tmp_path, "3_g3_meta_5pct", None)

    report = build_report(tmp_path)

    assert [r[0] for r in report["ppl_rows"]] == ["g1-examples-tiny", "g2-meta_5pct-tiny"]
    assert report["ppl_rows"][1][PPL_COLUMNS.index(("AUROC", "ppl.auroc"))] == "0.9100"
    assert report["gen_rows"][0][[h for h, _ in GEN_COLUMNS].index("Rule")] == "4"
    assert {(p["job"], p["status"]) for p in report["problems"]} == {("2_g3_examples", "failed"), ("3_g3_meta_5pct", "missing")}
    md = (tmp_path / "report.md").read_text()
    assert "| Run | Grammar | Valid PPL | Invalid PPL | Gap | Ratio | AUROC | AUPR | Best F1 | Balanced Acc |" in md
    assert "| Run | Grammar | Samples | Valid | Invalid | Validity Rate |" in md
    assert "grammar.min_len: bad" in md
    for plot in ("auroc_heatmap.png", "validity_by_decoding.png"):
        assert (tmp_path / plot).read_bytes()[:4] == b"\x89PNG"

    main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "Perplexity and Discrimination" in out and "g2-meta_5pct-tiny" in out


def test_jobs_are_listed_in_hydra_order_not_string_order(tmp_path):
    """Job 2 comes before job 10 (a string sort puts 10_ between 1_ and 2_)."""
    for num in (0, 1, 2, 10, 11):
        make_job(tmp_path, f"{num}_g1_examples", completed("g1", "examples", 0.5 + num / 100, 0.5))

    report = build_report(tmp_path)

    aurocs = [row[PPL_COLUMNS.index(("AUROC", "ppl.auroc"))] for row in report["ppl_rows"]]
    assert aurocs == ["0.5000", "0.5100", "0.5200", "0.6000", "0.6100"]


def seeded(grammar: str, condition: str, seed: int, auroc: float, rate: float) -> dict:
    out = completed(grammar, condition, auroc, rate)
    out.update(seed=seed, run=f"{grammar}-{condition}-tiny")
    out["ppl"].update(auroc_hard=auroc - 0.05, auroc_random=auroc + 0.01,
                      by_length={"4-16": {"auroc": auroc}, "17-32": {"auroc": auroc - 0.2}})
    out["gen"].update(novel_valid=10, by_length={"4-16": {"validity_rate": rate}, "17-32": {"validity_rate": 0.0}})
    return out


@pytest.mark.slow
def test_seed_matrix_sections_length_plot_and_wandb_table(tmp_path):
    import os
    import subprocess
    import sys

    import yaml

    from wandb_records import read_run

    for i, (c, s, a) in enumerate([(c, s, a + 0.01 * s) for c, a in (("examples", 0.7), ("meta_5pct", 0.8))
                                   for s in (0, 1, 2)]):
        make_job(tmp_path, f"{i}_g2_{c}", seeded("g2", c, s, a, 0.5))
        (tmp_path / f"{i}_g2_{c}" / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
            {"logger": {"backend": "wandb", "mode": "offline", "project": "metaexamples", "entity": None},
             "experiment_name": "seed_matrix"}))
    report = build_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Conditions over seeds (mean [95% bootstrap interval over seeds])" in md
    assert "| g2 | meta_5pct | 3 | +0.1000 [+0.1000, +0.1000], p=0.25 |" in md
    assert "## Findings" in md and "g2 meta_5pct vs examples: AUROC higher by +0.1000" in md
    assert "Length (g2, AUROC, mean over conditions and seeds): 0.7600 at 4-16 (trained), 0.5600 at 17-32." in md
    assert (tmp_path / "length_generalization.png").read_bytes()[:4] == b"\x89PNG"
    assert "length_generalization.png" in report["plots"]

    # the CLI in its own process, as users run it (W&B's files are complete once it exits)
    proc = subprocess.run([sys.executable, "-m", "metaexamples.report", str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "WANDB_SILENT": "true"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Against examples" in proc.stdout and "wandb: summary tables logged" in proc.stdout
    [run_dir] = (tmp_path / "wandb").glob("offline-run-*")
    logged = read_run(run_dir)
    assert logged["run"].get("job_type") == "report" and logged["run"]["group"] == "seed_matrix", logged["run"]
    keys = {k.rsplit("/", 1)[0] for h in logged["history"] for k in h if k.endswith("/path")}
    assert {"report/conditions_over_seeds", "report/against_examples", "report/findings_text"} <= keys
    [path] = [h["report/against_examples/path"] for h in logged["history"] if "report/against_examples/path" in h]
    data = json.loads((run_dir / "files" / path).read_text())
    assert data["data"][0][:3] == ["g2", "meta_5pct", "3"]


def test_a_seed_matrix_sweep_that_cannot_pair_is_one_line_and_writes_nothing(tmp_path, capsys):
    """experiment=seed_matrix jobs (min_seeds: 2 in their config) whose meta_5pct shares one seed
    with examples (seeds 1 and 2 failed): exit 2, one line naming `seed`, no report.md and no
    plot; --allow-unpaired writes the report with the cell marked `cannot pair`."""
    import yaml

    jobs = [("examples", 0), ("meta_5pct", 0), ("examples", 1)]
    for i, (c, s) in enumerate(jobs):
        make_job(tmp_path, f"{i}_g2_{c}", seeded("g2", c, s, 0.8, 0.5))
        (tmp_path / f"{i}_g2_{c}" / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
            {"logger": {"backend": "none"}, "experiment_name": "seed_matrix", "min_seeds": 2}))
    make_job(tmp_path, "3_g2_meta_5pct", {"status": "failed", "error": "RuntimeError: out of memory"})
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path), "--no-wandb"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    [line] = err.strip().splitlines()
    assert line.startswith("error: seed: these jobs pair conditions over seeds (min_seeds=2) and g2 meta_5pct: "
                           "cannot pair with examples: 1 shared seed(s) [0]"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0_g2_examples", "1_g2_meta_5pct", "2_g2_examples",
                                                          "3_g2_meta_5pct"]  # nothing written
    main([str(tmp_path), "--no-wandb", "--allow-unpaired"])
    md = (tmp_path / "report.md").read_text()
    assert "| g2 | meta_5pct | 1 | cannot pair |" in md and "3_g2_meta_5pct" in md
