"""stage=eval_gen: sample from the model and say, for every sample, whether it is valid and
if not, why.

Through the verifier contract (GrammarTask): `task.n_samples` problems of split "gen" (the
opening tag, plus the first `task.seed_symbols` symbols of a training string drawn at random),
one rollout each (evaluation/rollout: the shared sampler under the task's `sampling`, judged
by the task's `verify`), and the task's `sample_metrics` (validity, failures, novelty).
A sample is the generated tokens up to and including the first complete closing tag (token
sequence `bundle.close_ids`); generation stops there, at EOS, or after max_new_tokens.
Verdict, first match wins:
  no_close       no closing tag within the budget (or EOS before it)
  foreign_token  a token between the tags that is not an alphabet symbol
  length         string length outside [grammar.min_len, grammar.max_len]
  rule           the language's is_valid rejects it
  valid
The seed symbols count as part of the string. Log-probability = sum of log p(token) of the
generated tokens (tag included) under the model's raw distribution, whatever the decoding.
Writes run_dir/eval_gen/: samples.jsonl, metrics.json, length_hist.png, calibration.png.
With grammar.eval_lengths, metrics.json's `by_length` holds validity per length bucket
(`validity_by_length`: half of a held-out string as the prompt, judged at the bucket's lengths).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from functools import partial
from pathlib import Path

from metaexamples.errors import ConfigError
from metaexamples.evaluation import plots
from metaexamples.evaluation.decoding import CLOSE_MARGIN, check_decoding
from metaexamples.evaluation.rollout import rollouts
from metaexamples.evaluation.sampling import find_subsequence, sample_completions
from metaexamples.evaluation.trained_on import trained_on
from metaexamples.io import write_json, write_jsonl
from metaexamples.tasks.grammar.constraints import make_constraint
from metaexamples.tasks.grammar.lengths import bucket_label, bucket_language, eval_buckets
from metaexamples.tasks.grammar.metrics import FAILURE_KINDS, generation_metrics

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("i", "text", "verdict", "length", "novel", "logprob", "stop")


def judge(body_tokens: list[int], closed: bool, symbol_of: dict[int, int], language) -> tuple[str, list[int] | None]:
    """(verdict, symbol string or None) for the tokens between the tags."""
    if not closed:
        return "no_close", None
    if any(t not in symbol_of for t in body_tokens):
        return "foreign_token", None
    symbols = [symbol_of[t] for t in body_tokens]
    if not language.min_len <= len(symbols) <= language.max_len:
        return "length", symbols
    if not language.is_valid(symbols):
        return "rule", symbols
    return "valid", symbols


def max_new_tokens(t, max_len: int, n_close: int) -> int:
    """The sampling budget: task.max_new_tokens, or (null) room for the longest string, its
    closing tag and a margin."""
    if t.get("max_new_tokens") is not None:
        if t.max_new_tokens <= 0:
            raise ConfigError(f"task.max_new_tokens: must be positive, got {t.max_new_tokens}")
        return int(t.max_new_tokens)
    return int(max_len) + n_close + CLOSE_MARGIN


def make_prompts(bundle, n: int, seed_symbols: int, seed: int, train_rows: list[dict]) -> list[list[int]]:
    """n prompts: the opening tag, plus the first k symbols of random training strings."""
    if seed_symbols == 0:
        return [bundle.open_ids] * n
    pool = [r["symbols"] for r in train_rows if r["kind"] == "example" and len(r["symbols"]) >= seed_symbols]
    if not pool:
        raise ConfigError(f"task.seed_symbols: no training string has {seed_symbols} symbols")
    rng = random.Random(f"{seed}:seed_prompts")
    return [bundle.open_ids + bundle.symbols_to_ids(rng.choice(pool)[:seed_symbols]) for _ in range(n)]


def sample(model, tokenizer, bundle, dec, prompts: list[list[int]], batch_size: int, max_new_tokens: int,
           seed: int, known: frozenset | None = None, language=None) -> list[dict]:
    """One sample per prompt (the shared sampler, stopped at the closing tag) judged by
    `language` (default: the data's); a valid sample is novel when not in `known` (default:
    the training strings)."""
    known = bundle.known_strings() if known is None else known
    language = language or bundle.language
    symbol_of = {t: i for i, t in enumerate(bundle.symbol_ids)}
    close, n_open = bundle.close_ids, len(bundle.open_ids)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    constraint = partial(make_constraint, dec.constraint, language=language, symbol_ids=bundle.symbol_ids,
                         close_ids=close, n_open=n_open)
    completions = sample_completions(model, prompts, dec, max_new_tokens=max_new_tokens, pad_id=pad, eos_id=eos,
                                     batch_size=batch_size, seed=seed, stop_ids=close, constraint=constraint)
    out = []
    for i, (prompt, c) in enumerate(zip(prompts, completions)):
        at = c.stop_at
        body = list(prompt[n_open:]) + c.tokens[:at] if at >= 0 else []
        verdict, symbols = judge(body, at >= 0, symbol_of, language)
        out.append(sample_row(i, prompt, c.tokens, at, verdict, symbols, c.logprob, c.stop, n_open, symbol_of,
                              tokenizer, known))
    return out


def sample_row(i: int, prompt: list[int], tokens: list[int], stop_at: int, verdict: str, symbols, logprob: float,
               stop: str, n_open: int, symbol_of: dict[int, int], tokenizer, known: frozenset) -> dict:
    """One samples.jsonl row: length counts the prompt's seed symbols and every token before
    the closing tag (None without one, stop_at < 0); a valid string is novel when not in `known`."""
    return {
        "i": i,
        "prompt_symbols": [symbol_of.get(t) for t in prompt[n_open:]],
        "tokens": tokens,
        "text": tokenizer.decode(tokens),
        "verdict": verdict,
        "symbols": symbols,
        "length": len(prompt) - n_open + stop_at if stop_at >= 0 else None,
        "novel": (tuple(symbols) not in known) if verdict == "valid" else None,
        "logprob": logprob,
        "stop": {"stop": "close"}.get(stop, stop),
    }


def sample_rows(done: list, bundle, tokenizer, known: frozenset) -> list[dict]:
    """samples.jsonl's rows from eval_gen's verified rollouts: the verdict and symbol string
    are the task's (`verify`)."""
    symbol_of = {t: i for i, t in enumerate(bundle.symbol_ids)}
    return [sample_row(i, r.problem.prompt_ids, r.tokens, find_subsequence(r.tokens, bundle.close_ids),
                       r.verdict.kind, r.verdict.extracted, r.logprob, r.stop, len(bundle.open_ids), symbol_of,
                       tokenizer, known)
            for i, r in enumerate(done)]


