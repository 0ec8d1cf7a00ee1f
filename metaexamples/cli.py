"""The Hydra entrypoint: `metaexamples [overrides]`, `metaexamples -m ...` for sweeps.

A thin wrapper: validate the config, open this job's W&B run and results.json, run the
stages, and always close both, marked failed when the job failed. Bad input of any kind (a
value out of range, an unknown option or key, a file that cannot be written or read back) is
one line, `error: ...`, and exit code 2, in a single run and in a sweep alike; Hydra's own
errors included. A run ends with a summary of its key numbers; a sweep with its report command.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if not sys.stderr.isatty():
    # tqdm bars redraw with carriage returns: in a log file (a cluster job, `> log 2>&1`) that is
    # one ever-growing line. Libraries' own bars (transformers' GGUF conversion) take this
    # default when tqdm is imported, after this line; ours log lines instead.
    os.environ.setdefault("TQDM_DISABLE", "1")

import hydra  # noqa: E402
from hydra.experimental.callback import Callback  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from metaexamples.config import register_configs, validate  # noqa: E402
from metaexamples.errors import ConfigError  # noqa: E402
from metaexamples.launch import is_main_process  # noqa: E402
from metaexamples.methods import REGISTRY, method_class  # noqa: E402
from metaexamples.paths import cache_dir  # noqa: E402
from metaexamples.pipeline import check_eval_model, run_stages  # noqa: E402
from metaexamples.rendering import fmt, get  # noqa: E402
from metaexamples.results import Results  # noqa: E402
from metaexamples.schemas import moved_key_message, result_config  # noqa: E402
from metaexamples.sweep_jobs import override_values, sweep_plan  # noqa: E402
from metaexamples.tasks import task_class  # noqa: E402
from metaexamples.tracking import Tracker, start_tracker  # noqa: E402
from metaexamples.training.checkpoint import check_resumable, latest_checkpoint  # noqa: E402

log = logging.getLogger("metaexamples")
CONF_DIR = str(Path(__file__).resolve().parent / "conf")  # shipped in the package; conf/ at the repo root links here
BAD_INPUT = 2  # the exit code of bad input (README)
_exit_code = 0  # set by a failed single run; main() exits with it after Hydra returns
# OSErrors that are the user's to fix (a folder not writable, a file where a folder should be, a full disk)
_USER_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOSPC,
                errno.EDQUOT}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _chain(exc: BaseException):
    """The exception and its explicit causes (`raise ... from cause`): not exceptions that
    merely happened while handling another, which could hide a bug behind a bad input."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__


