"""Numeric-model training benchmark (issues #14, #23): training speed of the numeric models
through the one training loop, against a plain transformers training step of the same size;
and the cost of the fluxem encoding against a training step.

    .venv/bin/python benchmarks/bench_numeric.py [--steps 40] [--repeats 3] [--threads 1] [--dataset arithmetic]
    .venv/bin/python benchmarks/bench_numeric.py --encoding [--dataset units]

--encoding: for model=numeric_fluxem, the time to build one training batch's inputs from text
with fluxem (`collate`: span detection, fluxem's 128-d number and unit embeddings, padding) with
fluxem's caches emptied first (every number encoded anew: the worst case; the loop itself
collates the training set once and then only indexes it), against the median time of one
training step of the same model and batch size through the loop; medians over `--repeats`
runs, and the same for the learned-features hybrid's encoder as the baseline. The target
(issue #23): encoding at most 10% of a step.

- plain: a `LlamaForCausalLM` with the numeric models' backbone config (hidden 128, 4 layers,
  4 heads, MLP 384, the 84-character vocabulary), trained with a plain loop: forward with
  labels, backward, `torch.optim.AdamW` step, zero_grad; on exactly the token-only model's
  batches (the same problems, "<bos>question=answer<eos>" characters, the question unscored).
- token-only / hybrid (regression, log_linear, algebraic): `method=sft`'s real path for
  task=numeric (`Task.sft_setup` -> NumericBatches + NumericObjective -> training/loop.py's
  `train_loop`: accelerate, grad clipping, fused AdamW, warmup-cosine schedule, batch trimmed
  to its longest row), on the small preset's training problems, batch 64.

What is timed: each optimisation step (the loop's own per-step window with train.log_steps=1:
data, forward, backward, clipping, optimizer and scheduler; no saving, no evaluation). A run's
rate = its tokens (non-pad positions actually fed: characters for plain and token-only, the
hybrid's positions, where each number is ONE position) over the median step time; also
problems/s, the fair comparison across models since every model sees the same problems.
Runs alternate plain / token-only / hybrids, `--repeats` times after one untimed warm-up run of
each; printed: medians over runs, and the ratios against plain (tokens/s for token-only, whose
inputs are identical; problems/s for all).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

CONF = str(Path(__file__).resolve().parents[1] / "metaexamples" / "conf")
MODELS = ("numeric_token_only", "numeric_hybrid", "numeric_hybrid_log_linear", "numeric_hybrid_algebraic",
          "numeric_fluxem")


def _cfg(model: str, dataset: str, steps: int, threads: int, cache: Path):
    from metaexamples.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=[
            "task=numeric", f"model={model}", f"task.dataset={dataset}", "logger=none", f"train.max_steps={steps}",
            "train.log_steps=1", "train.save_steps=0", "train.resume=false", f"train.num_threads={threads}",
            f"paths.cache_dir={cache}"])


def _setup(model_name: str, dataset: str, steps: int, threads: int, cache: Path):
    from metaexamples.methods.sft import load_trainable
    from metaexamples.models import load_tokenizer
    from metaexamples.tasks import make_task

    cfg = _cfg(model_name, dataset, steps, threads, cache)
    task = make_task(cfg, load_tokenizer(cfg.model, cache), cache)
    task.prepare_data()
    model, tok = load_trainable(cfg, task)
    batches, objective = task.sft_setup(model, tok, cfg)
    return cfg, model, tok, batches, objective


def _real_tokens(batches, steps: int) -> float:
    """Mean non-pad positions per step (batches.get(s, 0, 0); grad_accum 1, one process)."""
    keys = batches.keys
    return statistics.mean(int(b[keys.index("attention_mask")].sum()) for b in (batches.get(s, 0, 0) for s in range(steps)))


def run_ours(model_name: str, dataset: str, steps: int, threads: int, cache: Path) -> dict:
    from metaexamples.io import read_jsonl
    from metaexamples.tracking import Tracker
    from metaexamples.training import train_loop

    cfg, model, tok, batches, objective = _setup(model_name, dataset, steps, threads, cache)
    with tempfile.TemporaryDirectory() as run_dir:
        train_loop(cfg.train, model, tok, batches, objective, Path(run_dir), Tracker())
        rows = [r for r in read_jsonl(Path(run_dir) / "train" / "metrics.jsonl") if "train/tokens_per_s" in r]
    per_step_padded = int(cfg.train.batch_size) * batches.blocks.shape[1]
    seconds = [per_step_padded / r["train/tokens_per_s"] for r in rows[1:]]  # step 1: first-use costs
    step_s = statistics.median(seconds)
    tokens = _real_tokens(batches, steps)
    return {"step_s": step_s, "tokens_per_s": tokens / step_s, "problems_per_s": int(cfg.train.batch_size) / step_s,
            "tokens_per_step": tokens, "final_loss": rows[-1]["train/loss"]}


def run_plain(dataset: str, steps: int, threads: int, cache: Path) -> dict:
    """A plain transformers step on the token-only model's own batches."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg, token_model, _, batches, _ = _setup("numeric_token_only", dataset, steps, threads, cache)
    c = token_model.config
    config = LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                         num_attention_heads=c.num_attention_heads, num_key_value_heads=c.num_key_value_heads,
                         intermediate_size=c.intermediate_size, max_position_embeddings=c.max_position_embeddings,
                         tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(int(cfg.seed))
    model = LlamaForCausalLM(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=float(cfg.train.lr))
    keys = batches.keys
    seconds, loss = [], None
    for step in range(steps):
        batch = dict(zip(keys, batches.get(step, 0, 0)))
        start = time.perf_counter()
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
    step_s = statistics.median(seconds[1:])
    tokens = _real_tokens(batches, steps)
    return {"step_s": step_s, "tokens_per_s": tokens / step_s, "problems_per_s": int(cfg.train.batch_size) / step_s,
            "tokens_per_step": tokens, "final_loss": float(loss.detach())}


