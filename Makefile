# The two commands a user runs: `make demo` and `make test`. Both build .venv when missing.
PYTHON ?= python3
TORCH ?= 2.13.0
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= results/demo

.PHONY: demo test lint bench clean

# Torch goes in first, pinned, so no other requirement pulls an unpinned CUDA build.
$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install "torch==$(TORCH)"

$(VENV)/.installed-%: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-bench,export
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(BIN)/python -m sparse_rl.demo --out $(DEMO_OUT)

test: $(VENV)/.installed-dev
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-bench,export
	$(BIN)/sparse-rl bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
