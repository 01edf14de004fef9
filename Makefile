# `make demo` builds the quickstart artifact; `make test` runs the test suite.
# Both create .venv when missing and install the project with its pinned dependencies.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.optbuild-installed
# tensorrt-stubs requires the real tensorrt (not installable here), so it goes in with --no-deps
# into its own folder, and tools/trt_stubs.py makes a mypy-readable copy (see pyproject [tool.mypy]).
TRT_STUBS := $(VENV)/trt-stubs

.PHONY: demo test typecheck setup datasets clean

$(STAMP): pyproject.toml constraints.txt tools/trt_stubs.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	rm -rf $(VENV)/trt-stubs-dist
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt --target $(VENV)/trt-stubs-dist tensorrt-stubs
	$(BIN)/python tools/trt_stubs.py $(VENV)/trt-stubs-dist $(TRT_STUBS)
	touch $(STAMP)

setup: $(STAMP)

# Labeled validation data the tests read: Fashion-MNIST from Debian (as root, or through sudo
# when it exists). `make demo` does not need it: the quickstart uses the bundled sample photos.
FMNIST_DIR := /usr/share/datasets/fashion-mnist

$(FMNIST_DIR):
	SUDO=$$([ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null || echo sudo); \
	$$SUDO apt-get update && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist

datasets: $(FMNIST_DIR)

demo: $(STAMP)
	$(BIN)/optbuild recipe=efficientnet_lite0_int8

# The TensorRT code cannot run here: mypy checks it against the TensorRT type stubs instead.
typecheck: $(STAMP)
	MYPYPATH=$(TRT_STUBS) $(BIN)/python -m mypy

test: $(STAMP) typecheck $(FMNIST_DIR)
	$(BIN)/python -m pytest

clean:
	rm -rf outputs
