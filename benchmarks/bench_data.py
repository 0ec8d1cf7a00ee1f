"""Data-stage benchmark: time to generate one grammar's default data (about 20,000 synthetic
items, all splits, the packed streams) into a fresh cache, and the rate at 10x that size.

    .venv/bin/python benchmarks/bench_data.py [--grammar g2] [--repeats 3] [--scale 10]

Prints the median wall time of the default size (target: <= 5 s on the 2-core dev machine),
items/s at both sizes and their ratio (near 1 = cost linear in size). The tokenizer is
loaded once beforehand (its load is not part of the data stage).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from metaexamples.config import register_configs
from metaexamples.tasks.grammar.build import run_data_stage
from metaexamples.tasks.grammar.bundle import load_bundle
from metaexamples.models import load_tokenizer

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def timed_build(cfg, tokenizer) -> tuple[float, int]:
    """Seconds for one cold build and the number of items written (train + held-out rows)."""
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        folder = run_data_stage(cfg, tokenizer, Path(root))
        seconds = time.perf_counter() - start
        counts = load_bundle(folder).manifest["counts"]
        return seconds, sum(counts[k] for k in ("train", "eval", "test_valid", "test_invalid"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grammar", default="g2")
    ap.add_argument("--condition", default="meta_5pct")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scale", type=int, default=10)
    args = ap.parse_args()
    register_configs()
    tokenizer = load_tokenizer(OmegaConf.create({"source": "scratch", "tokenizer": "smollm2", "path": None}))
    base = [f"grammar={args.grammar}", f"condition={args.condition}"]
    cfg = compose_cfg(base)
    d = cfg.data

    runs = [timed_build(cfg, tokenizer) for _ in range(args.repeats)]
    median = statistics.median(s for s, _ in runs)
    items = runs[0][1]
    rate = items / median
    print(f"default  grammar={args.grammar} condition={args.condition} n_train_items={d.n_train_items} "
          f"n_eval={d.n_eval} n_test={d.n_test}: {items} items")
    print(f"  wall time median of {args.repeats}: {median:.2f} s  (runs: {', '.join(f'{s:.2f}' for s, _ in runs)})"
          f"  target <= 5 s: {'OK' if median <= 5 else 'OVER'}")
    print(f"  rate: {rate:,.0f} items/s")

    k = args.scale
    big = compose_cfg(base + [f"data.n_train_items={d.n_train_items * k}", f"data.n_eval={d.n_eval * k}",
                              f"data.n_test={d.n_test * k}"])
    seconds, big_items = timed_build(big, tokenizer)
    big_rate = big_items / seconds
    print(f"x{k}      {big_items} items: {seconds:.2f} s, rate {big_rate:,.0f} items/s")
    print(f"rate ratio (x{k} / default): {big_rate / rate:.2f}  (1.0 = linear cost)")


if __name__ == "__main__":
    main()
