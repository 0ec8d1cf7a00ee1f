"""Checkpoints: run_dir/checkpoints/checkpoint-<step>/ holds

- the model in plain Hugging Face format (config.json, model.safetensors, tokenizer files):
  `AutoModelForCausalLM.from_pretrained(folder)` loads it in any tool (LoRA: merged weights);
- state/: what resuming needs, written by `accelerator.save_state` (optimizer state, every
  rank's RNG states, the scheduler and the trainer's progress). The weights are stored once,
  in the HF files above, and loaded from there on resume (`share_weights_with_hf_folder`);
  only LoRA (whose HF files hold merged weights) and FSDP keep accelerate's own copy in state/;
- checkpoint.json: the step, the config that decides the result (compared on resume: a run
  folder re-run with another config is refused, not silently continued) and the size of every
  file (a truncated file is named on resume instead of failing deep inside torch.load).

A checkpoint is built in a hidden `.checkpoint-<step>.tmp` folder and renamed into place once
every rank has written its part, so a killed run never leaves a half-written one behind.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import logging
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from metaexamples.errors import ConfigError
from metaexamples.io import honour_umask, with_filename, write_json

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
META = "checkpoint.json"
START_OVER = "or run with train.resume=false to start over"
log = logging.getLogger(__name__)


class _NoSharedTensorWarning(logging.Filter):
    """accelerate warns "Removed shared tensor ... while saving" for tied embeddings on every
    checkpoint (LoRA, FSDP): expected for tied weights, and alarming; drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Removed shared tensor" not in record.getMessage()


logging.getLogger("accelerate.utils.other").addFilter(_NoSharedTensorWarning())


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
    honour_umask(folder)  # model.safetensors comes out 0600


@contextmanager
def _removed_on_failure(tmp: Path):
    """A half-written checkpoint or model folder does not outlive the failure (a full disk):
    it is removed, and the error names the folder it was written into."""
    try:
        yield
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise with_filename(exc, tmp.parent) from None
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, Exception) and "no space left on device" in str(exc).lower():  # torch/safetensors' own errors
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp.parent)) from exc
        raise


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def save_checkpoint(accelerator, model, tokenizer, root: Path, step: int, keep: int,
                    config: dict | None = None) -> Path:
    """checkpoint-<step>/ with the HF model, state/ and checkpoint.json (`config`: what
    decides the result, compared on resume by `check_resumable`)."""
    final = root / f"checkpoint-{step:06d}"
    tmp = root / f".checkpoint-{step:06d}.tmp"  # the same name on every rank
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    with _removed_on_failure(tmp):
        export_hf(accelerator, model, tokenizer, tmp)
        accelerator.save_state(str(tmp / "state"), safe_serialization=True)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            honour_umask(tmp / "state")  # accelerate writes its weight copies (LoRA, FSDP) 0600
            files = {p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
            write_json(tmp / META, {"step": step, "config": config, "files": files})
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
    with _removed_on_failure(tmp):
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


def remove_checkpoints(root: Path) -> int:
    """Starting over in a folder (train.resume=false): drop its old checkpoints, so that none of
    them is mistaken later for this run's. Returns how many there were."""
    old = list_checkpoints(root)
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return len(old)


# -- resuming ------------------------------------------------------------------------------------
def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            out.update(_flat(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_differences(saved: dict, current: dict) -> list[str]:
    """`key: saved -> current` for every dotted key whose value differs."""
    a, b = _flat(saved), _flat(current)
    return [f"{k}: {a.get(k, '(unset)')!r} -> {b.get(k, '(unset)')!r}" for k in sorted(set(a) | set(b))
            if a.get(k, "(unset)") != b.get(k, "(unset)")]


def check_resumable(path: Path, config: dict | None) -> None:
    """Refuse, with one line, to resume from a checkpoint that is damaged (a file missing or of
    another size than when it was written) or that was made with another config than `config`.
    A checkpoint written before checkpoint.json existed is taken as it is."""
    meta_path = Path(path) / META
    if not meta_path.exists():
        log.warning("train: %s records no config (an older checkpoint): cannot check that it matches this run", path)
        return
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        files = dict(meta["files"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ConfigError(f"{meta_path}: unreadable ({type(exc).__name__}); delete {path} (the one before it is "
                          f"then used) {START_OVER}") from None
    for name, size in files.items():
        f = Path(path) / name
        have = f.stat().st_size if f.is_file() else None
        if have != size:
            what = "missing" if have is None else f"truncated or changed ({have} bytes, written as {size})"
            raise ConfigError(f"{f}: {what}; delete {path} (the one before it is then used) {START_OVER}")
    if config is not None and meta.get("config") is not None:
        diffs = config_differences(meta["config"], config)
        if diffs:
            more = f" (and {len(diffs) - 4} more)" if len(diffs) > 4 else ""
            raise ConfigError(
                f"train.resume: {path} was trained with another config ({'; '.join(diffs[:4])}{more}); "
                f"use another run folder (hydra.run.dir=...) for this config, {START_OVER} in this one")


def load_state(accelerator, path: Path) -> None:
    """accelerator.load_state(path/state), any failure one line naming the checkpoint."""
    try:
        accelerator.load_state(str(Path(path) / "state"))
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.load/safetensors/pickle errors of a damaged file
        detail = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise ConfigError(f"{Path(path) / 'state'}: cannot be loaded ({type(exc).__name__}: {detail}); delete {path} "
                          f"(the one before it is then used) {START_OVER}") from None


def _hf_model(accelerator, prepared):
    return accelerator.unwrap_model(prepared).model  # the prepared CausalLMLoss wrapper holds it


def share_weights_with_hf_folder(accelerator) -> None:
    """Store the weights once per checkpoint: accelerate's save_state skips the model (its HF
    files, written beside state/, hold the same weights) and load_state reads them from there.
    LoRA (the HF files hold merged weights) and FSDP (its own sharded files) are left to accelerate."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type not in (DistributedType.NO, DistributedType.MULTI_GPU, DistributedType.MULTI_CPU):
        return

    def plain(prepared) -> bool:
        return not hasattr(_hf_model(accelerator, prepared), "peft_config")

    def save_hook(models, weights, output_dir) -> None:
        if len(models) == len(weights) == 1 and plain(models[0]):
            weights.clear()  # (models is accelerate's own list: left alone)

    def load_hook(models, input_dir) -> None:
        state = Path(input_dir)
        if len(models) != 1 or not plain(models[0]) or any(state.glob("model*.safetensors")) \
                or any(state.glob("pytorch_model*.bin")):
            return  # accelerate's own copy is there (an older checkpoint): it loads that
        load_hf_weights(_hf_model(accelerator, models[0]), state.parent)
        models.clear()

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def load_hf_weights(model, folder: Path) -> None:
    """The weights of an HF folder (model.safetensors, or its shards) into `model`, in place;
    keys missing from the files must be tied to loaded ones (the output layer)."""
    from safetensors.torch import load_file

    files = sorted(Path(folder).glob("model*.safetensors"))
    if not files:
        raise ConfigError(f"{folder}: no model.safetensors; delete {folder} {START_OVER}")
    state: dict = {}
    for f in files:
        state.update(load_file(str(f)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    params = dict(model.named_parameters(remove_duplicate=False))
    loaded = {params[k].data_ptr() for k in state if k in params}
    untied = [k for k in missing if k not in params or params[k].data_ptr() not in loaded]
    if untied or unexpected:
        raise ConfigError(f"{folder}: its weights do not fit the model (missing {untied[:3]}, unexpected "
                          f"{list(unexpected)[:3]}); delete {folder} {START_OVER}")
