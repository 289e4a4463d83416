# Two commands on a fresh machine:  `make demo` (set up + run the demo)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch; on a GPU machine use e.g. `make setup TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
WORK ?= work/demo
BIN := $(VENV)/bin

.PHONY: setup demo test lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev,demo]"
	touch $@

demo: setup
	$(BIN)/imagenet-multimodal demo --work $(WORK)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
