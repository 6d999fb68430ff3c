# mixkit: the two commands a newcomer runs (see README).
#   make demo  -- set up a virtualenv and run the main job on the embedded default dataset
#   make test  -- set up a virtualenv and run the test suite (what CI runs)
#   make docs  -- build the documentation site from docs/ into build/site (strict: a warning fails)
#   make package-check -- build the sdist and wheel, install the wheel into a fresh venv and use it
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel of PyTorch, pinned so pip never pulls a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0

.PHONY: setup setup-bench demo test test-peers docs package-check bench-speed clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# the main job needs only the benchmark's extras
setup-bench: $(BIN)/python
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[bench]"

# the tests: the dev extras, and the peers the tests compare against (timm without its dependencies,
# because its torchvision would pull a CUDA build of torch; its mixup module needs only torch and numpy)
setup: $(BIN)/python
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[dev]" kornia $(TORCH_PIN)
	$(BIN)/pip install -q --no-deps timm

demo: setup-bench
	$(BIN)/mixkit bench

test: setup
	$(BIN)/python -m pytest -n 2 tests

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# tests/test_packaging.py with its fresh-venv check (it installs the pinned torch into a new venv)
package-check: setup
	MIXKIT_PACKAGE_CHECK=1 $(BIN)/python -m pytest tests/test_packaging.py

# real torchvision beside a second torch (a large CUDA build, minutes to install): the torchvision-facing
# tests against the real thing; `make test` does not need it (its tests use a local Tensor subclass)
test-peers:
	$(PY) -m venv .venv-tv
	.venv-tv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
	.venv-tv/bin/pip install -q -e . pytest numpy torch==2.14.1
	.venv-tv/bin/python -m pytest -q -p no:cacheprovider tests/test_tv_compat.py tests/test_integrations.py

# the speed and step-cost benchmarks (docs/speed.md, docs/cost.md and issue 10's goal table); timm without
# its dependencies, because PyPI's torchvision does not load beside the pinned CPU torch (benchmarks/speed.py
# loads timm's mixup module on its own and reports torchvision as skipped)
bench-speed: setup
	$(BIN)/pip install -q kornia $(TORCH_PIN)
	$(BIN)/pip install -q --no-deps timm
	$(BIN)/python benchmarks/speed.py --threads 1 --out docs/speed.md
	$(BIN)/python benchmarks/model_aware_cost.py --threads 1 --out docs/cost.md

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
