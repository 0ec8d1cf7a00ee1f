"""The seed matrix's answer: conditions compared over seeds, per grammar (sweep report sections;
the length plot is report_plots.plot_length_generalization).

- "Conditions over seeds": each (grammar, condition) cell's mean and 95% bootstrap interval
  over its seeds, for every figure in FIGURES.
- "Against examples": each other condition paired with `examples` on the seeds both have:
  the mean difference, its bootstrap interval and the sign-flip p (evaluation/stats.py's
  compare_arms, the machinery of the polychromic report). Fewer than two shared seeds: the
  cell says it cannot pair; when the jobs' preset pairs over seeds (`min_seeds` >= 2, as
  experiment=seed_matrix) that is refused instead, in one line (the report writes nothing).
- "Findings": lines computed from those numbers: best and worst cell by discrimination and by
  validity; every comparison whose interval excludes 0, with its sign; what the test can
  resolve with this many seeds; and the length trend when grammar.eval_lengths was set.
"""

from __future__ import annotations

from collections import defaultdict

from metaexamples.errors import ConfigError
from metaexamples.evaluation.stats import bootstrap_ci, compare_arms
from metaexamples.rendering import fmt, get
from metaexamples.tasks import ReportSection
from metaexamples.tasks.grammar.config import CONDITION_ORDER

BASELINE = "examples"
FIGURES = [("AUROC", "ppl.auroc"), ("AUROC hard", "ppl.auroc_hard"), ("AUROC random", "ppl.auroc_random"),
           ("Validity", "gen.validity_rate"), ("Novel valid", "gen.novel_valid")]
DISCRIMINATION, VALIDITY = "ppl.auroc", "gen.validity_rate"
MIN_PAIRED = 2  # a paired comparison needs two seeds at least (one seed has no spread)


def condition_order(name: str) -> tuple[int, str]:
    """Sort key of a condition: examples, then meta by share, then any other by name."""
    return (CONDITION_ORDER.get(name, 99), name)


def seed_units(rows: list[dict]) -> tuple[dict[str, dict[str, dict]], list[str]]:
    """({grammar: {condition: {seed: {figure key: value}}}}, notes on jobs left out: a second
    job of the same grammar, condition and seed, which would count one seed twice)."""
    units: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    notes = []
    for r in rows:
        g, c, seed = r.get("grammar"), r.get("condition"), r.get("seed")
        if g is None or c is None or seed is None:
            continue
        if seed in units[g][c]:
            notes.append(f"{r.get('job')}: a second job of {g} {c} seed {seed}; left out of the statistics")
            continue
        units[g][c][seed] = {key: get(r, key) for _, key in FIGURES}
    return units, notes


def compare_conditions(rows: list[dict]) -> dict[str, dict]:
    """{grammar: compare_arms over seeds with `examples` as the baseline}."""
    units, _ = seed_units(rows)
    keys = [key for _, key in FIGURES]
    return {g: compare_arms(by_condition, BASELINE, keys) for g, by_condition in sorted(units.items())}


def _interval(e: dict) -> str:
    return "-" if e.get("mean") is None else f"{fmt(e['mean'])} [{fmt(e['lo'])}, {fmt(e['hi'])}]"


def _signed(x: float) -> str:
    return f"{x:+.4f}" if abs(x) >= 1e-3 or x == 0 else f"{x:+.3g}"


def _difference(e: dict) -> str:
    if e.get("diff") is None:
        return "-"
    return f"{_signed(e['diff'])} [{_signed(e['diff_lo'])}, {_signed(e['diff_hi'])}], p={e['p']:.3g}"


def _ordered(result: dict) -> list[tuple[str, str, dict]]:
    return [(g, c, result[g][c]) for g in sorted(result) for c in sorted(result[g], key=condition_order)]


def sections(rows: list[dict]) -> list[ReportSection]:
    """The three sections (none when no job has a grammar and a condition)."""
    units, notes = seed_units(rows)
    if not units:
        return []
    result = compare_conditions(rows)
    means = ReportSection(
        "Conditions over seeds (mean [95% bootstrap interval over seeds])",
        ["Grammar", "Condition", "Seeds", *[label for label, _ in FIGURES]],
        [[g, c, ",".join(str(s) for s in sorted(units[g][c])), *[_interval(e[key]) for _, key in FIGURES]]
         for g, c, e in _ordered(result)])
    paired_rows, cannot = [], []
    for g, c, e in _ordered(result):
        if c == BASELINE:
            continue
        if BASELINE not in result[g]:
            cannot.append(f"{g} {c}: cannot pair, no `{BASELINE}` job for {g}")
            continue
        n = e["paired_units"]
        if n < MIN_PAIRED:
            shared = sorted(set(units[g][c]) & set(units[g][BASELINE]))
            cannot.append(f"{g} {c}: cannot pair with {BASELINE}: {n} shared seed(s) {shared}; a paired comparison "
                          f"needs >= {MIN_PAIRED} (run with seed=0,1,2)")
            paired_rows.append([g, c, str(n), *["cannot pair" for _ in FIGURES]])
            continue
        paired_rows.append([g, c, str(n), *[_difference(e[key]) for _, key in FIGURES]])
    check_paired(rows, cannot)
    paired = ReportSection(
        f"Against {BASELINE} (paired over seeds: difference [95% bootstrap interval], sign-flip p)",
        ["Grammar", "Condition", "Paired seeds", *[label for label, _ in FIGURES]], paired_rows)
    findings = ReportSection("Findings", text=findings_lines(result, rows, cannot) + [f"- {n}" for n in notes])
    return [means, paired, findings]


