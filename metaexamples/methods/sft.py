"""method=sft: supervised fine-tuning with the next-token loss on what the task provides
(the grammar task: its packed mixed stream; procedural problems: prompt/reference pairs,
the prompt unscored). Full fine-tuning, or LoRA with train.lora.enabled=true."""

from __future__ import annotations

from pathlib import Path

from metaexamples.methods import Method
from metaexamples.models import load_model, load_tokenizer
from metaexamples.schemas import result_config
from metaexamples.training import apply_lora, train_loop

# results.json `train` of method=sft holds the last in-training evaluation's figures under these
# names (eval_<name>) for every task, null where the task's monitor reports none (schema v1)
EVAL_NAMES = ("loss", "ppl", "valid_ppl", "invalid_ppl")


def load_trainable(cfg, task, lora: bool = True):
    """(model, tokenizer) to fine-tune: the configured model, checked against the task's
    data, with LoRA adapters if asked (train.lora.enabled and `lora`). Seeded first: LoRA's
    initialisation draws from torch's RNG."""
    from accelerate.utils import set_seed

    set_seed(int(cfg.seed))
    tokenizer = load_tokenizer(cfg.model, task.cache)
    model = load_model(cfg.model, tokenizer, task.cache, seed=int(cfg.seed))
    task.check_model(model, tokenizer)
    if lora and cfg.train.lora.enabled:
        model = apply_lora(model, cfg.train.lora)
    return model, tokenizer


class SFT(Method):
    name = "sft"
    trains_by_epochs = True

    def train(self, cfg, task, run_dir: Path, tracker) -> dict:
        t = cfg.train
        model, tokenizer = load_trainable(cfg, task)
        batches, objective = task.sft_setup(model, tokenizer, cfg)  # default: BlockBatches, CausalLMLoss
        return train_loop(t, model, tokenizer, batches, objective, run_dir, tracker,
                          monitor=task.monitor(int(t.batch_size), int(t.eval_batches)), job=result_config(cfg),
                          eval_names=EVAL_NAMES)
