# Two commands on a fresh machine:  `make demo` (set up + run the demo)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
# torch first, so the package's own `torch>=2.4` installs nothing more. torch==2.13.0 is the CPU
# build on this project's machines (a local wheel store); on PyPI alone a Linux torch wheel bundles
# CUDA (several GB): there use `make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu` for the
# CPU build, or `make setup TORCH_SPEC=torch` on a GPU machine (after `rm .venv/.installed`).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
WORK ?= work/demo
BIN := $(VENV)/bin

.PHONY: setup demo test lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev,demo]"
	touch $@

demo: setup
	$(BIN)/imagenet-multimodal demo --work $(WORK)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