def check_paired(rows: list[dict], cannot: list[str]) -> None:
    """Jobs whose preset pairs over seeds (`min_seeds` >= 2 in their rows) with a comparison that
    cannot pair (jobs failed or are missing): one line naming `seed`, before anything is written."""
    need = max((int(r.get("min_seeds") or 1) for r in rows), default=1)
    if need < MIN_PAIRED or not cannot:
        return
    more = f" (and {len(cannot) - 1} more)" if len(cannot) > 1 else ""
    raise ConfigError(f"seed: these jobs pair conditions over seeds (min_seeds={need}) and {cannot[0]}{more}; "
                      "rerun the failed or missing jobs, or write the report without those comparisons: "
                      "--allow-unpaired")


def findings_lines(result: dict, rows: list[dict], cannot: list[str]) -> list[str]:
    cells = _ordered(result)
    lines = []
    for what, key in (("discrimination (AUROC)", DISCRIMINATION), ("validity", VALIDITY)):
        scored = [(e[key]["mean"], g, c, e) for g, c, e in cells if e[key]["mean"] is not None]
        if not scored:
            continue
        best, worst = max(scored, key=lambda x: x[0]), min(scored, key=lambda x: x[0])
        if best[0] == worst[0]:
            lines.append(f"- Every cell has the same mean {what}: {fmt(best[0])}.")
            continue
        lines.append(f"- Best cell by {what}: {best[1]} {best[2]}, {_interval(best[3][key])} "
                     f"({best[3]['units']} seeds); worst: {worst[1]} {worst[2]}, {_interval(worst[3][key])} "
                     f"({worst[3]['units']} seeds).")
    compared, excluding = 0, []
    for g, c, e in cells:
        if c == BASELINE or e["paired_units"] < MIN_PAIRED:
            continue
        for label, key in FIGURES:
            d = e[key]
            if d.get("diff") is None:
                continue
            compared += 1
            if d["diff_lo"] > 0 or d["diff_hi"] < 0:
                sign = "higher" if d["diff"] > 0 else "lower"
                excluding.append(f"- {g} {c} vs {BASELINE}: {label} {sign} by {_difference(d)} "
                                 f"({e['paired_units']} paired seeds).")
    if compared:
        lines += excluding or [f"- No condition's interval against {BASELINE} excludes 0 ({compared} comparisons)."]
        n_min = min(e["paired_units"] for g, c, e in cells if c != BASELINE and e["paired_units"] >= MIN_PAIRED)
        lines.append(f"- Resolution: with {n_min} paired seeds the smallest sign-flip p is {2 / 2 ** n_min:.3g}, "
                     f"and an interval over {n_min} seeds spans about the smallest to the largest difference: an "
                     "interval excluding 0 means every seed moved the same way, not a significant effect.")
    lines += [f"- {line}." for line in cannot]
    lines += length_lines(rows)
    return lines


def length_curves(rows: list[dict], section: str, key: str) -> dict[str, dict[str, dict[str, dict]]]:
    """{grammar: {condition: {bucket: bootstrap_ci over seeds of by_length[bucket][key]}}},
    buckets in increasing length."""
    values: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows:
        for bucket, block in (get(r, f"{section}.by_length") or {}).items():
            values[r.get("grammar")][r.get("condition")][bucket].append(block.get(key))
    return {g: {c: {b: bootstrap_ci(v) for b, v in sorted(by_bucket.items(), key=lambda kv: bucket_lo(kv[0]))}
                for c, by_bucket in by_condition.items()}
            for g, by_condition in values.items()}


def bucket_lo(label: str) -> int:
    return int(label.split("-")[0])


def length_lines(rows: list[dict]) -> list[str]:
    """Per grammar: mean AUROC and validity (over conditions and seeds) at the training range
    and at the longest bucket."""
    lines = []
    for name, section, key in (("AUROC", "ppl", "auroc"), ("validity", "gen", "validity_rate")):
        for g, by_condition in sorted(length_curves(rows, section, key).items()):
            per_bucket: dict[str, list[float]] = defaultdict(list)
            for curve in by_condition.values():
                for bucket, ci in curve.items():
                    if ci["mean"] is not None:
                        per_bucket[bucket].append(ci["mean"])
            order = sorted(per_bucket, key=bucket_lo)
            if len(order) < 2:
                continue
            first = order[0]
            mean = lambda b: sum(per_bucket[b]) / len(per_bucket[b])  # noqa: E731
            lines.append(f"- Length ({g}, {name}, mean over conditions and seeds): {mean(first):.4f} at "
                         f"{first} (trained), " + ", ".join(f"{mean(b):.4f} at {b}" for b in order[1:]) + ".")
    return lines
