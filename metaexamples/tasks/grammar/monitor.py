"""In-training evaluation, every `train.eval_steps`: loss and perplexity on the held-out
mixed stream (eval_blocks.npy), and the mean per-string perplexity of held-out valid and
invalid strings (the eval split), so discrimination can be watched while training.

    eval/loss        mean token NLL over the first train.eval_batches batches of eval blocks
    eval/ppl         exp(eval/loss)
    eval/valid_ppl   mean per-string perplexity (scoring.py's definition) of valid eval strings
    eval/invalid_ppl the same for invalid eval strings
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from metaexamples.evaluation.scoring import score_strings


class Monitor:
    def __init__(self, bundle, batch_size: int, eval_batches: int) -> None:
        n = batch_size * eval_batches
        self.blocks = torch.from_numpy(bundle.blocks("eval")[:n].astype(np.int64))
        rows = bundle.split("eval")
        self.valid = [r["ids"] for r in rows if r["valid"]][:n]
        self.invalid = [r["ids"] for r in rows if not r["valid"]][:n]
        self.open_ids, self.close_ids = bundle.open_ids, bundle.close_ids
        self.batch_size = batch_size

    def __call__(self, model, accelerator) -> dict:
        """`model` is the prepared CausalLMLoss wrapper. Every rank runs the same evaluation (a
        sharded model needs them all); the main process logs it."""
        model.eval()
        total, tokens = 0.0, 0
        with torch.no_grad(), accelerator.autocast():
            for start in range(0, len(self.blocks), self.batch_size):
                batch = self.blocks[start:start + self.batch_size].to(accelerator.device)
                n = batch.shape[0] * (batch.shape[1] - 1)
                total += float(model(batch)) * n
                tokens += n
            out = {}
            if tokens:
                out["eval/loss"] = total / tokens
                out["eval/ppl"] = math.exp(min(out["eval/loss"], 50.0))
            with _full_params(model):
                lm = accelerator.unwrap_model(model).model
                # One call for both: invalid strings are edits of valid ones and share their prefixes.
                scores = score_strings(lm, self.open_ids, self.valid + self.invalid, self.close_ids,
                                       self.batch_size * 4)
                parts = {"valid": scores[:len(self.valid)], "invalid": scores[len(self.valid):]}
                for name, part in parts.items():
                    if part:
                        out[f"eval/{name}_ppl"] = float(np.mean([s["ppl"] for s in part]))
        model.train()
        return out


def _full_params(model):
    """Under FSDP the string scorer calls the inner model directly: gather its weights first."""
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    if isinstance(model, FSDP):
        return FSDP.summon_full_params(model, writeback=False)
    return contextlib.nullcontext()
