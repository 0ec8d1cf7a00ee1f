"""The polychromic set objective: pure math, no model (numpy).

For one prompt with n samples, rewards r_1..r_n in [0, 1] and outputs o_1..o_n:

- sets: every s-subset of the n samples (all C(n, s) of them when there are at most
  `max_sets`; else `max_sets` sets drawn as blocks of seeded random permutations, so every
  sample lies in about the same number of sets);
- a set's diversity D(S) in [0, 1] (`DIVERSITIES`):
    distinct  |unique outputs in S| / s: the fraction of distinct outputs (1/s when all s are
              the same, 1 when all differ);
    edit      mean over the s(s-1)/2 pairs of S of the normalised Levenshtein distance
              lev(a, b) / max(|a|, |b|) (0 for two empty outputs; 0 when all s are the same);
- a set's score: `product`  f(S) = R(S) * D(S)^lam  (R(S) = mean reward of S; lam = 1 is the
  polychromic objective "mean reward x diversity", larger lam weighs diversity more), or
  `additive` f(S) = R(S) + lam * D(S);
- a sample's advantage: the mean score of the sets that contain it minus the mean over all the
  prompt's sets (the baseline), times kappa = s(n-1)/(n-s):

      A_i = kappa * (mean_{S contains i} f(S) - mean_S f(S)).

  Over all C(n, s) sets, mean_{S contains i} R(S) - mean_S R(S) = (r_i - mean r) / kappa
  exactly, so with h = f - R (the diversity contribution: R * (D^lam - 1), or lam * D)

      A_i = (r_i - mean r) + kappa * (mean_{S contains i} h(S) - mean_S h(S)):

  lam = 0 gives h = 0: exactly group-relative RL (reward minus the group mean; GRPO without the
  std division). The second term, the diversity part, credits the whole set together; where
  every set is equally diverse it is 0 (nothing to prefer). The code computes this form (the
  reward part in closed form, so lam = 0 stays exact when sets are sampled); tests check it
  against the definition on enumerated sets.

An output is what the verifier read out of the completion (`Verdict.extracted`: the symbol
string of a grammar sample, the answer of a procedural problem), or, where it read nothing, the
completion's tokens (stop sequence and EOS removed). Two outputs of different origin are
different (edit distance 1).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from metaexamples.sequence_distance import edit_distance

FORMS = ("product", "additive")


# --- outputs ------------------------------------------------------------------------------------
def normalised_edit(a: tuple, b: tuple) -> float:
    """lev(a, b) / max(|a|, |b|) in [0, 1] for two output keys; 1 across origins."""
    if a[0] != b[0]:
        return 1.0
    x, y = a[1], b[1]
    if not isinstance(x, (tuple, str)) or not isinstance(y, (tuple, str)):
        return float(x != y)
    longest = max(len(x), len(y))
    return edit_distance(x, y) / longest if longest else 0.0


# --- set diversity --------------------------------------------------------------------------------
def _distinct(keys: list[tuple], sets: np.ndarray) -> np.ndarray:
    index: dict[tuple, int] = {}
    ids = np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)
    ids = np.sort(ids[sets], axis=1)
    unique = 1 + (np.diff(ids, axis=1) != 0).sum(axis=1)
    return unique / sets.shape[1]


def _edit(keys: list[tuple], sets: np.ndarray) -> np.ndarray:
    n = len(keys)
    dist = np.zeros((n, n))
    for i, j in itertools.combinations(range(n), 2):
        dist[i, j] = dist[j, i] = normalised_edit(keys[i], keys[j])
    s = sets.shape[1]
    pairs = list(itertools.combinations(range(s), 2))
    return np.mean([dist[sets[:, a], sets[:, b]] for a, b in pairs], axis=0)


DIVERSITIES: dict[str, Callable[[list[tuple], np.ndarray], np.ndarray]] = {"distinct": _distinct, "edit": _edit}


def set_diversity(keys: list[tuple], sets: np.ndarray, kind: str) -> np.ndarray:
    """D(S) in [0, 1] for each row of `sets` (indices into `keys`)."""
    return DIVERSITIES[kind](keys, sets)


# --- sets -----------------------------------------------------------------------------------------
def make_sets(n: int, s: int, max_sets: int, rng: np.random.Generator) -> np.ndarray:
    """[m, s] sample indices: all C(n, s) subsets if m <= max_sets, else max_sets subsets taken
    as consecutive blocks of seeded random permutations of range(n) (balanced membership)."""
    if math.comb(n, s) <= max_sets:
        return np.array(list(itertools.combinations(range(n), s)), dtype=np.int64)
    blocks, per = [], n // s
    while len(blocks) < max_sets:
        perm = rng.permutation(n)
        blocks += [np.sort(perm[b * s:(b + 1) * s]) for b in range(per)]
    return np.stack(blocks[:max_sets])


def set_score(r: np.ndarray, d: np.ndarray, lam: float, form: str) -> np.ndarray:
    """f(S) from the sets' mean rewards r and diversities d."""
    return r * np.power(d, lam) if form == "product" else r + lam * d


