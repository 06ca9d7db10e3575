# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     provenance: []
#     toc_visible: true
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/peft-imdb/blob/main/notebooks/02_lora.ipynb)
#
# # 02 · LoRA
#
# LoRA (Hu et al., 2021) freezes the pretrained weights and learns a **low-rank update** of chosen weight
# matrices: a layer computes `W·x + (α/r)·B·A·x` with `A` of shape `r × d_in` and `B` of shape `d_out × r`.
# `B` starts at zero, so training starts exactly from the pretrained model. Here: rank `r` = 8, `α` = 16,
# dropout 0.1 on the adapter input, on the **query and value** projections of every attention block (the
# LoRA paper's choice), and the new classification head trained in full (with BERT's pooler, which
# belongs to the head).

# %% [markdown]
# ## Setup
#
# The first cell makes `peft_imdb` importable and calls `peft_imdb.notebook_setup.setup` for the rest. Where
# the package is installed already (`make setup`, then the `.venv` kernel) it only says so; in a clone of
# the repository whose kernel lacks it, it installs the clone (`pip install -e`). On Colab the cell first
# clones `REPO_URL` and works in the clone's `notebooks/`; with `DRIVE_FOLDER` set, it mounts Google Drive and
# keeps your run records and figures there, where 05_compare (in a runtime of its own) finds the runs of 01-04.
# Both come from `pyproject.toml`: a fork sets them once with `python scripts/set_repository.py <owner>/<name>`.
# The settings cell picks the **profile** (model, data sizes, schedule): `colab-t4` when a CUDA GPU is
# visible, `cpu` otherwise; the environment variable `PEFT_IMDB_PROFILE` (`colab-t4`, `cpu` or `smoke`)
# overrides the choice. Without `PEFT_IMDB_DATA` the data comes from `../shared/data/imdb` beside the
# repository (or the hub when that is missing). The runs you train go to your own store, `results-scratch/`
# (git-ignored; `PEFT_IMDB_RESULTS` names another), their figures to `results-scratch/figures/` (or
# `PEFT_IMDB_FIGURES`); the committed study in `results/` and `figures/` is only read.

# %%
REPO_URL = "https://github.com/OWNER/peft-imdb"  # from pyproject.toml: a fork sets it with scripts/set_repository.py
DRIVE_FOLDER = None  # Colab: a Drive folder keeps your runs where 05_compare sees them (set_repository.py too)
import os, subprocess, sys
if "google.colab" in sys.modules and not os.path.isdir("../src/peft_imdb"):  # Colab: clone the repository first
    assert "/OWNER/" not in REPO_URL, "set REPO_URL in this cell to the repository's URL, then run it again"
    os.path.isdir("peft-imdb") or subprocess.run(["git", "clone", "--quiet", REPO_URL, "peft-imdb"], check=True)
    os.chdir("peft-imdb/notebooks")  # the clone's committed study, and its scratch store for your runs
sys.path.append(os.path.abspath("../src"))  # a clone's peft_imdb, importable before it is installed
from peft_imdb.notebook_setup import setup  # installs a clone that lacks it, mounts Drive, says what to do
setup(REPO_URL, DRIVE_FOLDER)

# %%
# peft_imdb.views first: it quiets tqdm's ipywidgets notice before anything imports datasets.
from peft_imdb.views import (adapted_layer, as_call, describe_config, describe_settings, method_rows,
                             run_curve, run_summary)
from peft import get_peft_model

from peft_imdb.config import RunConfig, detect_profile
from peft_imdb.folders import folders
from peft_imdb.models import load_model, load_tokenizer
from peft_imdb.params import compare_parameters, expected_parameters
from peft_imdb.plan import load_or_train
from peft_imdb.table import by_store, load_results
from peft_imdb.resolved import resolve
# %%
# The profile: PEFT_IMDB_PROFILE if set (colab-t4, cpu, smoke), else colab-t4 with a CUDA GPU,
# else cpu. To choose here instead: os.environ["PEFT_IMDB_PROFILE"] = "smoke" before this line.
profile = detect_profile()
paths = folders()  # data / results / figures: PEFT_IMDB_DATA, PEFT_IMDB_RESULTS, PEFT_IMDB_FIGURES
describe_settings(profile, paths)

