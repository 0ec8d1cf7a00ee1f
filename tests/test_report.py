"""The sweep report over job folders: tables in the reference report's column order, failed and
missing jobs listed, plots written."""

from __future__ import annotations

import json
from pathlib import Path

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
