# `make demo` builds the quickstart artifact; `make test` runs the test suite.
# Both create .venv when missing and install the project with its pinned dependencies.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.optbuild-installed
# tensorrt-stubs requires the real tensorrt (not installable here), so it goes in with --no-deps
# into its own folder, and tools/trt_stubs.py makes a mypy-readable copy (see pyproject [tool.mypy]).
TRT_STUBS := $(VENV)/trt-stubs
# NVIDIA's quantizer (target=nvidia INT8) with what it needs beyond ours (nvidia-ml-py and lief,
# which its ONNX path imports, and pulp, its one other base requirement): its `[onnx]` extra pins
# onnx and onnxruntime-gpu versions other than the project's, so it goes in without dependencies
# (pinned in constraints.txt like everything else). INT4 (precision=int4) packs its weights with a
# C++ extension modelopt compiles on first use through cppimport (which needs Mako and pybind11):
# without cppimport its INT4 export fails on import; without g++ and Python's headers it falls
# back to packing in Python (slower).
MODELOPT := nvidia-modelopt nvidia-ml-py lief pulp cppimport mako pybind11

.PHONY: demo test test-fast typecheck lint-imports setup datasets clean

$(STAMP): pyproject.toml constraints.txt tools/trt_stubs.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt $(MODELOPT)
	rm -rf $(VENV)/trt-stubs-dist
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt --target $(VENV)/trt-stubs-dist tensorrt-stubs
	$(BIN)/python tools/trt_stubs.py $(VENV)/trt-stubs-dist $(TRT_STUBS)
	touch $(STAMP)

setup: $(STAMP)

# Real data the tests and some recipes read, from Debian (as root, or through sudo when it
# exists): labeled Fashion-MNIST images, and English sentences (fortunes-min) for the MiniLM
# recipe. `make demo` needs neither: the quickstart uses the bundled sample photos.
FMNIST_DIR := /usr/share/datasets/fashion-mnist
FORTUNES := /usr/share/games/fortunes/literature
DEBIAN_DATA := $(FMNIST_DIR) $(FORTUNES)

$(DEBIAN_DATA):
	SUDO=$$([ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null || echo sudo); \
	$$SUDO apt-get update && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist fortunes-min

datasets: $(DEBIAN_DATA)

demo: $(STAMP)
	$(BIN)/optbuild recipe=efficientnet_lite0_int8

# mypy over the whole package; the TensorRT code cannot run here, so it is checked against the
# TensorRT type stubs instead.
typecheck: $(STAMP)
	MYPYPATH=$(TRT_STUBS) $(BIN)/python -m mypy

# The package's layers and the absence of import cycles (contracts in pyproject.toml).
lint-imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

# Tests run on both cores (pytest-xdist), one test at a time each, except the files whose module
# fixtures are expensive (xdist_group marks): those run on one worker. Builds inside a test
# still use every core they get.
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadgroup

# The unit tier: plans, config errors, gates, the store and runner, datasets, passes on small
# graphs; no model is built. Under two minutes on two cores.
test-fast: $(STAMP) lint-imports
	$(PYTEST) tests/unit

test: $(STAMP) typecheck lint-imports $(DEBIAN_DATA)
	$(PYTEST) tests

clean:
	rm -rf outputs
