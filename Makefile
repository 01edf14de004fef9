# `make demo` builds the quickstart artifact; `make test` runs the test suite.
# Both create .venv when missing and install the project with its pinned dependencies.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.optbuild-installed

.PHONY: demo test setup clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/optbuild recipe=efficientnet_lite0_int8

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf outputs
