"""Generation is expert iteration's cost: samples/s of our sampler (evaluation/sampling, what
evaluation/rollout and eval_verify use) against transformers' `generate` called the plain way
(do_sample=True, its own multinomial sampling), on the same left-padded prompt batches, the
same model, the same number of samples and the same budget.

Setting: the ei_procedural loop's generation: SmolLM2-135M-Instruct, chat-formatted arithmetic
prompts of different lengths (left-padded), 4 samples per problem, batch 100, 12 new tokens; and
the grammar loop's: tiny from the opening tag, batch 125. Rounds interleave the two so that a
disturbance on the shared machine hits both; medians of the rounds.

    .venv/bin/python benchmarks/bench_generation.py [--rounds 3] [--problems 50] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402

from metaexamples.config import register_configs  # noqa: E402
from metaexamples.evaluation.sampling import _left_pad, sample_completions  # noqa: E402
from metaexamples.models import load_model, load_tokenizer  # noqa: E402
from metaexamples.paths import cache_dir  # noqa: E402
from metaexamples.tasks import make_task  # noqa: E402


def compose_cfg(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "metaexamples" / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def plain_generate(model, prompts, batch_size: int, max_new: int, pad: int, eos: int, stop_ids) -> int:
    """transformers' generate the plain way (with the same stop sequence, so both stop alike);
    returns the number of samples."""
    from transformers import StoppingCriteriaList

    from metaexamples.evaluation.decoding import StopOnSequence

    stopping = StoppingCriteriaList([StopOnSequence(stop_ids)]) if stop_ids else None
    n = 0
    for start in range(0, len(prompts), batch_size):
        ids, mask = _left_pad([list(p) for p in prompts[start:start + batch_size]], pad)
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=max_new,
                           pad_token_id=pad, eos_token_id=eos, stopping_criteria=stopping)
        n += len(ids)
    return n


def measure(name: str, model, tokenizer, task, prompts, dec, batch_size: int, rounds: int) -> float:
    spec = task.sampling(dec)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    ours, plain = [], []
    for r in range(rounds):
        t0 = time.perf_counter()
        out = sample_completions(model, prompts, dec, max_new_tokens=spec.max_new_tokens, pad_id=pad, eos_id=eos,
                                 batch_size=batch_size, seed=r, stop_ids=spec.stop_ids, constraint=spec.constraint)
        ours.append(len(out) / (time.perf_counter() - t0))
        torch.manual_seed(r)
        t0 = time.perf_counter()
        n = plain_generate(model, prompts, batch_size, spec.max_new_tokens, pad, eos, spec.stop_ids)
        plain.append(n / (time.perf_counter() - t0))
    o, p = statistics.median(ours), statistics.median(plain)
    print(f"{name}: {len(prompts)} samples, batch {batch_size}, {spec.max_new_tokens} new tokens")
    print(f"  ours (evaluation/sampling)       {o:8.1f} samples/s   rounds: {', '.join(f'{x:.1f}' for x in ours)}")
    print(f"  transformers generate (plain)    {p:8.1f} samples/s   rounds: {', '.join(f'{x:.1f}' for x in plain)}")
    print(f"  ratio ours / plain               {o / p:8.2f}x  (target >= 1.0)")
    return o / p


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 when another job shares 2 cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cache = cache_dir(None)
    ratios = []
    cfg = compose_cfg(["experiment=ei_procedural", f"paths.cache_dir={cache}"])
    tokenizer = load_tokenizer(cfg.model, cache)
    task = make_task(cfg, tokenizer, cache)
    task.prepare_data()
    model = load_model(cfg.model, tokenizer, cache).eval()
    prompts = [p.prompt_ids for p in task.problems("train", limit=args.problems) for _ in range(4)]
    ratios.append(measure("procedural (SmolLM2-135M-Instruct, chat prompts)", model, tokenizer, task, prompts,
                          cfg.decoding, int(cfg.eval.gen_batch_size), args.rounds))

    gcfg = compose_cfg(["experiment=smoke", f"paths.cache_dir={cache}"])
    gtask = make_task(gcfg, tokenizer, cache)
    gtask.prepare_data()
    tiny = load_model(gcfg.model, tokenizer, cache, seed=0).eval()
    gprompts = [p.prompt_ids for p in gtask.problems("train")] * 500
    ratios.append(measure("grammar (tiny, opening-tag prompts)", tiny, tokenizer, gtask, gprompts, gcfg.decoding,
                          125, args.rounds))
    print(f"worst ratio {min(ratios):.2f}x")


if __name__ == "__main__":
    main()
