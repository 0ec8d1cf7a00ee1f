"""stage=eval_numeric (results.json section `numeric`): every test split of the dataset answered
by the model (`models.numeric.predict`: greedy characters for the token-only model, the heads'
readout for the hybrid), scored with the task's definitions (`data.numeric_metrics`, `data.py`'s
docstring):

  exact_match              exact integer (arith), value to 6 significant digits AND the requested
                           unit (convert), the right boolean (can_add)
  rel_error_median/_mean   |pred - target| / |target| (/ 1 when the target is 0), over problems
                           with a readable number (n_rel_error of them), capped at 1e30
  dimensional_correctness  convert: the predicted unit has the requested unit's pint dimensionality
  unit_match               convert: the predicted unit is the requested one
  bool_accuracy            can_add: the right boolean
  n_unparseable            answers with nothing readable
  verdicts                 the verifier's verdict kinds (correct, wrong_value, wrong_unit, unparseable)

Per split in the section: `numeric.<split>.*`; `numeric.ood_structure` repeats the structural
OOD split (test_ood_length for arithmetic, test_ood_types for units) under one name, for the
report's column; `numeric.n_unparseable` sums the splits.
Writes run_dir/eval_numeric/predictions_<split>.jsonl (input, target, prediction, verdict and the
per-problem scores), metrics.json and rel_error_by_magnitude.png (relative error against the
largest operand's magnitude, per split). W&B: the metrics (via the pipeline's summary of the
section), the `numeric/predictions` table and the plot.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from metaexamples.evaluation.plots import _save
from metaexamples.io import read_jsonl, write_json, write_jsonl
from metaexamples.models.numeric import predict
from metaexamples.rendering import save_figure
from metaexamples.tasks.numeric.data import numeric_metrics, score_prediction, verify

log = logging.getLogger(__name__)

OOD_STRUCTURE = {"arithmetic": "test_ood_length", "units": "test_ood_types"}
TABLE_COLUMNS = ("split", "id", "kind", "input", "target", "prediction", "verdict", "exact", "rel_error",
                 "max_abs_operand")
PLOT = "rel_error_by_magnitude.png"
REPORT_PLOT = "numeric_rel_error_by_magnitude.png"
ZERO_FLOOR = 1e-12  # relative errors below this (0 included) drawn here on the log axis
MAGNITUDE_FLOOR = 0.1  # operands of 0 drawn here


def prediction_rows(split: str, problems: list[dict], predictions: list[dict]) -> list[dict]:
    """One row per problem: what was asked and answered, the verdict and the scores."""
    rows = []
    for p, q in zip(problems, predictions):
        s = score_prediction(p, q)
        reward, verdict, _ = verify(p, q.get("prediction_text") or "")
        value = q.get("prediction")
        rows.append({
            "split": split, "id": p["id"], "kind": p["kind"], "input": p["question"], "target": p["target_text"],
            "prediction": q.get("prediction_text") or "",
            "value": value if value is None or isinstance(value, bool) or math.isfinite(value) else None,
            "unit": q.get("unit"), "verdict": verdict, "reward": reward, "exact": bool(s["exact"]),
            "rel_error": s["rel_error"], "dimension_ok": s["dimension_ok"], "unit_ok": s["unit_ok"],
            "n_ops": p["n_ops"], "max_abs_operand": p["max_abs_operand"],
        })
    return rows


def run_eval_numeric(task, model, run_dir: Path, tracker) -> dict:
    cfg = task.cfg
    out_dir = Path(run_dir) / "eval_numeric"
    batch_size = int(cfg.eval.batch_size)
    section: dict = {"dataset": cfg.task.dataset, "preset": cfg.task.preset, "model_type": model.config.model_type,
                     "readout": getattr(model.config, "readout", None), "splits": task.eval_splits()}
    by_split: dict[str, list[dict]] = {}
    for split in section["splits"]:
        problems = task.rows(split)
        predictions = predict(model, problems, batch_size)
        rows = prediction_rows(split, problems, predictions)
        metrics = numeric_metrics(problems, predictions)
        metrics["verdicts"] = dict(Counter(r["verdict"] for r in rows))
        section[split] = metrics
        by_split[split] = rows
        write_jsonl(out_dir / f"predictions_{split}.jsonl", rows)
        log.info("eval_numeric %s: exact match %.3f, rel err median %s, unparseable %d", split,
                 metrics["exact_match"], _g(metrics["rel_error_median"]), metrics["n_unparseable"])
    structure = OOD_STRUCTURE.get(cfg.task.dataset)
    if structure in section:
        m = section[structure]
        section["ood_structure"] = {"split": structure, "exact_match": m["exact_match"],
                                    "rel_error_median": m["rel_error_median"], "rel_error_mean": m["rel_error_mean"]}
    section["n_unparseable"] = sum(section[s]["n_unparseable"] for s in by_split)
    write_json(out_dir / "metrics.json", section)

    plot = magnitude_plot(by_split, out_dir / PLOT, f"{task.run_name()}: relative error vs operand magnitude")
    if plot is not None:
        tracker.image("numeric/rel_error_by_magnitude", plot)
    n_log = int(cfg.logger.log_samples)
    table = _spread(by_split, n_log)
    tracker.table("numeric/predictions", TABLE_COLUMNS, [[r[c] for c in TABLE_COLUMNS] for r in table])
    return section


def _g(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def _spread(by_split: dict[str, list[dict]], n: int) -> list[dict]:
    """Up to n rows, the same share from each split."""
    if n <= 0 or not by_split:
        return []
    each = max(1, n // len(by_split))
    return [r for rows in by_split.values() for r in rows[:each]][:n]


def binned_medians(points: list[tuple[float, float]], per_decade: int = 2) -> tuple[list[float], list[float]]:
    """(bin centre magnitudes, median relative error) over log10-magnitude bins."""
    bins: dict[int, list[float]] = defaultdict(list)
    for x, e in points:
        bins[math.floor(math.log10(max(x, MAGNITUDE_FLOOR)) * per_decade)].append(e)
    keys = sorted(bins)
    return [10 ** ((k + 0.5) / per_decade) for k in keys], [statistics.median(bins[k]) for k in keys]


def _points(rows: list[dict]) -> list[tuple[float, float]]:
    return [(float(r["max_abs_operand"]), float(r["rel_error"])) for r in rows if r.get("rel_error") is not None]


def magnitude_plot(by_split: dict[str, list[dict]], path: Path, title: str) -> Path | None:
    """Relative error against the largest operand's magnitude: each problem a dot, each split's
    median per half-decade a line (log axes; an error of 0 is drawn at 1e-12)."""
    if not any(_points(rows) for rows in by_split.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, (split, rows) in enumerate(by_split.items()):
        pts = _points(rows)
        if not pts:
            continue
        color = f"C{i}"
        ax.scatter([max(x, MAGNITUDE_FLOOR) for x, _ in pts], [max(e, ZERO_FLOOR) for _, e in pts], s=6,
                   alpha=0.25, color=color)
        xs, ys = binned_medians(pts)
        ax.plot(xs, [max(y, ZERO_FLOOR) for y in ys], marker="o", color=color, label=f"{split} (median)")
    ax.set(xscale="log", yscale="log", xlabel="largest |operand| (input value for conversions)",
           ylabel=f"relative error (< {ZERO_FLOOR:g} drawn at {ZERO_FLOOR:g})", title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _job_folder(row: dict, out_dir: Path) -> Path | None:
    for folder in (Path(row.get("output_dir") or ""), Path(out_dir) / str(row.get("job") or "")):
        if (folder / "eval_numeric").is_dir():
            return folder
    return None


def report_plot(rows: list[dict], out_dir: Path) -> list[str]:
    """The sweep's relative error against operand magnitude: one panel per dataset, one line per
    job (median per half-decade over all its test splits' predictions)."""
    curves: dict[str, list[tuple[str, list[float], list[float]]]] = defaultdict(list)
    for row in rows:
        folder = _job_folder(row, out_dir) if row.get("numeric") else None
        if folder is None:
            continue
        pts = []
        for split in (row["numeric"].get("splits") or []):
            path = folder / "eval_numeric" / f"predictions_{split}.jsonl"
            if split != "custom" and path.exists():
                pts += _points(read_jsonl(path))
        if pts:
            label = row.get("run_label") or row.get("run") or row.get("model")
            curves[row.get("dataset") or "?"].append((str(label), *binned_medians(pts)))
    if not curves:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.2), squeeze=False)
    for ax, (dataset, lines) in zip(axes[0], sorted(curves.items())):
        for label, xs, ys in lines:
            ax.plot(xs, [max(y, ZERO_FLOOR) for y in ys], marker="o", label=label)
        ax.set(xscale="log", yscale="log", title=f"{dataset}: median relative error",
               xlabel="largest |operand| (input value for conversions)", ylabel=f"relative error (< {ZERO_FLOOR:g} at {ZERO_FLOOR:g})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, Path(out_dir) / REPORT_PLOT)
    return [REPORT_PLOT]


__all__ = ["run_eval_numeric", "prediction_rows", "magnitude_plot", "report_plot", "binned_medians"]
