"""task=grammar: formal languages over a synthetic alphabet (the core experiment).

Data: languages/ (one file per grammar), symbols, items, metaexamples, splits, build, bundle.
Prompt: the opening tag, optionally seed symbols; verifier: the language's recognizer plus
the closing tag (generation.judge). Evaluation stages: eval_ppl (perplexity
discrimination, section `ppl`) and eval_gen (validity of samples, section `gen`).
"""

from __future__ import annotations

import random
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from metaexamples.data.corpus import _matching_files as matching_files
from metaexamples.errors import ConfigError, check_key
from metaexamples.evaluation.sampling import find_subsequence
from metaexamples.tasks import Problem, ReportTable, SamplingSpec, SFTData, Verdict, VerifiedTask
from metaexamples.tasks.grammar.build import data_folder, run_data_stage
from metaexamples.tasks.grammar.bundle import load_bundle
from metaexamples.tasks.grammar.config import (CONDITION_ORDER, ConditionConfig, CorpusConfig, DataConfig, GrammarConfig,
                                                GrammarTaskConfig)
from metaexamples.tasks.grammar.constraints import make_constraint
from metaexamples.tasks.grammar.generation import judge, make_prompts, max_new_tokens, run_eval_gen
from metaexamples.tasks.grammar.languages import REGISTRY as LANGUAGES
from metaexamples.tasks.grammar.languages import available as available_languages
from metaexamples.tasks.grammar.languages import make_language
from metaexamples.tasks.grammar.lengths import check_eval_lengths
from metaexamples.tasks.grammar.metrics import FAILURE_KINDS
from metaexamples.tasks.grammar.monitor import Monitor
from metaexamples.tasks.grammar.ppl import run_eval_ppl
from metaexamples.tasks.grammar.report_plots import grammar_plots
from metaexamples.tasks.grammar.seed_summary import sections

PPL_COLUMNS = [  # (header, results key); the reference report's columns first
    ("Run", "run"), ("Grammar", "grammar"), ("Valid PPL", "ppl.valid_ppl"),
    ("Invalid PPL", "ppl.invalid_ppl"), ("Gap", "ppl.gap"), ("Ratio", "ppl.ratio"),
    ("AUROC", "ppl.auroc"), ("AUPR", "ppl.aupr"), ("Best F1", "ppl.best_f1"),
    ("Balanced Acc", "ppl.balanced_acc"),
    ("Condition", "condition"), ("Model", "model"), ("Seed", "seed"),
    ("Valid NLL/sym", "ppl.valid_nll_per_symbol"), ("Invalid NLL/sym", "ppl.invalid_nll_per_symbol"),
    ("AUROC/sym", "ppl.auroc_per_symbol"),
    # AUROC vs hard (minimally edited) negatives and vs random negatives alone: a reference
    # scored on random strings compares with the second.
    ("AUROC hard", "ppl.auroc_hard"), ("AUROC random", "ppl.auroc_random"),
]
GEN_COLUMNS = [
    ("Run", "run"), ("Grammar", "grammar"), ("Samples", "gen.samples"), ("Valid", "gen.valid"),
    ("Invalid", "gen.invalid"), ("Validity Rate", "gen.validity_rate"),
    ("Condition", "condition"), ("Decoding", "decoding"), ("Novel Valid", "gen.novel_valid"),
    ("Unique Valid", "gen.unique_valid"), ("No Close", "gen.failures.no_close"),
    ("Foreign Token", "gen.failures.foreign_token"), ("Length", "gen.failures.length"),
    ("Rule", "gen.failures.rule"),
]
# The end-of-run summary (cli): key figures, (label, results key).
SUMMARY_KEYS = [("Valid PPL", "ppl.valid_ppl"), ("Invalid PPL", "ppl.invalid_ppl"), ("AUROC", "ppl.auroc"),
                ("AUROC hard", "ppl.auroc_hard"), ("AUROC random", "ppl.auroc_random"),
                ("Validity rate", "gen.validity_rate")]
META_KINDS = ("judgment", "contrast", "rule")


