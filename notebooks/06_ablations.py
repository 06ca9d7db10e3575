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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/peft-imdb/blob/main/notebooks/06_ablations.ipynb)
#
# # 06 · Ablations
#
# The strongest reference study we found reports that LoRA on attention **and** feed-forward layers beats
# raising LoRA's rank. This notebook tests that claim and the settings the comparison in 05 rests on,
# around the defaults of 01-04 on this profile:
#
# - **rank**: LoRA with `r` = 2, 8 (the default) and 32 (query and value);
# - **placement**: attention only against attention + feed-forward, for LoRA and for IA3;
# - **precision**: each method in the precision `auto` picks on this hardware (bf16 on a CPU with native
#   bf16 or an Ampere GPU) against fp32: bf16 stays a method's CPU default only where it is *equivalent*;
# - **learning rate**: not an ablation on test reviews but the validation sweep that chose each default.
#
# Each ablation keeps its runs in `ablations/<name>/` of a store and compares every setting with its
# reference (rank 8, each method's default placement, fp32) by the verdicts of 05, paired on the same test
# reviews. A run that is one of the study's (same config, same key) is copied instead of being trained
# again, and a finished run is never trained twice. The committed ablations (`results/ablations/`) have 3
# seeds (rank, placement) and 5 (precision), run with `make ablations`; this notebook copies them into your
# store, plans seed 0 and trains only what is missing: on the committed study's profile, nothing. From
# scratch it trains seed 0 of every setting, each run about as long as
# the same method's run in 01-04: on Colab's `colab-t4` profile (roberta-base) that is hours.

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
from peft_imdb.views import chart, compact_statistics, describe_settings, experiment_plan

from peft_imdb.config import detect_profile
from peft_imdb.experiments import ablation_statistics, get_experiment, profile_base, run_experiment
from peft_imdb.folders import folders

# %%
# The profile: PEFT_IMDB_PROFILE if set (colab-t4, cpu, smoke), else colab-t4 with a CUDA GPU,
# else cpu. To choose here instead: os.environ["PEFT_IMDB_PROFILE"] = "smoke" before this line.
profile = detect_profile()
paths = folders()  # data / results / figures: PEFT_IMDB_DATA, PEFT_IMDB_RESULTS, PEFT_IMDB_FIGURES
describe_settings(profile, paths)

# %% [markdown]
# ## The runs
#
# Each ablation is an experiment (`peft_imdb/experiments.py`): its runs are built from `base`, each method's
# default config on this profile (the runs of 01-04, so they share their keys). The plan lists every run of the
# three ablations at seed 0 (its label says what it changes) and whether the committed study holds it already
# or it will train. In each section below, `run_experiment` works in your own store (`results-scratch/`, never
# the committed `results/`): it copies the committed study's runs of the ablation (every seed it has) and the
# runs 01-04 stored, trains what is missing at `SEEDS`, one run after the other in this kernel, and draws the
# ablation's figure into your figures folder: `python -m peft_imdb experiment NAME --seeds 0`, kept apart.

# %%
base = profile_base(profile, data_dir=paths.data_dir)
SEEDS = (0,)  # the committed ablations have 3 seeds (5 for precision): `experiment NAME` without --seeds
experiment_plan(["rank", "targets", "precision"], profile, paths.study_dir, paths.data_dir).query("seed in @SEEDS")

# %% [markdown]
# ## LoRA rank
#
# LoRA's adapters hold `r·(d_in + d_out)` parameters per adapted matrix: the rank sets their size and how
# much of a weight update they can express. The runs: `r` = 2, 8, 32 on query and value, with `α = 2r` so
# that the update's scale `α/r` stays 2 as in the default. Why: if accuracy rises with `r`, the default
# rank 8 is too small for this task; if it is flat, adapter size is not where accuracy comes from. Rank 8
# (`α` 16) is 02's run, taken from the store.

# %%
code, written = run_experiment("rank", profile, base, paths.results_dir, paths.figures_dir, SEEDS,
                               study=paths.study_dir)  # force=True: all again

# %% [markdown]
# ### rank: the table
#
# The same compact table as in 05, one row per setting (`lora_r` first): accuracy with its 95% interval
# over seeds and reviews, and the difference to rank 8 with its 95% and 90% intervals and the
# verdict at the margin of 05 (δ = 1 point; Holm across this ablation's comparisons).

# %%
compact_statistics(ablation_statistics("rank", profile, paths.results_dir), "lora_r")

# %% [markdown]
# ### rank: the figure
#
# Accuracy against the varied setting, written to the figures folder as `ablation_rank.png`; the
# error bars are the 95% intervals over seeds and reviews.

