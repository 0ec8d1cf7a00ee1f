"""method.curriculum=accuracy: train on one difficulty level at a time, easiest first, and move
up when the model has learnt it (Reasoning Gym's coaching idea, on held-out problems).

For any task whose problems carry an integer difficulty (Problem.meta["difficulty"]: task=
procedural's 1-10, task=gym's curriculum levels, task=prompts' task.level_key). The levels are
those of the training problems. Training starts at the lowest; a verifier-driven method
(expert iteration, polychromic RL) takes its training problems from the current level only.
After every iteration (expert iteration) or every `method.curriculum_every` updates
(polychromic), `check` samples `method.curriculum_samples` completions for each of the first
`method.curriculum_problems` held-out problems *of the current level* with the current model;
when their mean reward reaches `method.curriculum_threshold`, the next iteration or update trains
on the next level (the top level stays). Each check is one row of run_dir/curriculum.json and
curriculum.png (level and held-out accuracy by iteration/update), and its figures go into the
method's own per-iteration/update log (iterations.jsonl, train/metrics.jsonl, W&B) as
curriculum/level (trained on), curriculum/accuracy, curriculum/next_level.

method.curriculum=none (the default) leaves a method exactly as it is without one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from metaexamples.errors import ConfigError, check_key
from metaexamples.evaluation.rollout import rollouts
from metaexamples.io import write_json
from metaexamples.launch import is_main_process
from metaexamples.rendering import save_figure
from metaexamples.schemas import MethodConfig

log = logging.getLogger(__name__)

CURRICULA = ("none", "accuracy")


@dataclass
class CurriculumConfig(MethodConfig):
    """The curriculum keys of every method that can use one (method.curriculum*)."""

    curriculum: str = "none"  # none | accuracy: one difficulty level at a time, up when held-out accuracy is reached
    curriculum_threshold: float = 0.8  # held-out mean reward at the current level that moves training up
    curriculum_problems: int = 20  # held-out problems of the current level per check
    curriculum_samples: int = 4  # samples per problem per check
    curriculum_every: int = 1  # polychromic: updates between checks (expert iteration: every iteration)


def check_curriculum(cfg) -> None:
    """The curriculum keys alone, before any stage runs."""
    m = cfg.method
    check_key(m.curriculum in CURRICULA, "method.curriculum",
              f"unknown {m.curriculum!r}; available: {', '.join(CURRICULA)}")
    check_key(0 < m.curriculum_threshold <= 1, "method.curriculum_threshold",
              f"must be in (0, 1], got {m.curriculum_threshold}")
    for key in ("curriculum_problems", "curriculum_samples", "curriculum_every"):
        check_key(m[key] > 0, f"method.{key}", f"must be positive, got {m[key]}")


class Curriculum:
    """The current level and its history. `rows`: the method's finished per-iteration rows
    (a resumed expert iteration continues at the level they reached)."""

    def __init__(self, cfg, task, rows=()) -> None:
        self.cfg, self.task, self.m = cfg, task, cfg.method
        self.enabled = self.m.curriculum != "none"
        self.history: list[dict] = []
        self.levels: list[int] = []
        self.level = None
        if not self.enabled:
            return
        found = [p.meta.get("difficulty") for p in task.problems("train")]
        if not found or any(not isinstance(d, int) or isinstance(d, bool) for d in found):
            raise ConfigError(f"method.curriculum: task={task.name}'s training problems have no integer difficulty "
                              "levels to move through")
        self.levels = sorted(set(found))
        check_key(len(self.levels) > 1, "method.curriculum",
                  f"the training problems have one difficulty level ({self.levels[0]}); a curriculum needs two or more")
        held = {p.meta.get("difficulty") for p in task.problems("heldout")}
        missing = [lv for lv in self.levels if lv not in held]
        check_key(not missing, "method.curriculum",
                  f"no held-out problems at level {missing[0] if missing else ''} to judge it by; "
                  "raise the held-out split's size")
        self.level = self.levels[0]
        done = [r for r in rows if "curriculum/next_level" in r]
        if done:
            self.level = done[-1]["curriculum/next_level"]
            self.history = [{k.split("/", 1)[1]: r[k] for k in r if k.startswith("curriculum/")} |
                            {"step": r["iteration"]} for r in done]

    # -- which problems to train on ---------------------------------------------------------
    def train_problems(self, limit: int | None) -> list:
        """Expert iteration: the first `limit` training problems of the current level (all
        training problems, as without a curriculum, when it is off)."""
        if not self.enabled:
            return self.task.problems("train", limit=limit)
        return self.pool(self.task.problems("train"))[:limit]

    def pool(self, problems: list) -> list:
        """The problems of the current level (all of them when off)."""
        return problems if not self.enabled else [p for p in problems if p.meta.get("difficulty") == self.level]

    # -- after training -----------------------------------------------------------------------
    def check(self, model, tokenizer, step: int, run_dir: Path) -> dict:
        """Held-out accuracy at the current level after iteration/update `step`; move up when
        it reaches the threshold. Returns the figures for the method's log ({} when off or
        between checks)."""
        if not self.enabled or step % int(self.m.curriculum_every):
            return {}
        problems = self.pool(self.task.problems("heldout"))[:int(self.m.curriculum_problems)]
        done = rollouts(model, tokenizer, self.task, problems, int(self.m.curriculum_samples), self.cfg.decoding,
                        seed=int(self.cfg.seed) * 7919 + 31 * step, batch_size=int(self.cfg.eval.gen_batch_size))
        accuracy = sum(r.verdict.reward for r in done) / len(done)
        trained = self.level
        if accuracy >= float(self.m.curriculum_threshold) and trained != self.levels[-1]:
            self.level = self.levels[self.levels.index(trained) + 1]
        row = {"step": step, "level": trained, "accuracy": accuracy, "next_level": self.level,
               "problems": len(problems)}
        self.history.append(row)
        log.info("curriculum: step %d, level %s, held-out accuracy %.3f -> next level %s", step, trained, accuracy,
                 self.level)
        if is_main_process():
            self.save(Path(run_dir))
        return {f"curriculum/{k}": v for k, v in row.items() if k != "step"}

    def save(self, run_dir: Path) -> None:
        write_json(run_dir / "curriculum.json", {"levels": self.levels, "threshold": float(self.m.curriculum_threshold),
                                                 "history": self.history})
        plot_curriculum(self.history, self.levels, float(self.m.curriculum_threshold), run_dir / "curriculum.png",
                        self.cfg.method.name)

    # -- resume (polychromic's checkpoints) ---------------------------------------------------
    def state_dict(self) -> dict:
        return {"level": self.level, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.level, self.history = state["level"], list(state["history"])


def plot_curriculum(history: list[dict], levels: list[int], threshold: float, path: Path, method: str) -> None:
    """Two panels by iteration/update: the level trained on, and held-out accuracy at it with
    the threshold that moves training up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    steps = [r["step"] for r in history]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    top.step(steps, [r["level"] for r in history], where="post", marker="o")
    top.set_yticks(levels)
    top.set_ylabel("difficulty level trained on")
    bottom.plot(steps, [r["accuracy"] for r in history], marker="o", label="held-out accuracy at that level")
    bottom.axhline(threshold, color="gray", linestyle="--", label=f"threshold {threshold:g}")
    bottom.set_ylim(0, 1)
    bottom.set_xlabel("iteration" if method == "expert_iteration" else "update")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("mean reward")
    bottom.legend(fontsize="small")
    fig.suptitle(f"Curriculum ({method})")
    fig.tight_layout()
    save_figure(fig, path)


__all__ = ["CURRICULA", "Curriculum", "CurriculumConfig", "check_curriculum", "plot_curriculum"]