# %% [markdown]
# ## The run
#
# One `RunConfig`: the profile's defaults for this method. Edit this cell to change the run (any
# `RunConfig` field: `seed`, `lr`, `epochs`, `max_length`, `train_size`, ..., and `adapter`, the method's
# settings in peft's own names). The config decides the run's key in the results store (the last line of
# the table): the same config is the same run and has one row; a changed config is another run, with a
# row of its own.

# %%
config = RunConfig.from_profile(
    profile, "lora",
    data_dir=paths.data_dir,
    # e.g. seed=1, lr=1e-3, adapter={"r": 16, "lora_alpha": 32, "target_modules": ["query", "key", "value", "dense"]}
)
describe_config(config)

# %% [markdown]
# ## The adapter: the `LoraConfig` the registry builds
#
# The registry entry for `lora` (`peft_imdb/methods.py`) builds peft's `LoraConfig` from its defaults
# (`r` 8, `lora_alpha` 16, `lora_dropout` 0.1), this architecture's targets (`peft_imdb/targets.py`) and
# head (`modules_to_save`), and the settings in `config.adapter`. Below, the call that builds it, with
# the fields left at peft's defaults left out. `task_type="SEQ_CLS"` tells peft the model is a sequence
# classifier.

# %%
run = resolve(config)  # the run as it trains: precision, architecture, peft config, key
peft_config = run.peft_config  # a peft.LoraConfig
as_call(peft_config)

# %% [markdown]
# ## `get_peft_model` on the real model
#
# The profile's pretrained model with a new 2-label head (`load_model`: `AutoModelForSequenceClassification`),
# wrapped by peft with the config above. peft freezes every pretrained weight, adds `A` and `B` beside each
# targeted layer, and makes a
# trainable copy of the head (`modules_to_save`). `print_trainable_parameters` counts what will train; its
# `all params` counts the head twice (the frozen original and its trainable copy), so it exceeds the
# model's size (the formula's last line below) by the head's count.

# %%
tokenizer = load_tokenizer(config.model)
model = load_model(config.model, tokenizer)  # AutoModelForSequenceClassification, new 2-label head
peft_model = get_peft_model(model, peft_config)
peft_model.print_trainable_parameters()

# %% [markdown]
# One adapted layer: the pretrained `Linear` stays, frozen, as `base_layer`; `lora_A` (`d_in → r`) and
# `lora_B` (`r → d_out`) sit beside it, with the dropout on their input.

# %%
adapted_layer(peft_model)

# %% [markdown]
# ## What LoRA trains, and how many parameters that is
#
# Per adapted `d_out × d_in` matrix, `A` and `B` hold `r·(d_in + d_out)` parameters. Query and value are
# `h × h` in each of `L` layers, so the adapters hold `2·L·r·2h = 4·L·r·h`: 4 · 6 · 8 · 384 = **73,728** on
# all-MiniLM-L6-v2, 4 · 12 · 8 · 768 = 294,912 on roberta-base, against 22.7 M and 125 M in the models.
#
# The head is trained in full on top: BERT's pooler `h² + h` plus its classifier `2h + 2`
# (147,840 + 770 on MiniLM: the pooler is two thirds of what LoRA trains on this small model); RoBERTa's
# dense `h² + h` plus output `2h + 2` (592,130). Only adapters and head are saved (`saved_mb`).
#
# The table applies the formula to the layers peft wrapped (on a weightless copy of the model); its
# trainable total is the count `print_trainable_parameters` gave above. The learning rate is much larger
# than full fine-tuning's (the registry's table, with its evidence): with full fine-tuning's, LoRA stays
# near chance on the small CPU budget.

