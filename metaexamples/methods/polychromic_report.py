"""method=polychromic's sweep report: every arm (form, lam, diversity function) against lam = 0,
paired over (seed, held-out prompt): polychromic_comparison.md/.json and .png, and pass@k
against k per arm (polychromic_pass_at_k.png); JOB_COLUMNS is the per-job table."""

from __future__ import annotations

from pathlib import Path

from metaexamples.evaluation.sets import compare
from metaexamples.io import write_json, write_text
from metaexamples.methods.arms import BASELINE, Arm, labelled
from metaexamples.rendering import markdown_table, save_figure

JOB_COLUMNS = [
    ("Run", "run"), ("Seed", "seed"), ("Form", "train.form"), ("Lambda", "train.lam"), ("Diversity", "train.diversity"),
    ("Updates", "train.updates"), ("Pass@1", "sets.display.pass@1"), ("Pass@10", "sets.display.pass@10"),
    ("Distinct-2", "sets.display.distinct_2"), ("Self-BLEU", "sets.display.self_bleu"),
    ("Coverage", "sets.display.coverage"), ("Semantic", "sets.display.semantic"),
    ("Train reward", "train.final_reward"), ("KL", "train.final_kl"), ("s/update", "train.mean_update_s"),
]
COMPARED = [("Distinct-2", "distinct_2"), ("Self-BLEU", "self_bleu"), ("Pass@1", "pass@1"), ("Pass@10", "pass@10"),
            ("Coverage", "coverage"), ("Semantic", "semantic")]


def job_arm(row: dict) -> Arm:
    """A polychromic job's arm (methods/arms.py), from its results.json row."""
    return Arm.polychromic(row.get("train") or {})


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+.3g}"


def comparison_markdown(result: dict, arms: dict[str, Arm]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the comparison table (one row per arm of `result`, keyed by label;
    `arms`: those labels' arms, which give the order)."""
    headers = ["Arm", "Jobs", "Units"]
    for label, _ in COMPARED:
        headers += [label, f"d {label} vs lam=0 [95% CI], p"]
    cells = []
    for arm in sorted(result, key=lambda label: arms[label].order):
        e = result[arm]
        row = [arm, str(e["jobs"]), str(e["units"])]
        for label, key in COMPARED:
            v = e.get(key, {})
            row.append("-" if v.get("mean") is None else f"{v['mean']:.4g}")
            if arm == BASELINE or v.get("diff") is None:
                row.append("-")
            else:
                ratio = f", x{v['ratio']:.2f}" if key == "coverage" and v.get("ratio") is not None else ""
                row.append(f"{_signed(v['diff'])} [{_signed(v['diff_lo'])}, {_signed(v['diff_hi'])}], "
                           f"p={v['p']:.3g}{ratio}")
        cells.append(row)
    return headers, cells


def comparison_report(rows: list[dict], out_dir: Path) -> list[str]:
    """Every arm against lam = 0, paired over (seed, held-out prompt): the table as
    polychromic_comparison.md/.json and .png, and pass@k against k per arm (polychromic_pass_at_k.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jobs = []
    for row in rows:
        if not row.get("sets"):
            continue
        folder = Path(row.get("output_dir") or "")
        if not (folder / "eval_sets" / "samples.jsonl").exists() and row.get("job"):
            folder = out_dir / row["job"]
        if (folder / "eval_sets" / "samples.jsonl").exists():
            jobs.append({**row, "output_dir": str(folder)})
    arms = labelled(job_arm(j) for j in jobs)
    if BASELINE not in arms:
        return []
    ks = sorted({int(k.split("@")[1]) for j in jobs for k in j["sets"] if k.startswith("pass@")})
    metrics = [key for _, key in COMPARED] + [f"pass@{k}" for k in ks]
    result = compare(jobs, lambda job: job_arm(job).label, BASELINE, list(dict.fromkeys(metrics)), ks)
    headers, cells = comparison_markdown(result, arms)
    write_json(out_dir / "polychromic_comparison.json", result)
    write_text(out_dir / "polychromic_comparison.md",
               "## Polychromic RL against lam = 0 (paired over seeds x held-out prompts)\n\n"
               + markdown_table(headers, cells) + "\n")

    # the picture: arms x metrics, each cell the arm's mean and its change against lam = 0
    grid = []
    for row in cells:
        cells_of_arm = [row[0], f"{row[1]} jobs\n{row[2]} units"]
        for i in range(len(COMPARED)):
            mean, diff = row[3 + 2 * i], row[4 + 2 * i]
            cells_of_arm.append(mean if diff == "-" else f"{mean}\n{diff.replace(', p=', chr(10) + 'p=')}")
        grid.append(cells_of_arm)
    fig, ax = plt.subplots(figsize=(2.2 * (len(COMPARED) + 2), 0.6 + 0.75 * (len(grid) + 1)))
    ax.axis("off")
    table = ax.table(cellText=grid, colLabels=["Arm", ""] + [label for label, _ in COMPARED], loc="center",
                     cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    for (r, _c), cell in table.get_celld().items():
        cell.set_height(0.9 / (len(grid) + 1) if r else 0.4 / (len(grid) + 1))
    ax.set_title("Against lam = 0: mean; change [95% CI]; sign-flip p (paired over seeds x prompts)", fontsize=8)
    save_figure(fig, out_dir / "polychromic_comparison.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    for arm in sorted(result, key=lambda label: arms[label].order):
        e = result[arm]
        means = [e[f"pass@{k}"]["mean"] for k in ks]
        lo = [m - e[f"pass@{k}"]["lo"] for k, m in zip(ks, means)]
        hi = [e[f"pass@{k}"]["hi"] - m for k, m in zip(ks, means)]
        ax.errorbar(ks, means, yerr=[lo, hi], marker="o", capsize=3, label=arm)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (mean over seeds x prompts, 95% CI)")
    ax.set_title("pass@k per arm")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out_dir / "polychromic_pass_at_k.png")
    return ["polychromic_comparison.png", "polychromic_pass_at_k.png"]


__all__ = ["COMPARED", "JOB_COLUMNS", "comparison_markdown", "comparison_report", "job_arm"]