def run_eval_gen(task, model, tokenizer, run_dir: Path, tracker) -> dict:
    cfg, bundle = task.cfg, task.bundle
    out_dir = Path(run_dir) / "eval_gen"
    dec, grammar = cfg.decoding, bundle.grammar
    check_decoding(dec, task.constraints)  # bad settings fail before any work
    train_rows = bundle.split("train")
    problems = task.problems("gen")
    spec = task.sampling(dec)
    # One sample per prompt; shared prefills off, so the samples do not depend on which
    # prompts share a batch.
    done = rollouts(model, tokenizer, task, problems, 1, dec, seed=int(cfg.seed),
                    batch_size=int(cfg.eval.gen_batch_size), share_prompts=False)
    # Known strings: the training data and what a method fine-tuned this run's model on.
    seen = trained_on(run_dir)
    samples = sample_rows(done, bundle, tokenizer, task.known_outputs(seen))
    verified = task.sample_metrics([{"verdict": s["verdict"], "extracted": s["symbols"]} for s in samples], seen)

    by_length = validity_by_length(cfg, bundle, model, tokenizer) if eval_buckets(grammar) else None
    train_lengths = [len(r["symbols"]) for r in train_rows if r["kind"] == "example"]
    gen = {
        **generation_metrics(samples, verified, train_lengths, int(grammar["max_len"]),
                             int(cfg.task.calibration_buckets)),
        "decoding": dec.name,
        "max_new_tokens": spec.max_new_tokens,
        "seed_symbols": int(cfg.task.seed_symbols),
    }
    if by_length is not None:
        gen["by_length"] = by_length

    write_jsonl(out_dir / "samples.jsonl", samples)
    write_json(out_dir / "metrics.json", gen)
    title = f"{grammar['name']}, decoding={dec.name}"
    hist_png = plots.length_hist_plot(gen["length_hist"], out_dir / "length_hist.png", title)
    calib_png = plots.calibration_plot(gen["calibration"], out_dir / "calibration.png", title)

    n_log = int(cfg.logger.log_samples)
    tracker.table("gen/samples", SAMPLE_COLUMNS, [[s[c] for c in SAMPLE_COLUMNS] for s in samples[:n_log]])
    scalars = {f"gen/{k}": v for k, v in gen.items() if isinstance(v, (int, float, str))}
    scalars.update({f"gen/failures/{k}": v for k, v in gen["failures"].items()})
    scalars.update({f"gen/by_length/{b}/validity_rate": v["validity_rate"] for b, v in gen.get("by_length", {}).items()})
    tracker.summary(scalars)
    tracker.image("gen/length_hist", hist_png)
    tracker.image("gen/calibration", calib_png)
    log.info("eval_gen (%s): %d/%d valid, failures %s", dec.name, gen["valid"], gen["samples"], gen["failures"])
    return gen


