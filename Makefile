# One command to set up and run the main job, one to set up and run the tests.
# Python 3.11 and the package registries are all they need.

PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
MISSREC := $(VENV)/bin/missrec
DATASETS ?= $(or $(MISSREC_DATASETS),../shared/datasets)
DATA   ?= $(DATASETS)/amazon-scientific-mm
WORK   ?= runs/demo
EXTRAS ?= dev,text,image,clip,report,serve,faiss,tune

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The CPU build of torch first: a plain `torch` requirement would pull a multi-GB CUDA build.
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	@test -d "$(DATA)" || { echo "error: dataset folder $(DATA) not found; set DATA=path/to/unisrec-layout-folder" >&2; exit 1; }
	$(MISSREC) data import --format unisrec "$(DATA)" $(WORK)/store
	$(MISSREC) train --model missrec --data $(WORK)/store --out $(WORK)/missrec --overwrite $(DEMO_SET)
	$(MISSREC) recommend $(WORK)/missrec --data $(WORK)/store --users 3 --k 5 --exclude-seen

test: setup
	$(PY) -m pytest -q

bench: setup
	$(MISSREC) bench train --model missrec --data $(WORK)/store --json

clean:
	rm -rf $(VENV) runs .pytest_cache
