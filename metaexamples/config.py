"""The job config as a whole: every schema registered with Hydra (the shared groups' from
metaexamples/schemas.py, each task's and method's own), `validate` (ranges and cross-field
rules, the task's and method's own checks; a one-line ConfigError naming the key).
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from metaexamples.errors import check_key
from metaexamples.evaluation.decoding import check_decoding
from metaexamples.launch import on_cpu
from metaexamples.methods import available as available_methods, make_method, method_class
from metaexamples.models.loading import SOURCES, check_model_config, model_kind
from metaexamples.paths import cache_dir
from metaexamples.schemas import GROUP_SCHEMAS, MethodConfig, TaskConfig
from metaexamples.tasks import available as available_tasks, task_class


def register_configs() -> None:
    cs = ConfigStore.instance()
    for group, node in GROUP_SCHEMAS.items():
        cs.store(group=f"schema/{group}", name="base", node=node)
    for name in available_tasks():
        for group, node in task_class(name).group_schemas.items():  # a task's own groups
            cs.store(group=f"schema/{group}", name="base", node=node)
        cs.store(group="schema/task", name=name, node=task_class(name).config_schema or TaskConfig)
    for name in available_methods():
        cs.store(group="schema/method", name=name, node=method_class(name).config_schema or MethodConfig)


def validate(cfg: DictConfig) -> None:
    """Range and cross-field checks, the task's own included; the first failure raises a
    one-line ConfigError naming the key."""
    task = task_class(cfg.task.name)
    stages = ("data", "train", *task.all_eval_stages())
    check_key(isinstance(cfg.get("seed"), int) and not isinstance(cfg.seed, bool), "seed",
              f"must be an integer, got {cfg.get('seed')!r}")
    check_key(0 <= cfg.seed < 2**32, "seed", f"must be in [0, 2^32), got {cfg.seed}")
    min_seeds = cfg.get("min_seeds", 1)
    check_key(isinstance(min_seeds, int) and not isinstance(min_seeds, bool) and min_seeds >= 1, "min_seeds",
              f"must be an integer >= 1, got {min_seeds!r}")
    for stage in cfg.stages:
        check_key(stage in stages, "stages",
                  f"unknown stage {stage!r} for task={task.name}; available: {', '.join(stages)}")
    make_method(cfg.method.name).check_config(cfg, task)
    check_key(len(cfg.stages) > 0, "stages", f"is empty; pick at least one of: {', '.join(stages)}")
    t = cfg.train
    _check_epochs(t, method_class(cfg.method.name))
    for key in ("batch_size", "grad_accum", "eval_steps", "log_steps", "eval_batches"):
        check_key(t[key] > 0, f"train.{key}", f"must be positive, got {t[key]}")
    check_key(0.0 <= t.min_lr_ratio <= 1.0, "train.min_lr_ratio", f"must be in [0, 1], got {t.min_lr_ratio}")
    check_key(t.weight_decay >= 0, "train.weight_decay", f"must be >= 0, got {t.weight_decay}")
    check_key(t.max_grad_norm >= 0, "train.max_grad_norm", f"must be >= 0 (0 = no clipping), got {t.max_grad_norm}")
    check_key(t.num_threads >= 0, "train.num_threads", f"must be >= 0 (0 = all cores), got {t.num_threads}")
    check_key(t.keep_checkpoints >= 0, "train.keep_checkpoints",
              f"must be >= 0 (0 = keep all), got {t.keep_checkpoints}")
    check_key(t.lr > 0, "train.lr", f"must be positive, got {t.lr}")
    check_key(t.warmup_steps >= 0, "train.warmup_steps", f"must be >= 0, got {t.warmup_steps}")
    check_key(t.save_steps >= 0, "train.save_steps", f"must be >= 0, got {t.save_steps}")
    check_key(t.precision in ("auto", "fp32", "bf16", "fp16"), "train.precision",
              f"unknown {t.precision!r}; available: auto, fp32, bf16, fp16")
    check_key(t.distributed in ("ddp", "fsdp"), "train.distributed",
              f"unknown {t.distributed!r}; available: ddp, fsdp")
    _check_hardware(t)
    _check_lora(t.lora)
    m = cfg.model
    check_key(m.source in SOURCES, "model.source", f"unknown {m.source!r}; available: {', '.join(SOURCES)}")
    check_key(model_kind(m) in task.model_kinds, "model",
              f"model={m.name} is a {model_kind(m)} model (model.source={m.source}) and task={task.name} takes "
              f"{' or '.join(task.model_kinds)} models")
    check_model_config(m)  # the model source's own checks (model.arch of a model from scratch, ...)
    check_decoding(cfg.decoding, task.constraints)  # the task re-checks with its own constraints
    _check_greedy(cfg.decoding)
    mnt = cfg.decoding.get("max_new_tokens")
    check_key(mnt is None or mnt > 0, "decoding.max_new_tokens",
              f"must be positive (or null: the task's default), got {mnt}")
    e = cfg.eval
    for key in ("batch_size", "n_samples", "gen_batch_size", "calibration_buckets", "set_problems", "set_samples"):
        check_key(e[key] > 0, f"eval.{key}", f"must be positive, got {e[key]}")
    if task.has_verifier:  # eval.set_* are read by the shared eval_sets stage
        check_key(len(e.set_ks) > 0, "eval.set_ks", "is empty: eval_sets would report no pass@k; e.g. eval.set_ks=[1,5]")
        for k in e.set_ks:
            check_key(1 <= k <= e.set_samples, "eval.set_ks",
                      f"pass@{k} needs 1 <= k <= eval.set_samples ({e.set_samples})")
    lg = cfg.logger
    check_key(lg.backend in ("wandb", "none"), "logger.backend",
              f"unknown {lg.backend!r}; available: wandb, none")
    check_key(lg.mode in ("offline", "online"), "logger.mode",
              f"unknown {lg.mode!r}; available: offline, online")
    task.check_config(cfg)
    _check_cache_dir(cfg)  # last: it makes the cache folder, which a refused config must not leave behind


def _check_hardware(t) -> None:
    """Settings this machine and launch cannot honour: refused, not recorded and ignored."""
    import os

    if on_cpu():
        check_key(t.precision != "fp16", "train.precision",
                  "fp16 needs a GPU (on a CPU it would run fp32 under an fp16 label); use auto, fp32 or bf16")
    if t.distributed == "fsdp":
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        check_key(world > 1 and not on_cpu(), "train.distributed",
                  "fsdp shards a model over several GPU processes and this is "
                  f"{'a CPU run' if on_cpu() else 'one process'}; launch with `accelerate launch "
                  "--config_file conf/accelerate/fsdp.yaml -m metaexamples ...`, or use train.distributed=ddp")


def _check_lora(lora) -> None:
    """train.lora.* when LoRA is on (off, they are not read)."""
    if not lora.enabled:
        return
    check_key(lora.r > 0, "train.lora.r", f"must be positive, got {lora.r}")
    check_key(lora.alpha > 0, "train.lora.alpha", f"must be positive, got {lora.alpha}")
    check_key(0.0 <= lora.dropout < 1.0, "train.lora.dropout", f"must be in [0, 1), got {lora.dropout}")
    check_key(len(lora.target_modules) > 0, "train.lora.target_modules", "is empty: LoRA would train nothing")


def _check_epochs(t, method) -> None:
    """train.epochs and train.max_steps: exactly one of them, a positive integer."""
    epochs, steps = t.get("epochs"), t.max_steps
    check_key(epochs is None or steps is None, "train.epochs",
              f"({epochs}) and train.max_steps ({steps}) are both set; keep one (train.max_steps=null to train by epochs)")
    key, value = ("train.epochs", epochs) if epochs is not None else ("train.max_steps", steps)
    check_key(value is not None, "train.max_steps", "and train.epochs are both null; set one of them")
    check_key(value > 0, key, f"must be positive, got {value}")
    check_key(epochs is None or method.trains_by_epochs, "train.epochs",
              f"counts passes over a fixed training set; method={method.name} takes train.max_steps")


def _check_greedy(dec) -> None:
    """Greedy decoding (do_sample=false, or temperature 0) ignores temperature, top_k and top_p:
    refuse them rather than silently decode greedily."""
    if dec.do_sample and dec.temperature > 0:
        return
    why = "decoding.do_sample=false" if not dec.do_sample else "decoding.temperature=0"
    ignored = [(key, dec[key]) for key, off in (("top_k", 0), ("top_p", 1.0)) if dec[key] != off]
    if not dec.do_sample and dec.temperature not in (0, 1.0):
        ignored.insert(0, ("temperature", dec.temperature))
    for key, value in ignored:
        check_key(False, f"decoding.{key}", f"{value} has no effect with greedy decoding ({why}); drop it, "
                  "or sample with decoding=sample (or low_temp, top_k, top_p) to use it")


def _check_cache_dir(cfg) -> None:
    """paths.cache_dir (or $METAEXAMPLES_CACHE) must be a folder, or not exist yet below one."""
    root = cache_dir(cfg.get("paths"))
    p = root
    while not p.exists() and p != p.parent:
        p = p.parent
    check_key(p.is_dir(), "paths.cache_dir", f"{p} is a file, not a folder; point paths.cache_dir "
              "(or $METAEXAMPLES_CACHE) at a folder")
    try:  # made now: a folder that cannot be made (under /proc, read-only) is named before any stage
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        check_key(False, "paths.cache_dir", f"{root}: cannot be created ({exc.strerror or exc}); point "
                  "paths.cache_dir (or $METAEXAMPLES_CACHE) at a folder you can write to")