def validity_by_length(cfg, bundle, model, tokenizer) -> dict:
    """Generation per length bucket (grammar.eval_lengths, training range first): prompt = the
    opening tag + the first half of a held-out valid string of the bucket (test_valid for the
    training range, test_long for the others; at most task.n_samples per bucket); a sample is
    valid when the whole string (prompt half included) is in the language at a length inside
    the bucket. {label: {"samples", "valid", "validity_rate", "failures", "in_training"}}."""
    dec, grammar = cfg.decoding, bundle.grammar
    lo, hi = int(grammar["min_len"]), int(grammar["max_len"])
    groups = {bucket_label(lo, hi): ((lo, hi), bundle.split("test_valid"))}
    long_rows = bundle.long_rows()
    for b_lo, b_hi in eval_buckets(grammar):
        label = bucket_label(b_lo, b_hi)
        groups[label] = ((b_lo, b_hi), [r for r in long_rows if r["bucket"] == label and r["valid"]])
    out = {}
    for label, ((b_lo, b_hi), rows) in groups.items():
        rows = rows[:int(cfg.task.n_samples)]
        language = bucket_language(grammar, b_lo, b_hi, len(bundle.symbol_ids))
        prompts = [bundle.open_ids + bundle.symbols_to_ids(r["symbols"][:len(r["symbols"]) // 2]) for r in rows]
        max_new = max_new_tokens(cfg.task, b_hi, len(bundle.close_ids))
        # one call per prompt length: decoding=grammar reads every row's prefix at the same offset
        by_prompt_length: dict[int, list] = {}
        for p in prompts:
            by_prompt_length.setdefault(len(p), []).append(p)
        samples = [s for _, group in sorted(by_prompt_length.items())
                   for s in sample(model, tokenizer, bundle, dec, group, int(cfg.eval.gen_batch_size), max_new,
                                   int(cfg.seed), frozenset(), language)]
        failures = Counter(s["verdict"] for s in samples if s["verdict"] != "valid")
        n_valid = sum(s["verdict"] == "valid" for s in samples)
        out[label] = {"samples": len(samples), "valid": n_valid,
                      "validity_rate": n_valid / len(samples) if samples else 0.0,
                      "failures": {k: failures.get(k, 0) for k in FAILURE_KINDS},
                      "in_training": (b_lo, b_hi) == (lo, hi)}
    return out