class GrammarTask(VerifiedTask):
    name = "grammar"
    config_schema = GrammarTaskConfig
    eval_stages = {"eval_ppl": "ppl", "eval_gen": "gen"}
    report_tables = [ReportTable("Perplexity and Discrimination", "ppl", PPL_COLUMNS),
                     ReportTable("Generation Validity", "gen", GEN_COLUMNS)]
    summary_keys = SUMMARY_KEYS
    constraints = ("none", "alphabet", "grammar")  # decoding.constraint (constraints.py)
    group_schemas = {"grammar": GrammarConfig, "condition": ConditionConfig, "data": DataConfig,
                     "corpus": CorpusConfig}

    def __init__(self, cfg, tokenizer=None, cache: Path | None = None, bundle=None) -> None:
        super().__init__(cfg, tokenizer, cache)
        self.bundle = bundle

    # -- identity -------------------------------------------------------------------------
    def run_name(self) -> str:
        return f"{self.cfg.grammar.name}-{self.cfg.condition.name}-{self.cfg.model.name}"

    def header(self) -> dict:
        return {"grammar": self.cfg.grammar.name, "condition": self.cfg.condition.name}

    def tags(self) -> list[str]:
        return [self.cfg.grammar.name, self.cfg.condition.name]

    @staticmethod
    def sort_key(row: dict) -> tuple:
        condition = row.get("condition") or ""
        return (row.get("grammar") or "", CONDITION_ORDER.get(condition, 99), condition)

    @classmethod
    def report_plots(cls, rows: list[dict], out_dir: Path) -> list[str]:
        return grammar_plots(rows, out_dir)

    @classmethod
    def report_sections(cls, rows: list[dict]) -> list:
        return sections(rows)

    @classmethod
    def check_config(cls, cfg) -> None:
        g = cfg.grammar
        _check_label(g)
        check_key(g.min_len >= 1, "grammar.min_len", f"must be >= 1, got {g.min_len}")
        check_key(g.min_len <= g.max_len, "grammar.min_len",
                  f"min_len ({g.min_len}) must be <= grammar.max_len ({g.max_len})")
        c = cfg.condition
        check_key(0.0 <= c.meta_fraction <= 1.0, "condition.meta_fraction",
                  f"must be in [0, 1], got {c.meta_fraction}")
        for kind, w in c.meta_kinds.items():
            check_key(kind in META_KINDS, f"condition.meta_kinds.{kind}",
                      f"unknown metaexample kind; available: {', '.join(META_KINDS)}")
            check_key(w >= 0, f"condition.meta_kinds.{kind}", f"weight must be >= 0, got {w}")
        d = cfg.data
        check_key(0.0 <= d.synthetic_mix_ratio <= 1.0, "data.synthetic_mix_ratio",
                  f"must be in [0, 1], got {d.synthetic_mix_ratio}")
        check_key(0.0 <= d.random_negative_fraction <= 1.0, "data.random_negative_fraction",
                  f"must be in [0, 1], got {d.random_negative_fraction}")
        for key in ("num_symbols", "num_foreign", "n_train_items", "n_eval", "n_test", "n_test_long", "block_size"):
            check_key(d[key] > 0, f"data.{key}", f"must be positive, got {d[key]}")
        check_key(d.block_size >= g.max_len + 16, "data.block_size",
                  f"({d.block_size}) must hold a whole item: >= grammar.max_len + 16")
        check_eval_lengths(g, int(d.num_symbols))
        language = LANGUAGES.get(g.language)
        check_key(cfg.decoding.constraint != "grammar" or language.exact_constraint, "decoding.constraint",
                  f"grammar is not exact for grammar={g.name} (language {g.language}: its allowed_next cannot guarantee a valid "
                  "string); use decoding=alphabet or decoding=sample")
        t = cfg.task
        check_key(t.seed_symbols >= 0, "task.seed_symbols", f"must be >= 0, got {t.seed_symbols}")
        check_key(t.seed_symbols < g.max_len, "task.seed_symbols",
                  f"({t.seed_symbols}) must be < grammar.max_len ({g.max_len})")
        check_key(t.max_new_tokens is None or t.max_new_tokens > 0, "task.max_new_tokens",
                  f"must be positive (or null: room for grammar.max_len), got {t.max_new_tokens}")
        for key in ("n_samples", "calibration_buckets"):
            check_key(t[key] > 0, f"task.{key}", f"must be positive, got {t[key]}")
        _check_lengths_and_corpus(cfg)

    # -- data -----------------------------------------------------------------------------
    def prepare_data(self) -> Path:
        folder = run_data_stage(self.cfg, self.tokenizer, self.cache)
        self.bundle = load_bundle(folder)
        return folder

    def load_data(self) -> Path:
        folder = data_folder(self.cfg, self.tokenizer, self.cache)
        if not (folder / "manifest.json").exists():
            raise ConfigError(
                f"no data for grammar={self.cfg.grammar.name} condition={self.cfg.condition.name} in "
                f"{folder.parent}; run the data stage first (add `data` to stages, e.g. stages=[data,train])")
        self.bundle = load_bundle(folder)
        return folder

    def data_summary(self) -> dict:
        m = self.bundle.manifest
        return {"folder": str(self.bundle.folder), "counts": m.get("counts"), "tokens": m.get("tokens")}

    # -- problems and the verifier --------------------------------------------------------
    def problems(self, split: str, limit: int | None = None) -> list[Problem]:
        """Generation prompts: the opening tag plus the first `task.seed_symbols` symbols of
        a string, one problem per distinct prefix (a single one with no seed symbols). Split
        "train": prefixes of training strings; "heldout": of the held-out eval split's valid
        strings that start no training string, so held-out prompts are disjoint from training
        prompts. Where every held-out prefix also starts a training string (no seed symbols, or
        few symbols and many strings) held-out falls back to those shared prefixes and means
        unseen outputs only (eval_sets reports `heldout_prompts_in_train` and counts novel
        strings). Any valid string completes a problem (no expected answer).

        Split "gen" (eval_gen's prompts): `task.n_samples` problems, each the opening tag plus
        the first k symbols of a training string drawn at random (with replacement, so a
        prefix is as frequent as in the training data)."""
        b, k = self.bundle, int(self.cfg.task.seed_symbols)
        if split == "gen":
            symbol_of = {t: i for i, t in enumerate(b.symbol_ids)}
            prompts = make_prompts(b, int(self.cfg.task.n_samples), k, int(self.cfg.seed), b.split("train"))
            return [Problem(id=f"gen-{i}", prompt_ids=p,
                            meta={"seed_symbols": [symbol_of[t] for t in p[len(b.open_ids):]]})
                    for i, p in enumerate(prompts[:limit])]
        train = {tuple(r["symbols"][:k]) for r in b.split("train") if r["kind"] == "example" and len(r["symbols"]) >= k}
        if split == "train":
            prefixes = sorted(train)
        elif split == "heldout":
            held = {tuple(r["symbols"][:k]) for r in b.split("eval") if r["valid"] and len(r["symbols"]) >= k}
            prefixes = sorted(held - train) or sorted(held)
        else:
            raise ConfigError(f"task=grammar: unknown problem split {split!r}; available: train, heldout, gen")
        random.Random(f"{self.cfg.seed}:{split}:problems").shuffle(prefixes)
        return [Problem(id=f"{split}-{i}", prompt_ids=b.open_ids + b.symbols_to_ids(list(p)),
                        meta={"seed_symbols": list(p)}) for i, p in enumerate(prefixes[:limit])]

    def sampling(self, dec) -> SamplingSpec:
        from functools import partial


        b = self.bundle
        constraint = partial(make_constraint, dec.constraint, language=b.language, symbol_ids=b.symbol_ids,
                             close_ids=b.close_ids, n_open=len(b.open_ids))
        return SamplingSpec(stop_ids=b.close_ids, constraint=constraint,
                            max_new_tokens=max_new_tokens(self.cfg.task, int(b.grammar["max_len"]), len(b.close_ids)))

    def sample_metrics(self, rows: list[dict], seen: list = ()) -> dict:
        """validity_rate, failure kinds, novel_valid (valid, not a training string and not one
        the method fine-tuned on (`seen`): a loop that only memorises, the data or its own
        selections, shows here) and unique_valid, as eval_gen defines them."""
        valid = [tuple(r["extracted"]) for r in rows if r["verdict"] == "valid"]
        known = self.known_outputs(seen)
        novel = [s for s in valid if s not in known]
        return {"validity_rate": len(valid) / len(rows) if rows else 0.0,
                "failures": {k: sum(r["verdict"] == k for r in rows) for k in FAILURE_KINDS},
                "novel_valid": len(novel), "novelty_rate": len(novel) / len(valid) if valid else 0.0,
                "unique_valid": len(set(valid)), "unique_novel_valid": len(set(novel))}

    def known_outputs(self, seen=()) -> frozenset:
        return self.bundle.known_strings(seen)

    def verify(self, problem: Problem, completion_ids: list[int]) -> Verdict:
        """valid (reward 1) or the first failure kind (reward 0), as eval_gen judges."""
        b = self.bundle
        symbol_of = {t: i for i, t in enumerate(b.symbol_ids)}
        at = find_subsequence(completion_ids, b.close_ids)
        body = list(problem.prompt_ids[len(b.open_ids):]) + list(completion_ids[:max(at, 0)])
        verdict, symbols = judge(body, at >= 0, symbol_of, b.language)
        return Verdict(reward=1.0 if verdict == "valid" else 0.0, kind=verdict, extracted=symbols)

    # -- training -------------------------------------------------------------------------
    def sft_data(self) -> SFTData:
        blocks = self.bundle.blocks("train")
        if len(blocks) == 0:
            raise ConfigError("data.n_train_items: the training stream is empty; raise data.n_train_items")
        return SFTData(blocks=blocks)

    def check_model(self, model, tokenizer) -> None:
        """The data's symbol and tag ids must mean the same tokens to this tokenizer and model."""
        check_symbols(tokenizer, model, self.bundle)

    def monitor(self, batch_size: int, eval_batches: int):
        return Monitor(self.bundle, batch_size, eval_batches)

    # -- evaluation -----------------------------------------------------------------------
    def evaluate(self, stage: str, model, tokenizer, run_dir: Path, tracker) -> dict:
        if stage == "eval_gen":
            return run_eval_gen(self, model, tokenizer, run_dir, tracker)
        return run_eval_ppl(self.cfg, self.bundle, model, tokenizer, run_dir, tracker)


