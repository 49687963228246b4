# weaktube — set-up, demo and tests on a fresh machine.
#   make demo   : create .venv, install, run the main job on the built-in synthetic benchmark
#   make test   : create .venv, install, run the test suite
# GPU users: create .venv and install the torch build for your CUDA first
#   (python3 -m venv .venv && .venv/bin/pip install torch), then `make demo`; the Makefile only
#   installs the CPU wheel (TORCH_SPEC) when the venv has no torch yet.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
DEMO_OUT ?= runs/demo
SEED ?= 0
# idle OpenMP threads sleep instead of spinning (see src/weaktube/cli.py)
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/weaktube demo --out $(DEMO_OUT) --seed $(SEED)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

bench: setup
	$(PY) benchmarks/speed.py --out runs/bench/speed.json

clean:
	rm -rf runs .pytest_cache