# %%
chart(written, "ablation_rank.png",
      missing="this ablation has no finished (`ok`) runs.")

# %% [markdown]
# ## Where the adapter goes
#
# LoRA on query and value (02's default) against LoRA on every linear layer of the encoder blocks (query,
# key, value, and the `dense` layers: attention output, feed-forward in and out); IA3 on keys and values
# only against 04's default (keys, values and the feed-forward output). Why: this is the reference study's
# finding to check, that the placement of the adapter matters more than its rank. The trainable parameters
# change with the placement: the table shows them next to the accuracy. 02's and 04's runs come from the
# store.

# %%
code, written = run_experiment("targets", profile, base, paths.results_dir, paths.figures_dir, SEEDS,
                               study=paths.study_dir)  # force=True: all again

# %% [markdown]
# ### targets: the table
#
# The same compact table as in 05, one row per setting (`placement` first): accuracy with its 95% interval
# over seeds and reviews, and the difference to the method's default placement with its 95% and 90% intervals and the
# verdict at the margin of 05 (δ = 1 point; Holm across this ablation's comparisons).

# %%
compact_statistics(ablation_statistics("targets", profile, paths.results_dir), "placement")

# %% [markdown]
# ### targets: the figure
#
# Accuracy against the varied setting, written to the figures folder as `ablation_targets.png`; the
# error bars are the 95% intervals over seeds and reviews.

# %%
chart(written, "ablation_targets.png",
      missing="this ablation has no finished (`ok`) runs.")

# %% [markdown]
# ## Precision
#
# On hardware with native bf16 (a CPU's `avx512_bf16` or `amx_bf16`, an Ampere GPU) `auto` trains in bf16
# autocast: much faster than fp32 with AMX, slower on some CPUs that have only `avx512_bf16` (the training
# times below say which this one is). Speed is no reason to accept a different answer: each method runs in both
# precisions on the same reviews and seeds, and bf16 stays a method's CPU default only where the 90% interval
# of bf16 − fp32 lies within ±1 point (*equivalent*); the registry's `cpu_bf16` says which methods passed.
# Where `auto` picks fp32 anyway (a CPU without native bf16) the two runs are one. On the `cpu` profile the
# committed ablation holds both arms of every method (its fp32 arms are the study's runs), so nothing trains.

# %%
code, written = run_experiment("precision", profile, base, paths.results_dir, paths.figures_dir, SEEDS,
                               study=paths.study_dir)  # force=True: all again

# %% [markdown]
# ### precision: the table
#
# The same compact table as in 05, one row per setting (`precision_mode` first): accuracy with its 95% interval
# over seeds and reviews, and the difference to fp32 with its 95% and 90% intervals and the
# verdict at the margin of 05 (δ = 1 point; Holm across this ablation's comparisons).

# %%
compact_statistics(ablation_statistics("precision", profile, paths.results_dir), "precision_mode")

# %% [markdown]
# ### precision: the figure
#
# Accuracy per method and precision, written to the figures folder as `ablation_precision.png`; the error
# bars are the 95% intervals over seeds and reviews, the labels the difference to fp32 and its verdict.

# %%
chart(written, "ablation_precision.png",
      missing="this ablation has no finished (`ok`) runs.")

# %% [markdown]
# ## Learning rate: the validation sweep
#
# The methods' learning rates differ by orders of magnitude, and a comparison in which one method sits at a
# poor rate measures the rate, not the method. Each default was therefore picked by a sweep on validation
# reviews drawn from the train split (`python -m peft_imdb experiment lr-sweep-first`, 2 seeds per rate): no test review was
# drawn, seen or scored, so the test set never chose a setting. The table is the sweep's, with its stated
# pick rule; the figure marks each pick.

# %%
from peft_imdb.sweep import PICK_RULE, sweep_table, write_sweep_chart

sweep = get_experiment("lr-sweep-first").path(profile, paths.study_dir)  # the committed sweep, only read
print(PICK_RULE)
sweep_table(sweep)

# %%
chart(write_sweep_chart(sweep, paths.figures_dir), f"sweep_{sweep.name}.png",
      missing=f"no validation sweep is stored for this profile: run `python -m peft_imdb experiment lr-sweep-first --profile {profile.name}`.")

# %% [markdown]
# ## Reading the ablations
#
# A verdict is read as in 05: *equivalent* needs the 90% interval of the difference inside ±1 point, and
# *inconclusive* is not a finding either way. At the `smoke` profile's 64 test reviews the intervals are
# about ±10 points, so there the notebook only shows that the pipeline works. `python -m peft_imdb report`
# adds the committed ablations' tables to `results/summary.md`; `write_report` on your store (05) adds yours to
# `results-scratch/summary.md`.
