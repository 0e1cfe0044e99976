# cvbook: the two commands are `make book` and `make test` (see README.md).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# CI and the stored outputs assume a 2-core CPU; pin BLAS threads for reproducibility.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export PYTHONHASHSEED := 0
# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning made a
# training step ~40x slower (1.4 s vs 0.035 s measured); on an idle one it costs nothing.
export OMP_WAIT_POLICY ?= PASSIVE
# No MPLBACKEND here: notebooks must run under the kernel's inline backend, or `make execute`
# stores no figures (and nbval would compare against figure-less notebooks). The unit tests
# select Agg themselves (tests/conftest.py).
unexport MPLBACKEND

.PHONY: help venv book test lint unit nbval conventions book-strict execute seeds full clean results-page

help:
	@echo "make book      build the HTML book into _build/html (creates .venv)"
	@echo "make test      lint, unit tests, nbval on every notebook, conventions, strict book build"
	@echo "make execute   re-run every notebook with its default preset (refresh stored outputs)"
	@echo "               (one notebook: make execute NB=notebooks/03_fixres.ipynb)"
	@echo "make seeds     run every default preset for seeds 0, 1, 2 (papermill into _build/seeds)"
	@echo "               and write notebooks/results/<chapter>.seeds.json (minutes; not in make test)"
	@echo "               (one notebook: make seeds NB=notebooks/02_normgrad.ipynb)"
	@echo "make full NB=notebooks/03_fixres.ipynb [ARGS='-p data_root /path']"
	@echo "               run a notebook's full preset with papermill into runs/"

venv: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch/torchvision: the versions these machines hold; pyproject keeps lower bounds only.
	$(BIN)/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" || \
	  $(BIN)/python -m pip install -q torch torchvision
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cvbook)" >/dev/null
	touch $(STAMP)

results-page: venv
	$(BIN)/python tools/build_results_page.py

book: venv results-page
	$(BIN)/jupyter-book build . --path-output . -q
	@test -f _build/html/index.html && echo "book: _build/html/index.html"

lint: venv
	$(BIN)/ruff check lib tests tools benchmarks notebooks

unit: venv
	$(BIN)/python -m pytest tests -m "not conventions" -q

# nbval runs every cell (an exception or a failing assert fails it) but, with --nbval-lax,
# compares the stored text only of cells tagged `nbval-check-output`: those deterministic
# by construction (data, analytic checks, shapes, text). Trained numbers are compared by
# value within the tolerance each metric declares, by the conventions step (the run's
# sidecars in _build/nbval-results against notebooks/results). See CONTRIBUTING.md.
nbval: venv
	rm -rf _build/nbval-results && mkdir -p _build/nbval-results
	cd notebooks && CVBOOK_RESULTS_DIR=$(CURDIR)/_build/nbval-results \
	  ../$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
	  --nbval-sanitize-with ../tests/nbval_sanitize.cfg --nbval-cell-timeout=600 \
	  -q $(notdir $(NOTEBOOKS))

conventions: venv
	NBVAL_RESULTS=_build/nbval-results $(BIN)/python -m pytest tests -m conventions -q

book-strict: venv results-page
	rm -rf _build/html _build/jupyter_execute _build/.doctrees
	$(BIN)/jupyter-book build . --path-output . --warningiserror --nitpick --keep-going -q
	@test -f _build/html/index.html

test: lint unit nbval conventions book-strict
	@echo "make test: all checks passed"

NB ?= $(NOTEBOOKS)
execute: venv
	@for nb in $(NB); do \
	  echo "== $$nb"; \
	  (cd $$(dirname $$nb) && $(CURDIR)/$(BIN)/jupyter-nbconvert --to notebook --execute \
	    --inplace --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 \
	    $$(basename $$nb)) || exit 1; \
	done
	$(BIN)/python tools/build_results_page.py

# Seeds 0, 1, 2 of every default preset (or of NB), papermilled into _build/seeds (never in
# place); writes notebooks/results/<chapter>.seeds.json (see tools/seeds.py).
SEEDS_NB := $(if $(filter command line environment,$(origin NB)),$(NB),)
seeds: venv
	$(BIN)/python tools/seeds.py $(SEEDS_NB)
	$(BIN)/python tools/build_results_page.py

ARGS ?=
full: venv
	@test -n "$(NB)" -a -f "$(NB)" || (echo "usage: make full NB=notebooks/03_fixres.ipynb" && exit 2)
	mkdir -p runs/results
	cd notebooks && CVBOOK_RESULTS_DIR=$(CURDIR)/runs/results ../$(BIN)/papermill \
	  $$(basename $(NB)) ../runs/$$(basename $(NB) .ipynb)-full.ipynb -p preset full $(ARGS)

clean:
	rm -rf _build runs
