"""The arms of a sweep comparison as values: which objective trained a job, and with which
settings. Jobs of one arm are pooled; `label` is how tables, legends and JSON name an arm, and
`order` how they are sorted (a label is never parsed back)."""

from __future__ import annotations

from dataclasses import dataclass

POLYCHROMIC = "polychromic"
EI_PLAIN = "EI"  # expert iteration, plain
EI_DIVERSE = "EI diverse"  # expert iteration with any diversity-aware option
BASELINE = "lam=0 (GRPO)"  # the polychromic arm every other is compared with
_OBJECTIVES = (EI_PLAIN, EI_DIVERSE, POLYCHROMIC)


@dataclass(frozen=True)
class Arm:
    objective: str  # polychromic | EI | EI diverse
    lam: float | None = None  # polychromic: the diversity weight (None: not recorded)
    form: str | None = None  # polychromic: product | additive
    diversity: str | None = None  # polychromic: distinct | edit

    @classmethod
    def polychromic(cls, train: dict) -> Arm:
        """A polychromic job's arm from its results.json `train` section: form, lam and
        diversity function (jobs that differ in any of them are never pooled); lam = 0 is one
        arm whatever the form and diversity (they all coincide there)."""
        if train.get("lam") is None:
            return cls(POLYCHROMIC)
        lam = float(train["lam"])
        return cls(POLYCHROMIC, lam) if lam == 0 else cls(POLYCHROMIC, lam, train.get("form"), train.get("diversity"))

    @classmethod
    def of(cls, row: dict) -> Arm:
        """A job's arm from its results.json row, whatever its method: EI (plain), EI diverse
        (any diversity-aware option) or its polychromic arm."""
        t = row.get("train") or {}
        if row.get("method") == "expert_iteration":
            diverse = t.get("distinct") or t.get("prefer_new") or t.get("replay") or t.get("epochs") is not None
            return cls(EI_DIVERSE if diverse else EI_PLAIN)
        return cls.polychromic(t)

    @property
    def label(self) -> str:
        if self.objective != POLYCHROMIC:
            return self.objective
        if self.lam is None:
            return "?"
        if self.lam == 0:
            return BASELINE
        return f"{self.form} lam={self.lam:g} {self.diversity}"

    @property
    def order(self) -> tuple:
        """Expert iteration's arms first; then lam = 0, the product arms, the additive arms
        (each by diversity function, then lam)."""
        head = (_OBJECTIVES.index(self.objective),)
        if self.objective != POLYCHROMIC:
            return head
        if self.lam == 0:
            return (*head, 0, "", 0.0)
        return (*head, 1 if self.form == "product" else 2, str(self.diversity or ""), self.lam or 0.0)


def labelled(arms) -> dict[str, Arm]:
    """{label: arm} of `arms` (the jobs of one label are one arm)."""
    return {arm.label: arm for arm in arms}


__all__ = ["Arm", "BASELINE", "EI_DIVERSE", "EI_PLAIN", "POLYCHROMIC", "labelled"]
