"""Checkpoints: run_dir/checkpoints/checkpoint-<step>/ holds

- the model in plain Hugging Face format (config.json, model.safetensors, tokenizer files):
  `AutoModelForCausalLM.from_pretrained(folder)` loads it in any tool (LoRA: merged weights);
- state/: what resuming needs, written by `accelerator.save_state` (model and optimizer state,
  every rank's RNG states, the scheduler and the trainer's progress).

A checkpoint is built in a hidden `.checkpoint-<step>.tmp` folder and renamed into place once
every rank has written its part, so a killed run never leaves a half-written one behind.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def export_hf(accelerator, model, tokenizer, folder: Path) -> None:
    """Write `model` (unwrapped; LoRA merged) and `tokenizer` to `folder` in HF format.
    Every rank must call it (FSDP gathers the full state dict); the main process writes."""
    # `model` is the prepared CausalLMLoss wrapper: the HF model is its `.model`.
    state = {k.removeprefix("model."): v for k, v in accelerator.get_state_dict(model).items()}
    if not accelerator.is_main_process:
        return
    folder.mkdir(parents=True, exist_ok=True)
    unwrapped = accelerator.unwrap_model(model).model
    if hasattr(unwrapped, "merge_and_unload"):  # a peft (LoRA) model: save merged plain weights
        copy.deepcopy(unwrapped).merge_and_unload().save_pretrained(folder, safe_serialization=True)
    else:
        unwrapped.save_pretrained(folder, state_dict=state, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def save_checkpoint(accelerator, model, tokenizer, root: Path, step: int, keep: int) -> Path:
    final = root / f"checkpoint-{step:06d}"
    tmp = root / f".checkpoint-{step:06d}.tmp"  # the same name on every rank
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    export_hf(accelerator, model, tokenizer, tmp)
    accelerator.save_state(str(tmp / "state"), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _replace_dir(tmp, final)
        for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def export_final(accelerator, model, tokenizer, folder: Path) -> None:
    """The run's final model (run_dir/model), replaced atomically."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    export_hf(accelerator, model, tokenizer, tmp)
    if accelerator.is_main_process:
        _replace_dir(tmp, folder)
    accelerator.wait_for_everyone()


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := CHECKPOINT.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: Path) -> Path | None:
    done = [p for p in list_checkpoints(root) if (p / "state").is_dir()]
    return done[-1] if done else None


def checkpoint_step(path: Path) -> int:
    return int(CHECKPOINT.match(path.name).group(1))