def encode_seconds(model_name: str, dataset: str, threads: int, cache: Path, n_batches: int = 20) -> float:
    """Median seconds to collate one training batch from text, caches emptied before each."""
    from metaexamples.models.numeric import collate, fluxem_codec

    cfg, model, _, _, _ = _setup(model_name, dataset, 1, threads, cache)
    from metaexamples.tasks import make_task

    rows = make_task(cfg, None, cache).rows("train")
    size = int(cfg.train.batch_size)
    seconds = []
    for k in range(n_batches):
        for cached in (fluxem_codec._number_embedding, fluxem_codec.unit_embedding):  # noqa: SLF001 - cold start
            cached.cache_clear()
        chunk = rows[(k * size) % len(rows):][:size]
        start = time.perf_counter()
        collate(model, chunk)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def encoding_main(args) -> None:
    out: dict[str, list[tuple[float, float]]] = {"numeric_fluxem": [], "numeric_hybrid": []}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        for name in out:  # warm-up
            run_ours(name, args.dataset, 4, args.threads, cache)
        for r in range(args.repeats):
            for name in out:
                enc = encode_seconds(name, args.dataset, args.threads, cache)
                step = run_ours(name, args.dataset, args.steps, args.threads, cache)["step_s"]
                out[name].append((enc, step))
                print(f"run {r + 1}/{args.repeats} {name:<16} encode {enc * 1000:6.2f} ms/batch  step "
                      f"{step * 1000:7.1f} ms  ratio {enc / step:.3f}", flush=True)
    print(f"\nmedians over {args.repeats} runs ({args.dataset}, small preset, batch 64, {args.threads} thread(s)):")
    for name, runs in out.items():
        enc, step = statistics.median(e for e, _ in runs), statistics.median(s for _, s in runs)
        print(f"{name:<16} encode {enc * 1000:6.2f} ms/batch (cold)  training step {step * 1000:7.1f} ms  "
              f"encoding / step {enc / step:.3f} (target <= 0.10)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", default="arithmetic", choices=("arithmetic", "units"))
    parser.add_argument("--encoding", action="store_true", help="fluxem encoding cost against a training step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.INFO)
    if args.encoding:
        encoding_main(args)
        return
    names = ("plain", *MODELS)
    results: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)

        def once(name: str, steps: int) -> dict:
            return run_plain(args.dataset, steps, args.threads, cache) if name == "plain" \
                else run_ours(name, args.dataset, steps, args.threads, cache)

        for name in names:  # warm-up: first-use costs of the process
            once(name, 4)
        for r in range(args.repeats):
            for name in names:
                results[name].append(once(name, args.steps))
                m = results[name][-1]
                print(f"run {r + 1}/{args.repeats} {name:<26} {m['step_s'] * 1000:7.1f} ms/step  "
                      f"{m['tokens_per_s']:9.0f} tokens/s  {m['problems_per_s']:7.1f} problems/s", flush=True)

    def med(name: str, key: str) -> float:
        return statistics.median(m[key] for m in results[name])

    print(f"\nmedians over {args.repeats} runs ({args.dataset}, small preset, batch 64, {args.steps} steps, "
          f"{args.threads} thread(s)):")
    print(f"{'':<26} {'ms/step':>8} {'tokens/step':>12} {'tokens/s':>10} {'problems/s':>11} "
          f"{'tokens/s vs plain':>18} {'problems/s vs plain':>20}")
    for name in names:
        ratio_tokens = med(name, "tokens_per_s") / med("plain", "tokens_per_s")
        print(f"{name:<26} {med(name, 'step_s') * 1000:8.1f} {med(name, 'tokens_per_step'):12.0f} "
              f"{med(name, 'tokens_per_s'):10.0f} {med(name, 'problems_per_s'):11.1f} {ratio_tokens:17.2f}x "
              f"{med(name, 'problems_per_s') / med('plain', 'problems_per_s'):19.2f}x")
    print("(tokens: non-pad positions fed; the hybrid feeds each number as one position, so its "
          "tokens/s is not the same unit: compare problems/s)")
    for name in names:
        rates = [m["problems_per_s"] for m in results[name]]
        if len(rates) > 1 and max(rates) > 1.3 * min(rates):
            print(f"warning: {name}: runs differ by more than 30% ({min(rates):.1f}-{max(rates):.1f} problems/s): "
                  "the machine is busy")


if __name__ == "__main__":
    main()