def describe_error(exc: BaseException, places: dict[str, Path] | None = None) -> str | None:
    """The one line for an exception that is bad input (ConfigError, Hydra's composition and
    override errors, a file or folder that cannot be written), or None for a bug (traceback).
    `places` ({key: folder}) names the setting to change for a file below one of the folders."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException

    for e in _chain(exc):
        if isinstance(e, ConfigError):
            return _first_line(e)
    if isinstance(exc, MissingConfigException) and exc.options is not None and exc.missing_cfg_file:
        group, _, option = str(exc.missing_cfg_file).rpartition("/")
        return f"{group}={option}: no such option; available: {', '.join(sorted(exc.options))}"
    if isinstance(exc, OverrideParseException):
        return f"{exc.override}: cannot parse ({_first_line(Exception(exc.message))}; "\
               "quote values with special characters: 'key=\"a value\"')"
    if isinstance(exc, HydraException):
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        text = re.sub(r"\s*Config search path:.*$", "", text)
        cause = _first_line(exc.__cause__) if exc.__cause__ is not None else None
        merging = re.match(r"Error merging override (\S+)", text)
        unknown = re.match(r"Could not override '([^']+)'\.", text)
        twice = re.match(r"Multiple values for ([^.\s]+)\.", text)
        if twice:  # `+group=option` for a group the defaults list already chooses
            return (f"+{twice.group(1)}: {twice.group(1)} is already chosen by the defaults list; choose another "
                    f"option without the +: {twice.group(1)}=<option>")
        if unknown and (Path(CONF_DIR) / unknown.group(1)).is_dir():  # a group outside the defaults list
            return (f"{unknown.group(1)}: a config group that the defaults list does not include; add it with a +: "
                    f"+{unknown.group(1)}=<option> (options: {', '.join(_options(unknown.group(1)))})")
        moved = [m for m in (moved_key_message(k) for k in re.findall(r"[\w.]+", text)) if m]
        if moved:  # a key that left a shared group for its task (schemas.MOVED_KEYS)
            return moved[0]
        if unknown:  # a key the schema does not have
            return f"{unknown.group(1)}: no such key{f' ({cause})' if cause else ''}; `metaexamples --cfg job` lists the keys"
        if merging and cause:  # a value of the wrong type
            return f"{merging.group(1)}: {cause}"
        return f"{text} ({cause})" if cause else text
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _USER_ERRNOS and e.filename:
            where, why = Path(os.path.abspath(e.filename)), e.strerror or os.strerror(e.errno)
            for key, folder in (places or {"hydra.run.dir": None}).items():
                if folder is None or where == Path(folder) or Path(folder) in where.parents:
                    hint = " (or $METAEXAMPLES_CACHE)" if key == "paths.cache_dir" else ""
                    return f"{key}: {where}: {why}; point {key}{hint} at a folder you can write to"
            return f"{where}: {why}; use a folder you can write to"
    # A job of a sweep run in another process (submitit): its error comes back as text.
    match = re.search(r"metaexamples\.errors\.ConfigError: (.+)", str(exc))
    if match:
        return match.group(1).strip()
    return None


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


def job_identity(cfg: DictConfig, hydra_cfg, task) -> dict:
    """W&B group, name, job type and tags for this job (name and tags from the task)."""
    group = cfg.logger.group or cfg.experiment_name
    if group is None and hydra_cfg.mode == RunMode.MULTIRUN:
        group = "sweep-" + Path(hydra_cfg.sweep.dir).as_posix().strip("/").replace("/", "_").removeprefix("multirun_")
    stages = list(cfg.stages)
    job_type = "pipeline" if stages == ["data", "train", *task.eval_stages] else "+".join(stages)
    tags = list(cfg.logger.tags) + task.tags() + [cfg.model.name, cfg.decoding.name]
    return {"name": task.run_name(), "group": group, "job_type": job_type, "tags": tags}


def run_job(cfg: DictConfig) -> str:
    """One job. Returns its status; raises in a sweep so the launcher records the failure."""
    global _exit_code
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    tracker: Tracker = Tracker()
    results = None
    _quiet_libraries()
    try:
        main = is_main_process()
        check_interpolations(cfg)
        task = task_class(cfg.task.name)(cfg)
        identity = job_identity(cfg, hydra_cfg, task)
        # Before results.json: a refused job leaves its folder as it was.
        check_run_folder(cfg, run_dir)
        if main:  # first, so that a job failing validation is still listed as failed
            results = Results(run_dir, {
                "run": identity["name"], "task": task.name, "method": cfg.method.name, **task.header(),
                "model": cfg.model.name, "decoding": cfg.decoding.name, "seed": cfg.seed,
                "experiment": cfg.experiment_name, "stages": list(cfg.stages), "output_dir": str(run_dir),
            })
        validate(cfg)
        check_method_trains(cfg, run_dir, task)
        check_eval_model(cfg, run_dir)  # after validate: a bad value is named before a missing model
        if main:
            tracker = start_tracker(cfg, run_dir, **identity)
        run_stages(cfg, run_dir, tracker, results)
    except BaseException as exc:
        line = describe_error(exc, _places(cfg, run_dir)) if isinstance(exc, Exception) else None
        message = line or _first_line(exc)
        if results is not None:
            try:
                if line is not None and results.previous_status == "completed":
                    results.restore()  # a refused re-run leaves a finished run's results as they were
                else:
                    results.finish("failed", f"{type(exc).__name__}: {message}")
            except OSError:
                pass  # the run folder itself is what failed: the one line below says so
        tracker.finish(exit_code=1)
        if line is not None:
            _log_to_files(logging.ERROR, f"error: {line}")  # the console gets it once: below, or from main()
            if hydra_cfg.mode == RunMode.RUN:
                print(f"error: {line}", file=sys.stderr)
                _exit_code = BAD_INPUT
                return "failed"
            if not isinstance(exc, ConfigError):  # the sweep ends with this job's one line
                raise ConfigError(line) from exc
        raise
    if results is not None:
        results.finish("completed")
        log.info("results: %s", results.path)
        if hydra_cfg.mode == RunMode.RUN:
            print_summary(task, results.data, run_dir)
    tracker.finish(exit_code=0)
    return "completed"


def _places(cfg: DictConfig, run_dir: Path) -> dict[str, Path]:
    """The folders a job writes, by the setting that chooses each (for one-line errors)."""
    places = {"hydra.run.dir": run_dir}
    try:
        places = {"paths.cache_dir": cache_dir(cfg.get("paths")), **places}
    except Exception:  # noqa: BLE001 - a cache setting bad enough to fail here is named by validate
        pass
    return places


def _log_to_files(level: int, message: str) -> None:
    """A record for the log files only (the job's <run>/metaexamples.log), not the console:
    a line the console already gets on stderr would be printed twice when stdout and stderr
    share a file."""
    record = log.makeRecord(log.name, level, __file__, 0, message, (), None)
    for logger in (log, logging.getLogger()):
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
                handler.handle(record)


def check_interpolations(cfg: DictConfig) -> None:
    """Every `${...}` resolves (an unknown key or resolver is one line naming the key, not a
    traceback from wherever the value is first read)."""
    from omegaconf.errors import InterpolationResolutionError

    try:
        OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError as exc:
        key = getattr(exc, "full_key", None) or "config"
        raise ConfigError(f"{key}: cannot resolve {_first_line(exc)}") from None


def check_run_folder(cfg: DictConfig, run_dir: Path) -> None:
    """What the run folder and the config decide together, before any stage and before
    results.json is touched: the checkpoint to resume comes from this config, and the method
    resumes only its own run."""
    stages = list(cfg.stages)
    if "train" in stages and cfg.train.resume:
        check_resume(cfg, run_dir)
    method_class(cfg.method.name).check_run_dir(cfg, run_dir)


def check_method_trains(cfg: DictConfig, run_dir: Path, task) -> None:
    """A job that evaluates under a method other than sft must train (or find the model it
    trained in the run folder): the task's default stages may omit train (task=procedural's
    are [data, eval_verify]), and results.json would say `method: polychromic` over an
    untrained model."""
    stages = list(cfg.stages)
    evaluates = [s for s in stages if s in task.all_eval_stages()]
    if cfg.method.name == "sft" or "train" in stages or not evaluates:
        return
    if (run_dir / "model" / "config.json").exists() or cfg.model.get("path"):
        return
    raise ConfigError(
        f"stages: method={cfg.method.name} trains in the train stage and stages=[{','.join(stages)}] has none, so "
        f"{', '.join(evaluates)} would evaluate an untrained model under its name; add train, e.g. "
        f"stages=[{','.join(['data', 'train', *[s for s in stages if s != 'data']])}]")


def check_resume(cfg: DictConfig, run_dir: Path) -> None:
    """Before any stage: the run folder's last checkpoint must come from this config (task, data,
    model, method, seed; the train settings are compared by the training loop itself)."""
    import json

    last = latest_checkpoint(run_dir / "checkpoints")
    if last is None or not (last / "checkpoint.json").exists():
        return  # nothing to resume, or an older checkpoint: the training loop says so
    try:
        saved = json.loads((last / "checkpoint.json").read_text(encoding="utf-8")).get("config") or {}
    except (OSError, ValueError, AttributeError):
        saved = {}
    job = {k: v for k, v in result_config(cfg).items() if k != "train"}
    # The saved train keys stand in for this run's: the loop compares them with what it runs.
    check_resumable(last, {**saved, **job} if saved else None)


def _quiet_libraries() -> None:
    """accelerate's INFO lines (saving and loading state) out of the console; Hugging Face's
    progress bars (loading and writing weights) only on a terminal."""
    logging.getLogger("accelerate").setLevel(logging.WARNING)
    if not sys.stderr.isatty():
        try:
            from huggingface_hub.utils import disable_progress_bars
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            disable_progress_bars()
        except ImportError:  # pragma: no cover - both ship with transformers
            pass


# The summary at the end of a run: (label, dotted results.json key); a task adds its own
# (`summary_keys`, e.g. the grammar task's Valid/Invalid PPL, AUROC, validity rate).
TRAIN_SUMMARY = [("train loss (final)", "train.final_loss"), ("eval loss", "train.eval_loss"),
                 ("eval ppl", "train.eval_ppl")]


def summary_rows(task, data: dict, method=None) -> list[tuple[str, str]]:
    """(label, value) for each key metric present in results.json `data` (the method's own
    figures first, e.g. expert iteration's accuracies at iteration 0 and at the last)."""
    keys = list(method.summary_keys) if method is not None else []
    keys += list(task.summary_keys)
    if not keys:  # a task without its own: the first figures of each of its report tables
        for table in task.report_tables:
            keys += [(h, k) for h, k in table.columns if k.startswith(table.section + ".")][:4]
    rows = []
    for label, key in [*TRAIN_SUMMARY, *keys]:
        value = get(data, key)
        if value is not None and not isinstance(value, (dict, list)):
            rows.append((label, fmt(value)))
    return rows


# run-folder entries the summary does not list: Hydra's, the log, W&B's, resumable state
NOT_LISTED = ("metaexamples.log", "wandb", "checkpoints")


def run_outputs(run_dir: Path, first: list[str]) -> list[str]:
    """What the run folder holds: `first` (results.json, model, train, the evaluation stages)
    in that order, then the method's own files (expert iteration: iter_0..iter_3,
    iterations.jsonl, trained_on.jsonl), numbered folders as one range."""
    names = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".") and p.name not in NOT_LISTED)
    out = [n for n in first if n in names]
    numbered: dict[str, list[int]] = {}
    rest = []
    for name in names:
        m = re.fullmatch(r"(.+_)(\d+)", name)
        if name in first:
            continue
        if m and (run_dir / name).is_dir():
            if m.group(1) not in numbered:
                rest.append(m.group(1))  # placeholder, filled in below
            numbered.setdefault(m.group(1), []).append(int(m.group(2)))
        else:
            rest.append(name)
    for name in rest:
        nums = sorted(numbered.get(name, []))
        out.append(name if not nums else f"{name}{nums[0]}" if len(nums) == 1 else f"{name}{nums[0]}..{name}{nums[-1]}")
    return out


