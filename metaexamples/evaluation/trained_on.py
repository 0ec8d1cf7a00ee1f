"""What a method fine-tuned a run's model on beyond the task's own data (expert iteration's
selections, what polychromic RL rewarded), kept in <run>/trained_on.jsonl: novelty counts it
as seen, in the loop and in the final model's evaluation alike."""

from __future__ import annotations

from pathlib import Path

from metaexamples.errors import ConfigError
from metaexamples.io import file_sha256, read_json, read_jsonl


# Outputs a method fine-tuned this run's model on beyond the task's own data (expert
# iteration's selections), one {"extracted": ...} per line: novelty must count them as seen.
TRAINED_ON = "trained_on.jsonl"


def trained_on(run_dir: Path) -> list:
    """The `extracted` outputs in <run>/trained_on.jsonl; [] when the method wrote none. The
    file must be the one the method wrote: its sha256 is recorded in results.json
    (`train.trained_on_sha256`), so an edited or appended file is refused, not trusted."""
    path = Path(run_dir) / TRAINED_ON
    if not path.exists():
        return []
    results = Path(run_dir) / "results.json"
    recorded = ((read_json(results) if results.exists() else {}).get("train") or {}).get("trained_on_sha256")
    if recorded is not None and file_sha256(path) != recorded:
        raise ConfigError(f"{path}: changed since the method wrote it (sha256 differs from results.json "
                          "train.trained_on_sha256); restore it, or train again (stages=[data,train,...])")
    rows = read_jsonl(path)
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict) or "extracted" not in row:
            raise ConfigError(f"{path}: line {i} has no `extracted` field; restore the file, or train again")
    return [r["extracted"] for r in rows]