def check_symbols(tokenizer, model, bundle) -> None:
    """The data's symbol and tag ids must mean the same tokens to this tokenizer and model."""
    vocab = model.get_input_embeddings().num_embeddings
    for i, token in zip(bundle.symbol_ids, bundle.symbols["tokens"]):
        if i >= vocab or tokenizer.decode([i]) != token:
            raise ConfigError(f"model.path: the tokenizer of {tokenizer.name_or_path!r} lacks symbol {token!r} "
                              f"(id {i}) of {bundle.folder / 'symbols.json'}; regenerate the data with this model")
    if max(bundle.open_ids + bundle.close_ids) >= vocab:
        raise ConfigError(f"model.path: the tag ids of {bundle.folder} are outside the model's vocabulary ({vocab})")


__all__ = ["GrammarTask", "check_symbols"]


def _check_label(g) -> None:
    """In a run, `grammar.name` (the label of run names, results.json, the data cache and the
    sweep report) is the chosen preset's file name, unless set on the command line: a preset
    that extends another (`defaults: [g2]`) and keeps its `name` would run, be cached and be
    reported as that grammar. Composed outside a run (hydra.compose) there is no choice to check."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    choice = hydra_cfg.runtime.choices.get("grammar")
    if choice is None or choice == g.name:
        return
    if any(str(o).lstrip("+~").startswith("grammar.name=") for o in hydra_cfg.overrides.task):
        return
    stem = str(choice).rsplit("/", 1)[-1]
    raise ConfigError(
        f"grammar.name: grammar={choice} is named {g.name!r} (kept from the preset it extends), so its runs, "
        f"results, data cache and report rows would be {g.name}'s; add `name: {stem}` to {stem}.yaml")


def _check_lengths_and_corpus(cfg) -> None:
    """Before any stage, what the data stage would refuse only after starting: a length
    distribution with no weight on a length the language has (or a grammar with no valid
    length in [min_len, max_len]), and text files that do not exist."""
    g = cfg.grammar
    if g.language in available_languages():  # an unknown language is named by check_config
        language = make_language(g, int(cfg.data.num_symbols))
        check_key(len(language.valid_lengths()) > 0, "grammar.max_len",
                  f"grammar={g.name} has no string with a length in [grammar.min_len, grammar.max_len] = "
                  f"[{g.min_len}, {g.max_len}] (e.g. its lengths are even); widen the range")
        language._checked_length_table()
    if cfg.corpus.name == "text_files":
        matching_files(cfg.corpus)