def print_summary(task, data: dict, run_dir: Path) -> None:
    method = REGISTRY.get(data["method"]) if data.get("method") in REGISTRY.available() else None
    rows = summary_rows(task, data, method)
    timings = data.get("timings") or {}
    order = list(data.get("stages") or [])
    timings = dict(sorted(timings.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    total = sum(timings.values())
    outputs = run_outputs(run_dir, ["results.json", "model", "train", *task.all_eval_stages()])
    width = max([len(label) for label, _ in rows] + [7])
    lines = [f"{data.get('run', '')}: {data.get('status', 'completed')} "
             f"({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}; {total:.0f} s)"]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    lines += [f"  {'outputs':<{width}}  {run_dir}/ ({', '.join(outputs)})"]
    print("\n".join(lines), flush=True)


register_configs()
_hydra_main = hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")(run_job)


class SweepRefused(BaseException):
    """A sweep refused as a whole before any job runs. A BaseException: Hydra's callback runner
    turns an Exception raised in a callback into a warning and goes on to run the jobs."""


def check_sweep_seeds(config: DictConfig) -> None:
    """A preset whose report pairs runs over seeds (`min_seeds`, experiment=seed_matrix: 2) must
    sweep that many distinct seeds: one seed has no spread, and every paired comparison of the
    report would be empty."""
    need = config.get("min_seeds", 1)
    if not isinstance(need, int) or need < 2:
        return  # not a paired preset (a bad value is validate's line, in the job)
    plan = sweep_plan(OmegaConf.to_container(config.hydra, resolve=False))
    if plan is None:
        return  # another sweeper: its plan is its own
    seeds = override_values(plan[0], "seed") or {str(config.seed)}
    if len(seeds) < need:
        preset = f"experiment={config.experiment_name}" if config.get("experiment_name") else f"min_seeds={need}"
        raise SweepRefused(
            f"seed: {preset} pairs runs over seeds and needs >= {need} distinct seeds, this sweep has "
            f"{len(seeds)} (seed={','.join(sorted(seeds, key=lambda s: (len(s), s)))}); sweep seed=0,1,2 (or more)")


class SweepFolder(Callback):
    """A Hydra callback (hydra.callbacks in config.yaml): notes the sweep folder when a multirun
    starts, in the launching process whatever the launcher, so that main() can print the report
    command when the sweep ends (on_multirun_end is skipped when a job failed)."""

    folder: str | None = None
    jobs = 0  # jobs started in this process (a sweep refused while composing starts none)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        SweepFolder.folder = str(config.hydra.sweep.dir)
        check_sweep_seeds(config)  # before the sweeper makes the folder or starts a job

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        SweepFolder.jobs += 1

    @classmethod
    def none_ran(cls) -> bool:
        """No job started: none in this process, and no job folder (a job launched in another
        process, submitit's, writes its .hydra/ first)."""
        folder = Path(cls.folder)
        return cls.jobs == 0 and not (folder.is_dir() and any(folder.glob("*/.hydra")))


def main() -> None:
    global _exit_code
    _exit_code = 0
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra's errors reach us (not its own printer): one line, exit 2
    SweepFolder.folder, SweepFolder.jobs = None, 0
    code = 0
    refused = False
    try:
        _hydra_main()
        code = _exit_code
    except SweepRefused as exc:
        print(f"error: {exc}; no job ran", file=sys.stderr)
        code, refused = BAD_INPUT, True
    except Exception as exc:
        sweep = {"hydra.sweep.dir": Path(SweepFolder.folder)} if SweepFolder.folder else None
        line = None if full_error else describe_error(exc, sweep)
        if line is None:
            raise
        if SweepFolder.folder and SweepFolder.none_ran():  # Hydra composes every job before the first runs
            line, refused = f"{line}; no job ran", True
        print(f"error: {line}", file=sys.stderr)
        code = BAD_INPUT
    finally:
        if not full_error:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        # No Hydra job state outlives the command: a later hydra.compose in this process (a test,
        # a notebook) is not a run, and checks that read the run's choices must not see this one's.
        HydraConfig.instance().cfg = None
        sweep = SweepFolder.folder
        if sweep and Path(sweep).is_dir() and not refused:
            print(f"report: metaexamples-report {sweep}", flush=True)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
