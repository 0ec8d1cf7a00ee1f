"""GPU training throughput through the real CLI: tokens/s and model FLOPs utilisation (MFU)
of the OLMo-1B architecture in bf16, single process and under `accelerate launch`.

    python benchmarks/bench_gpu_train.py [--steps 40] [--batch 8] [--block 1024] [--peak-tflops 989] [--fsdp]
    python benchmarks/bench_gpu_train.py --model tiny --block 128 --steps 20 --peak-tflops 0.2   # CPU check

MFU = achieved model FLOP/s / peak, with FLOPs per token = 6 N + 12 L d T (N parameters, L
layers, d hidden size, T block length: the PaLM appendix-B count, attention included).
Peak: dense bf16 of the GPU (H100 SXM: 989 TFLOP/s). tokens/s is the median of the logged
windows after the first (which holds the warm-up). Run folders go to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(launcher: list[str], name: str, args, root: Path, extra: list[str]) -> dict:
    run_dir = root / name
    cmd = launcher + ["-m", "metaexamples", "stages=[data,train]", f"model={args.model}", "train=gpu",
                      "logger=none", f"data.block_size={args.block}", f"train.batch_size={args.batch}",
                      "train.grad_accum=1", f"train.max_steps={args.steps}", "train.log_steps=10",
                      f"train.eval_steps={args.steps}", "train.eval_batches=4", "train.save_steps=0",
                      f"hydra.run.dir={run_dir}", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        print(f"{name}: FAILED\n{proc.stderr[-3000:]}")
        return {}
    rows = [json.loads(line) for line in (run_dir / "train" / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["train/tokens_per_s"] for r in rows if "train/tokens_per_s" in r][1:]
    results = json.loads((run_dir / "results.json").read_text())
    return {"tokens_per_s": statistics.median(speeds), "train": results["train"], "timings": results["timings"]}


def model_flops_per_token(model: str, block: int) -> tuple[float, int]:
    import yaml

    arch = yaml.safe_load((Path(__file__).resolve().parents[1] / f"conf/model/{model}.yaml").read_text())["arch"]
    d, layers, ff, vocab = arch["hidden_size"], arch["num_hidden_layers"], arch["intermediate_size"], 49152
    params = vocab * d + layers * (4 * d * d + 3 * d * ff + 2 * d) + d  # tied embedding (SmolLM2 vocab), norms
    return 6 * params + 12 * layers * d * block, params


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="olmo_1b_arch", help="a conf/model option with source: scratch")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--fsdp", action="store_true", help="also run train.distributed=fsdp under torchrun")
    args = ap.parse_args()
    import torch

    gpus = torch.cuda.device_count()
    if not gpus and args.model == "olmo_1b_arch":
        print("bench_gpu_train: no GPU here, skipped (a 1.2 B model on CPU says nothing about GPU throughput; "
              "--model tiny --block 128 checks the script itself)")
        return
    device = f"{torch.cuda.get_device_name(0)} x {gpus}" if gpus else "CPU (no GPU: fp32, one process)"
    flops, params = model_flops_per_token(args.model, args.block)
    print(f"device: {device}; model: {args.model}, {params / 1e9:.3f} B parameters; "
          f"batch {args.batch} x {args.block} tokens per process, {args.steps} steps")
    procs = max(gpus, 1)
    launchers = {  # slug: (label, launcher, extra overrides)
        "single": ("single process (python -m)", [sys.executable], []),
        "accelerate": (f"accelerate launch, {procs} process(es)",
                       [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(procs),
                        "--mixed_precision", "bf16" if gpus else "no", "--dynamo_backend", "no"]
                       + (["--multi_gpu"] if gpus > 1 else []), []),
    }
    if args.fsdp and gpus:
        launchers["fsdp"] = (f"torchrun FSDP, {gpus} process(es)",
                             [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(gpus)],
                             ["train.distributed=fsdp"])
    with tempfile.TemporaryDirectory() as tmp:
        for slug, (name, launcher, extra) in launchers.items():
            out = run(launcher, slug, args, Path(tmp), extra)
            if not out:
                continue
            tps = out["tokens_per_s"]
            mfu = tps * flops / (args.peak_tflops * 1e12 * max(1, out["train"]["world_size"]))
            print(f"{name}: {tps:,.0f} tokens/s, MFU {mfu:.1%} (peak {args.peak_tflops:g} TFLOP/s per process), "
                  f"world {out['train']['world_size']}, precision {out['train']['mixed_precision']}, "
                  f"final loss {out['train']['final_loss']:.3f}, train stage {out['timings']['train']:.1f} s")


if __name__ == "__main__":
    main()