# %%
expected = expected_parameters(config)  # from the architecture alone, before training
expected

# %% [markdown]
# ## Training, or the stored run
#
# `load_or_train` looks up the config's key in the committed study first (`results/`, only read), then in your
# own store (`results-scratch/`). The committed study holds the CPU study's runs (the four methods and QLoRA's
# LoRA twin with 5 seeds each, made with `make study`), so on the `cpu` profile with the config above unchanged
# this cell shows the committed seed-0 row at once and says so in one line; `retrain=True` trains it again
# into your store. A changed config (another profile, e.g. Colab's `colab-t4`, or any edited field) has no
# stored run and trains here: the run loads its own copy of the model, wraps it exactly as above, trains it
# with the Hugging Face `Trainer` (its progress bar shows the steps and the validation metrics after each
# epoch), evaluates once on the test subset, and stores the run record (metrics, parameter counts, wall
# time, peak memory, environment) and the per-review predictions under the key, in your store. A run that
# cannot happen on this machine is stored as `skipped` with the reason, one that breaks as `failed` with the
# error: the cell shows the row either way, and only a finished (`ok`) run is reused.

# %%
model = peft_model = None  # the run loads its own copy; this one would add to its peak memory
row = load_or_train(config, paths.results_dir, study=paths.study_dir)  # retrain=True: train it into your store
run_summary(row)

# %% [markdown]
# The run's training loss at each logging step and its validation accuracy after each epoch, from the log
# history its record stores (the Trainer's `log_history`): a loss that does not fall is a run that did not learn.

# %%
run_curve(row)

# %% [markdown]
# ## The formula against the run
#
# The trainable count measured on the model that was trained (peft's own count for adapters, correct
# for 4-bit weights) next to the formula above.

# %%
compare_parameters(expected, row)

# %% [markdown]
# ## This method's rows: the committed study, and your runs
#
# Everything stored for `lora`, labelled by store: the committed study's rows (one per configuration and
# seed), then yours. Re-running this notebook adds no row: the same config is the same run, shown from the
# store (with `retrain=True` your row is rewritten, not added).

# %%
by_store({"committed study": method_rows(load_results(paths.study_dir), "lora"),
          "your runs": method_rows(load_results(paths.results_dir), "lora")})

# %% [markdown]
# ## Reading the numbers
#
# The row above is one run, one seed: on the profile's test subset the 95% interval of an accuracy `p` is
# about `±2·sqrt(p(1-p)/n)`: ±2.5 points at n = 1,000 test reviews, ±1.8 at 2,000, and ±10 at the `smoke`
# profile's 64, where the run only shows that the pipeline works. Seeds vary the initialization and the
# order of the batches on top of that. `peak_memory_mb` is the CUDA allocator's peak during training on a
# GPU, and the whole process's peak resident memory on CPU (`memory_kind`). 05_compare puts the four
# methods side by side over all stored seeds: mean ± std over the seeds, and 95% intervals for each accuracy
# and for its paired difference to full fine-tuning on the same test reviews, from a two-level bootstrap
# that resamples the seeds and then the reviews, so they carry the seed-to-seed spread as well as the
# finite test set; each method's verdict against full fine-tuning follows from them by the rules 05 states.

# %% [markdown]
# ## The finding
#
# What the committed study says about this method, as one sentence generated from its stored runs (every
# seed, not only the run above): the accuracy with its 95% interval over seeds and reviews, the paired
# difference to Full FT with its 95% and 90% intervals, and the verdict at the margin 05 states.

# %%
from peft_imdb.findings import method_finding

print(method_finding("lora", paths.study_dir))

# %% [markdown]
# The sentence compares LoRA at its validation-picked learning rate with Full FT on the same test reviews. The
# interval carries the seed-to-seed spread and the finite test set; *inconclusive* would mean more seeds or
# reviews, not "equal". 05 adds LoRA at QLoRA's learning rate (QLoRA's twin), and 06 asks whether its rank or
# placement is what limits it.

