"""Expert iteration's diversity-aware options: what is selected from an iteration's samples and
what the model is fine-tuned on (method.distinct, prefer_new, replay, epochs, budget).

Why: fine-tuning on verified samples alone, many passes over a small selection, collapses a
model onto its few selections (experiment=ei_grammar: g3 ended sampling one string 255 times
of 256). Each option removes one cause:
- `distinct`: at most one selection per distinct output per iteration, across problems (plain
  selection deduplicates per problem only), so no output is weighted by how often it was drawn;
- `prefer_new`: accepted outputs never selected in an earlier iteration are taken first, before
  the cap of m per problem (the cap otherwise keeps whatever came first);
- `replay`: a share of each fine-tuning set's blocks drawn from the task's SFT stream (the
  distribution the model started from), so fine-tuning does not forget it;
- `epochs`: the fine-tuning budget in passes over the iteration's set instead of a fixed number
  of optimizer steps (a fixed count is many passes over a small selection).
`budget`: the sampled completions the loop must use (iterations x problems x k), checked
against the settings so arms of one experiment compare at equal sampling cost.
"""

from __future__ import annotations

import math

import numpy as np

from metaexamples.errors import ConfigError, check_key
from metaexamples.evaluation.problems import output_key
from metaexamples.evaluation.rollout import Rollout
from metaexamples.tasks import SFTData, Task


def uses_diversity_options(m) -> bool:
    return bool(m.distinct or m.prefer_new)


def check_config_options(m, task_cls) -> None:
    """Before any stage runs (the config and the task's class tell)."""
    check_key(0.0 <= m.replay < 1.0, "method.replay", f"must be in [0, 1) (a share of the blocks), got {m.replay}")
    check_key(m.epochs is None or m.epochs > 0, "method.epochs", f"must be positive, got {m.epochs}")
    check_key(m.budget is None or m.budget > 0, "method.budget", f"must be positive, got {m.budget}")
    if uses_diversity_options(m) and task_cls.known_outputs is Task.known_outputs:
        key = "method.distinct" if m.distinct else "method.prefer_new"
        raise ConfigError(f"{key}: task={task_cls.name} has no notion of distinct outputs (no Task.known_outputs)")
    if m.replay > 0 and not (m.sft_steps or m.warmup_steps):
        raise ConfigError("method.replay: replays the SFT stream the run started from, and this run has no SFT "
                          "(set method.warmup_steps or method.sft_steps)")


def check_options(m, task, n_problems: int) -> None:
    """At train time, with the task's data: the SFT stream to replay, the sampling budget."""
    if m.replay > 0:
        try:
            task.sft_data()
        except ConfigError as err:
            raise ConfigError(f"method.replay: needs an SFT stream and task={task.name} has none ({err})") from None
    if m.budget is not None:
        used = int(m.iterations) * n_problems * int(m.k)
        check_key(used == int(m.budget), "method.budget",
                  f"expert iteration samples {m.iterations} iterations x {n_problems} problems x {m.k} = {used} "
                  f"completions, not the budget {m.budget}")


def selection_key(extracted, tokens) -> tuple:
    return output_key(extracted, tokens)


def select_diverse(done: list[Rollout], m: int, selected_before: set, distinct: bool,
                   prefer_new: bool) -> list[Rollout]:
    """Accepted samples (reward 1), deduplicated per problem, at most m per problem; with
    `distinct` at most one per output in the whole iteration; with `prefer_new` the outputs not
    in `selected_before` first (stable: otherwise in sampling order)."""
    accepted = [r for r in done if r.verdict.reward >= 1.0]
    if prefer_new:
        accepted.sort(key=lambda r: selection_key(r.verdict.extracted, r.tokens) in selected_before)
    kept, seen_tokens, seen_outputs, per_problem = [], set(), set(), {}
    for r in accepted:
        tokens, output = (r.problem.id, tuple(r.tokens)), selection_key(r.verdict.extracted, r.tokens)
        if tokens in seen_tokens or (distinct and output in seen_outputs) or per_problem.get(r.problem.id, 0) >= m:
            continue
        seen_tokens.add(tokens)
        seen_outputs.add(output)
        per_problem[r.problem.id] = per_problem.get(r.problem.id, 0) + 1
        kept.append(r)
    return kept


def with_replay(data, stream, share: float, seed: int):
    """SFTData of the selection plus round(share / (1 - share) x its blocks) blocks of the SFT
    stream (seeded; without replacement while the stream has enough), labels kept (a stream
    without labels is scored everywhere, as the SFT loop scores it)."""
    blocks, sblocks = np.asarray(data.blocks), np.asarray(stream.blocks)
    if blocks.shape[1] != sblocks.shape[1]:
        raise ConfigError(f"method.block_size: {blocks.shape[1]}, but the SFT stream replayed by method.replay has "
                          f"blocks of {sblocks.shape[1]} tokens; set method.block_size={sblocks.shape[1]}")
    n = round(share / (1.0 - share) * len(blocks))
    rng = np.random.default_rng([seed, 17])
    pick = rng.choice(len(sblocks), size=n, replace=n > len(sblocks))
    labels = np.asarray(data.labels) if data.labels is not None else blocks
    slabels = np.asarray(stream.labels)[pick] if stream.labels is not None else sblocks[pick]
    return SFTData(blocks=np.concatenate([blocks, sblocks[pick]]), labels=np.concatenate([labels, slabels]))


def fine_tune_steps(epochs: float | None, steps: int, n_blocks: int, blocks_per_step: int) -> int:
    """Optimizer steps of one iteration's fine-tuning: `epochs` passes over its n_blocks, else `steps`."""
    if epochs is None:
        return int(steps)
    return max(1, math.ceil(float(epochs) * n_blocks / blocks_per_step))


__all__ = ["check_config_options", "check_options", "fine_tune_steps", "select_diverse", "uses_diversity_options", "with_replay"]
