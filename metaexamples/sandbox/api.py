"""The values the rest of the project passes in and gets back."""

from __future__ import annotations

from dataclasses import dataclass

from .runner import STATUSES, one_line

__all__ = ["Program", "Outcome", "STATUSES"]


@dataclass(frozen=True)
class Program:
    source: str  # Python source written by a model
    entry: str = "solve"  # the function to call
    args: tuple = ()  # JSON-serialisable positional arguments (they cross as JSON: tuples arrive as lists)

    def payload(self) -> dict:
        return {"source": self.source, "entry": self.entry, "args": list(self.args)}


@dataclass
class Outcome:
    status: str  # one of STATUSES
    value: object  # JSON-decoded return value of entry(*args) when status == "ok", else None
    detail: str  # one line: exception type and message, signal, limit hit ...
    seconds: float  # wall time of the program, from its first instruction

    @classmethod
    def from_raw(cls, raw: dict) -> "Outcome":
        # The detail is sanitised again here: whatever reached this process, it can be written anywhere.
        return cls(raw["status"], raw["value"] if raw["status"] == "ok" else None, one_line(str(raw["detail"])),
                   float(raw["seconds"]))
