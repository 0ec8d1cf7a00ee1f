"""The report of experiment=diversity_collapse: self-training arms of different methods (expert
iteration, polychromic RL) compared at equal sampled completions.

- Curves (diversity_collapse_<grammar>.png, one per grammar): the policy's own training samples
  in consecutive blocks of BLOCK sampled completions (expert iteration: iter_<k>/generated.jsonl;
  polychromic: train/rollouts.jsonl), per block: validity (share of rewarded samples), unique
  valid and unique novel valid strings (novel: outside the task's training strings and
  everything the run had selected or rewarded before that sample's iteration / update); the
  mean over seeds per arm, against sampled completions.
- The comparison (diversity_collapse.md/.json): the final models' eval_sets samples (the same
  prompts, the same number of samples for every arm): validity (accuracy), unique valid
  (distinct_correct), unique novel valid (coverage) and novel share, each arm against plain
  expert iteration and against lam = 0 (evaluation/sets.compare: paired over (seed, prompt)
  units, bootstrap interval and sign-flip p). With fewer than MIN_UNITS paired units (one
  prompt, one seed) an interval over units says nothing, so there the interval and p resample
  and permute the two arms' samples within each unit instead; `ci_over` says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from metaexamples.evaluation.sets import compare, load_samples, prompt_metrics
from metaexamples.io import read_jsonl, write_json, write_text
from metaexamples.methods.arms import BASELINE, EI_PLAIN, Arm, labelled
from metaexamples.rendering import markdown_table, save_figure
from metaexamples.sweep_jobs import collect

BLOCK = 256
MIN_UNITS = 3
METRICS = [("Validity", "accuracy"), ("Unique valid", "distinct_correct"), ("Unique novel valid", "coverage"),
           ("Novel share", "novel_share")]


def arm_of(row: dict) -> str:
    """A job's arm's label: EI (plain), EI diverse (any diversity-aware option) or the
    polychromic arm (methods/arms.py)."""
    return Arm.of(row).label


def grammar_of(row: dict) -> str:
    return str(row.get("grammar") or (row.get("config") or {}).get("grammar", {}).get("name") or row.get("task"))


def training_samples(job_dir: Path, method: str) -> list[dict]:
    """The run's training samples in sampling order (reward, extracted, novel)."""
    job_dir = Path(job_dir)
    if method == "expert_iteration":
        folders = sorted((p for p in job_dir.glob("iter_*") if (p / "generated.jsonl").exists()),
                         key=lambda p: int(p.name.split("_")[1]))
        return [r for f in folders for r in read_jsonl(f / "generated.jsonl")]
    path = job_dir / "train" / "rollouts.jsonl"
    return read_jsonl(path) if path.exists() else []


def block_curve(samples: Sequence[dict], block: int = BLOCK) -> list[dict]:
    """Per block of `block` consecutive samples: sampled (at its end), validity, unique valid,
    unique novel valid."""
    out = []
    for start in range(0, len(samples) - block + 1, block):
        rows = samples[start:start + block]
        valid = [tuple(r["extracted"]) if isinstance(r["extracted"], list) else r["extracted"]
                 for r in rows if r["reward"] >= 1.0 and r.get("extracted") is not None]
        novel = {x for x, r in zip(valid, [r for r in rows if r["reward"] >= 1.0 and r.get("extracted") is not None])
                 if r.get("novel")}
        out.append({"sampled": start + block, "validity": sum(r["reward"] >= 1.0 for r in rows) / len(rows),
                    "unique_valid": len(set(valid)), "unique_novel_valid": len(novel)})
    return out


def _unit_rows(job: dict) -> dict[tuple, list[dict]]:
    rows, _ = load_samples(Path(job["output_dir"]))
    units: dict[tuple, list[dict]] = {}
    for r in rows:
        units.setdefault((job.get("seed"), r["id"]), []).append(r)
    return units


def _figures(rows: list[dict]) -> dict:
    return prompt_metrics(rows, None, [1], pairwise=False)


def sample_level_test(base: dict[tuple, list[dict]], arm: dict[tuple, list[dict]], metric: str,
                      n_boot: int = 400, n_perm: int = 400, seed: int = 0) -> dict:
    """arm - base over paired units when the units are too few: the mean difference, its
    interval over resamples of each arm's samples within each unit, and a permutation p
    (within each unit the two arms' samples are pooled and split at random)."""
    paired = sorted(set(base) & set(arm), key=str)

    def diff(pairs) -> float | None:
        values = [(_figures(b).get(metric), _figures(a).get(metric)) for b, a in pairs]
        values = [(x, y) for x, y in values if x is not None and y is not None]
        return float(np.mean([y - x for x, y in values])) if values else None

    observed = diff([(base[u], arm[u]) for u in paired])
    if observed is None:
        return {"diff": None, "lo": None, "hi": None, "p": None, "n": len(paired), "ci_over": "samples"}
    rng = np.random.default_rng(seed)
    draw = lambda rows: [rows[i] for i in rng.integers(0, len(rows), len(rows))]  # noqa: E731
    boots = [d for d in (diff([(draw(base[u]), draw(arm[u])) for u in paired]) for _ in range(n_boot)) if d is not None]
    hits = 0
    for _ in range(n_perm):
        pairs = []
        for u in paired:
            pool = base[u] + arm[u]
            order = rng.permutation(len(pool))
            pairs.append(([pool[i] for i in order[:len(base[u])]], [pool[i] for i in order[len(base[u]):]]))
        d = diff(pairs)
        hits += d is not None and abs(d) >= abs(observed) - 1e-12
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return {"diff": observed, "lo": float(lo), "hi": float(hi), "p": (1 + hits) / (1 + n_perm), "n": len(paired),
            "ci_over": "samples"}


