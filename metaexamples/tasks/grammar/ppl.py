"""stage=eval_ppl: perplexity discrimination between valid and invalid test strings.

Each string is scored as `<tag>` + string + `</tag>`: the string's symbol tokens and the
closing tag's tokens are scored, the opening tag is context (see scoring.py). Writes, under
run_dir/eval_ppl/: scores.jsonl (one row per test string, `split` "test", then one per eval
string, `split` "eval": its data row + nll, n_tokens, ppl, nll_per_symbol, score; the eval
rows make the balanced-accuracy threshold reproducible from the file; then one per test_long
string, `split` "test_long", with grammar.eval_lengths), metrics.json (the returned `ppl`
section; `by_length` per length bucket with eval_lengths), roc.png, pr.png.
"""

from __future__ import annotations

import logging
from pathlib import Path

from metaexamples.evaluation import plots
from metaexamples.evaluation.metrics import choose_threshold, per_symbol_score_of, score_of
from metaexamples.evaluation.scoring import score_strings
from metaexamples.io import write_json, write_jsonl
from metaexamples.tasks.grammar.lengths import bucket_label
from metaexamples.tasks.grammar.metrics import by_length, length_buckets, negative_kind_auroc, ppl_block, strata

log = logging.getLogger(__name__)

# Keys copied from the data rows into scores.jsonl (ids are left out: they are in the data).
ROW_KEYS = ("symbols", "valid", "length", "how", "edit_distance", "bucket")


def score_rows(model, bundle, rows: list[dict], batch_size: int) -> list[dict]:
    scores = score_strings(model, bundle.open_ids, [r["ids"] for r in rows], bundle.close_ids, batch_size)
    return [{**{k: r.get(k) for k in ROW_KEYS}, **s, "score": score_of(s)} for r, s in zip(rows, scores)]


def run_eval_ppl(cfg, bundle, model, tokenizer, run_dir: Path, tracker) -> dict:
    out_dir = Path(run_dir) / "eval_ppl"
    splits = {name: bundle.split(name) for name in ("test_valid", "test_invalid", "eval")}
    splits["test_long"] = bundle.long_rows()
    # One scoring call for all: normalisers are shared by prefix across splits too.
    scored = score_rows(model, bundle, [r for rows in splits.values() for r in rows], int(cfg.eval.batch_size))
    n_valid, n_invalid, n_eval = len(splits["test_valid"]), len(splits["test_invalid"]), len(splits["eval"])
    valid, invalid = scored[:n_valid], scored[n_valid:n_valid + n_invalid]
    held = scored[n_valid + n_invalid:n_valid + n_invalid + n_eval]
    long_scored = scored[n_valid + n_invalid + n_eval:]

    # Thresholds for balanced accuracy come from the eval split, never from test.
    eval_labels = [int(r["valid"]) for r in held]
    threshold = choose_threshold(eval_labels, [r["score"] for r in held])
    threshold_ps = choose_threshold(eval_labels, [per_symbol_score_of(r) for r in held])

    grammar = bundle.grammar
    buckets = length_buckets(int(grammar["min_len"]), int(grammar["max_len"]))
    ppl = {
        **ppl_block(valid, invalid, threshold, threshold_ps),
        **negative_kind_auroc(valid, invalid),
        "threshold": threshold,
        "threshold_per_symbol": threshold_ps,
        "strata": strata(valid, invalid, threshold, threshold_ps, buckets),
    }
    if long_scored:  # grammar.eval_lengths: the same figures per length bucket, training range first
        train_range = bucket_label(int(grammar["min_len"]), int(grammar["max_len"]))
        ppl["by_length"] = by_length((train_range, valid, invalid), long_scored, threshold, threshold_ps)

    write_jsonl(out_dir / "scores.jsonl", [{"split": "test", **r} for r in valid + invalid]
                + [{"split": "eval", **r} for r in held] + [{"split": "test_long", **r} for r in long_scored])
    write_json(out_dir / "metrics.json", ppl)
    labels = [1] * len(valid) + [0] * len(invalid)
    scores = [r["score"] for r in valid + invalid]
    title = f"{grammar['name']}: valid vs invalid (score = -log ppl)"
    roc = plots.roc_plot(labels, scores, ppl["auroc"], out_dir / "roc.png", title)
    pr = plots.pr_plot(labels, scores, ppl["aupr"], out_dir / "pr.png", title)

    tracker.summary({f"ppl/{k}": v for k, v in ppl.items() if not isinstance(v, dict)})
    tracker.summary({f"ppl/by_length/{b}/{k}": v for b, block in ppl.get("by_length", {}).items()
                     for k, v in block.items() if k in ("auroc", "auroc_hard", "auroc_random")})
    tracker.image("ppl/roc", roc)
    tracker.image("ppl/pr", pr)
    log.info("eval_ppl: valid ppl %.3f, invalid ppl %.3f, AUROC %.4f", ppl["valid_ppl"],
             ppl["invalid_ppl"], ppl["auroc"] if ppl["auroc"] is not None else float("nan"))
    return ppl
