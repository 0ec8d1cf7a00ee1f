"""Rollouts: k samples per problem from the current model, each verified by the task. The
generate -> verify half that every verifier-driven method shares (expert iteration,
polychromic RL), on the one sampler (evaluation/sampling: batched, left-padded, KV cache)."""

from __future__ import annotations

from dataclasses import dataclass

from metaexamples.evaluation.sampling import sample_completions
from metaexamples.evaluation.problems import Problem, Verdict


@dataclass
class Rollout:
    problem: Problem
    sample: int  # index among the problem's k samples
    tokens: list[int]  # the completion (stop sequence / EOS included)
    text: str
    logprob: float  # under the sampling model's raw distribution
    verdict: Verdict
    stop: str = "stop"  # how it ended: "stop" (the task's stop sequence), "eos" or "budget"


def rollouts(model, tokenizer, task, problems: list[Problem], k: int, dec, *, seed: int,
             batch_size: int, share_prompts: bool = True) -> list[Rollout]:
    """k completions per problem (problem-major order), verified in one batch. share_prompts:
    prefill a repeated prompt once (sampling.sample_completions; off where samples must be
    bit-identical to the unshared path, as the grammar task's eval_gen)."""
    spec = task.sampling(dec)
    repeated = [p for p in problems for _ in range(k)]
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    completions = sample_completions(model, [p.prompt_ids for p in repeated], dec, max_new_tokens=spec.max_new_tokens,
                                     pad_id=pad, eos_id=eos, batch_size=batch_size, seed=seed,
                                     stop_ids=spec.stop_ids, constraint=spec.constraint,
                                     share_prompts=share_prompts)
    verdicts = task.verify_many(repeated, [c.tokens for c in completions])
    return [Rollout(problem=p, sample=i % k, tokens=c.tokens, text=tokenizer.decode(c.tokens, skip_special_tokens=True),
                    logprob=c.logprob, verdict=v, stop=c.stop)
            for i, (p, c, v) in enumerate(zip(repeated, completions, verdicts))]


def rollout_rows(done: list[Rollout]) -> list[dict]:
    """Rollouts as JSON rows (problem id, sample, text, verdict, reward, extracted, logprob, and
    the prompt's and completion's token ids, so every verdict can be checked again from the file)."""
    return [{"id": r.problem.id, "sample": r.sample, "text": r.text, "verdict": r.verdict.kind,
             "reward": r.verdict.reward, "extracted": r.verdict.extracted, "logprob": r.logprob,
             "prompt_ids": list(r.problem.prompt_ids), "completion_ids": list(r.tokens)} for r in done]


def novel_flags(task, done: list[Rollout], seen: list) -> list:
    """Per rollout: True / False whether a rewarded sample's output is outside the task's known
    outputs plus `seen` (what the method trained on so far); None for an unrewarded sample or
    where the task has no notion of novelty (VerifiedTask.known_outputs is None)."""
    known = task.known_outputs(seen)
    out = []
    for r in done:
        x = r.verdict.extracted
        if known is None or r.verdict.reward < 1.0 or x is None:
            out.append(None)
        else:
            out.append((tuple(x) if isinstance(x, list) else x) not in known)
    return out