def compare_arms(jobs: list[dict], baseline: str) -> dict:
    """{arm: {metric: {"mean", "diff", "lo", "hi", "p", "n", "ci_over"}}} against `baseline`."""
    by_arm: dict[str, dict[tuple, list[dict]]] = {}
    for job in jobs:
        by_arm.setdefault(arm_of(job), {}).update(_unit_rows(job))
    if baseline not in by_arm:
        return {}
    base = by_arm[baseline]
    out: dict = {}
    over_units = compare(jobs, arm_of, baseline, [key for _, key in METRICS], [1]) \
        if len(base) >= MIN_UNITS else {}
    for arm, units in by_arm.items():
        entry = {}
        for _, key in METRICS:
            mean = np.mean([v for v in (_figures(rows).get(key) for rows in units.values()) if v is not None] or [np.nan])
            if arm == baseline:
                entry[key] = {"mean": float(mean)}
            elif over_units:
                e = over_units[arm][key]
                entry[key] = {"mean": float(mean), "diff": e["diff"], "lo": e["diff_lo"], "hi": e["diff_hi"], "p": e["p"],
                              "n": over_units[arm]["paired_units"], "ci_over": "units"}
            else:
                entry[key] = {"mean": float(mean), **sample_level_test(base, units, key)}
        out[arm] = entry
    return out


def _cell(e: dict) -> str:
    if e.get("diff") is None:
        return "-"
    return f"{e['diff']:+.3g} [{e['lo']:+.3g}, {e['hi']:+.3g}] p={e['p']:.2g}"


def sweep_rows(rows: list[dict], out_dir: Path) -> list[dict]:
    """Every completed job of the sweep that `rows` (one method's jobs) came from, whatever its
    method, with its folder as output_dir."""
    first = rows[0]
    folder = Path(first.get("output_dir") or out_dir / first["job"])
    if not folder.is_dir():  # the sweep was moved: its jobs are under out_dir
        folder = Path(out_dir) / first["job"]
    sweep = folder.parents[len(Path(first["job"]).parts) - 1] if first.get("job") not in (None, ".") else folder
    done, _ = collect(sweep)
    return [{**r, "output_dir": str(sweep / r["job"])} for r in done]


def diversity_report(rows: list[dict], out_dir: Path) -> list[str]:
    """The curves per grammar and the comparison table; returns the plot file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    jobs = [row for row in rows if Path(row["output_dir"]).is_dir()]
    arms = labelled(Arm.of(j) for j in jobs)

    def order(label: str) -> tuple:
        return arms[label].order
    plots, parts, result = [], ["## Self-training arms at equal sampled completions (diversity_collapse)", ""], {}
    for grammar in sorted({grammar_of(j) for j in jobs}):
        mine = [j for j in jobs if grammar_of(j) == grammar]
        curves: dict[str, list[list[dict]]] = {}
        for j in mine:
            curve = block_curve(training_samples(Path(j["output_dir"]), j.get("method")))
            if curve:
                curves.setdefault(arm_of(j), []).append(curve)
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        for arm in sorted(curves, key=order):
            length = min(len(c) for c in curves[arm])
            x = [p["sampled"] for p in curves[arm][0][:length]]
            for ax, key in zip(axes, ("validity", "unique_valid", "unique_novel_valid")):
                ax.plot(x, [np.mean([c[i][key] for c in curves[arm]]) for i in range(length)], marker="o",
                        label=f"{arm} ({len(curves[arm])} seeds)")
        for ax, title in zip(axes, (f"validity (per {BLOCK} samples)", f"unique valid (per {BLOCK})",
                                    f"unique novel valid (per {BLOCK})")):
            ax.set_xlabel("sampled completions")
            ax.set_title(title, fontsize=9)
        if curves:
            axes[0].legend(fontsize=7)
        fig.suptitle(f"{grammar}: the policy's training samples, mean over seeds")
        fig.tight_layout()
        name = f"diversity_collapse_{grammar}.png"
        save_figure(fig, out_dir / name)
        plots.append(name)
        plt.close(fig)

        sets_jobs = [j for j in mine if j.get("sets")]
        vs_ei, vs_grpo = compare_arms(sets_jobs, EI_PLAIN), compare_arms(sets_jobs, BASELINE)
        result[grammar] = {"curves": curves, "vs_ei": vs_ei, "vs_lam0": vs_grpo}
        headers = ["Arm"] + [label for label, _ in METRICS] + \
            [f"d {label} vs {base}" for base in ("EI", "lam=0") for label, key in METRICS if key in ("accuracy", "coverage")]
        cells = []
        for arm in sorted(set(vs_ei) | set(vs_grpo), key=order):
            means = (vs_ei.get(arm) or vs_grpo.get(arm))
            row = [arm] + [f"{means[key]['mean']:.3g}" for _, key in METRICS]
            for table in (vs_ei, vs_grpo):
                row += [_cell(table.get(arm, {}).get(key, {})) for _, key in METRICS if key in ("accuracy", "coverage")]
            cells.append(row)
        over = {e.get("ci_over") for t in (vs_ei, vs_grpo) for a in t.values() for e in a.values() if e.get("ci_over")}
        parts += [f"### {grammar}", "", f"Intervals over: {', '.join(sorted(over)) or '-'} (95% bootstrap; "
                  "sign-flip p over units, permutation p over samples)", "", markdown_table(headers, cells), "",
                  f"![{name}]({name})", ""]
    if not result:
        return []
    write_json(out_dir / "diversity_collapse.json", result)
    write_text(out_dir / "diversity_collapse.md", "\n".join(parts))
    return plots


__all__ = ["arm_of", "block_curve", "compare_arms", "diversity_report", "sample_level_test", "sweep_rows",
           "training_samples"]
