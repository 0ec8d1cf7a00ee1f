"""results.json: one file per job, the local source of truth the report reads.

Schema (version 1; the same field names as the W&B summary, where `ppl/auroc` is
`results["ppl"]["auroc"]`):

    schema_version  1
    run             run name: <grammar>-<condition>-<model>
    status          "running" | "completed" | "failed"
    error           one-line error message, or null
    grammar, condition, model, decoding, seed, experiment, stages
    timings         {stage: seconds}
    data            {"folder", "counts", "tokens"}            (stage data)
    train           {"steps", "tokens", "final_loss", "tokens_per_s" (last log window),
                     "mean_tokens_per_s", "eval_loss", "eval_ppl", "eval_valid_ppl",
                     "eval_invalid_ppl", "resumed_from", "world_size", "mixed_precision",
                     "lora", "model_dir"}                    (stage train)
    ppl             {"valid_ppl", "invalid_ppl", "gap", "ratio", "auroc", "aupr", "best_f1",
                     "balanced_acc", ...}                     (stage eval_ppl)
    gen             {"samples", "valid", "invalid", "validity_rate", "failures", ...}
                                                              (stage eval_gen)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metaexamples.errors import ConfigError
from metaexamples.io import read_json, write_json

SCHEMA_VERSION = 1
FILENAME = "results.json"


class Results:
    """The job's results, rewritten atomically after every stage so a crash keeps what finished."""

    def __init__(self, run_dir: Path, header: dict[str, Any]) -> None:
        self.path = Path(run_dir) / FILENAME
        previous = read_json(self.path) if self.path.exists() else {}
        if not isinstance(previous, dict):
            raise ConfigError(f"{self.path}: not a results.json (a JSON object); move it away or use another run "
                              "folder (hydra.run.dir=...)")
        self._previous = previous  # what a refused re-run puts back
        self.previous_status = previous.get("status")
        # Re-running into the same folder (resume, or a later stage alone) keeps earlier sections.
        self.data: dict[str, Any] = {**previous, "schema_version": SCHEMA_VERSION, **header,
                                     "status": "running", "error": None}
        self.data.setdefault("timings", {})
        self.save()

    def set(self, section: str, value: Any) -> None:
        self.data[section] = value
        self.save()

    def timing(self, stage: str, seconds: float) -> None:
        self.data["timings"][stage] = round(seconds, 3)
        self.save()

    def finish(self, status: str, error: str | None = None) -> None:
        self.data["status"] = status
        self.data["error"] = error
        self.save()

    def restore(self) -> None:
        """Put back the results.json this job found (a refused re-run of a finished run)."""
        self.data = dict(self._previous)
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)

