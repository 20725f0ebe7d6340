# Two entry points (see README): `make demo` and `make test`. Both create .venv when absent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test test-fast install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch/torchvision are pinned in pyproject; pip takes them from the local wheel cache.
# The demo needs the package only; the tests add pytest and ray[default] (a job server).
# constraints.txt: the same versions as every cluster node (infra/make_constraints.py).
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP) $(TEST_STAMP)

install: $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/k400ray demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q --durations=15

test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf k400ray-demo .pytest_cache