def kappa(n: int, s: int) -> float:
    """s(n-1)/(n-s): the factor that makes the set credit of the reward equal r_i - mean r."""
    return s * (n - 1) / (n - s)


@dataclass
class SetAdvantages:
    """Per sample (flattened prompt-major, n per prompt): the advantage and its two parts,
    plus per-prompt means of the set statistics for logging."""

    advantage: np.ndarray  # reward_part + diversity_part
    reward_part: np.ndarray  # r_i - mean r (the group-relative advantage)
    diversity_part: np.ndarray  # kappa * (mean h over i's sets - mean h), h = f - R
    diversity: float  # mean D(S) over all sets of all prompts
    set_score: float  # mean f(S)
    reward: float  # mean r


def set_advantages(rewards: np.ndarray, keys: list[list[tuple]], *, s: int, lam: float, form: str,
                   diversity: str, max_sets: int = 2000, seed: int = 0) -> SetAdvantages:
    """rewards [P, n] (P prompts, n samples each), keys[p][i] the output key of sample i of
    prompt p -> SetAdvantages (the module docstring has the definitions)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    P, n = rewards.shape
    if not 2 <= s < n:
        raise ValueError(f"set size s={s} must satisfy 2 <= s < n={n}")
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; available: {', '.join(FORMS)}")
    rng = np.random.default_rng(seed)
    reward_part = rewards - rewards.mean(axis=1, keepdims=True)
    div_part = np.zeros_like(rewards)
    divs, scores = [], []
    for p in range(P):
        sets = make_sets(n, s, max_sets, rng)
        d = set_diversity(keys[p], sets, diversity)
        r = rewards[p][sets].mean(axis=1)
        f = set_score(r, d, lam, form)
        divs.append(d.mean())
        scores.append(f.mean())
        h = f - r
        if np.ptp(h) > 0:
            member = np.zeros((len(sets), n))
            np.put_along_axis(member, sets, 1.0, axis=1)
            credit = (member * h[:, None]).sum(0) / np.maximum(member.sum(0), 1)
            div_part[p] = kappa(n, s) * (credit - h.mean())
    return SetAdvantages(advantage=(reward_part + div_part).ravel(), reward_part=reward_part.ravel(),
                         diversity_part=div_part.ravel(), diversity=float(np.mean(divs)),
                         set_score=float(np.mean(scores)), reward=float(rewards.mean()))


def set_advantages_by_definition(rewards: np.ndarray, keys: list[list[tuple]], *, s: int, lam: float,
                                 form: str, diversity: str) -> np.ndarray:
    """The definition, literally, over all C(n, s) sets: kappa * (mean score of the sets that
    contain i - mean score of all sets). For tests (exponential in n)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    P, n = rewards.shape
    out = np.zeros_like(rewards)
    sets = np.array(list(itertools.combinations(range(n), s)))
    for p in range(P):
        d = set_diversity(keys[p], sets, diversity)
        r = rewards[p][sets].mean(axis=1)
        f = set_score(r, d, lam, form)
        for i in range(n):
            out[p, i] = kappa(n, s) * (f[(sets == i).any(axis=1)].mean() - f.mean())
    return out.ravel()
