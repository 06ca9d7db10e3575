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
# Each ablation keeps its runs in `results/ablations/<name>/` and compares every setting with its
# reference (rank 8, each method's default placement, fp32) by the verdicts of 05, paired on the same test
# reviews. A run that is one of the study's (same config, same key) is copied from the main store instead
# of being trained again, and a finished run is never trained twice. The committed ablations have 3 seeds
# (rank, placement) and 5 (precision), run with `make ablations`; this notebook plans seed 0 and trains
# only what is missing, so after `make ablations` it trains nothing. From scratch it trains 9 runs, each
# about as long as the same method's run in 01-04: on Colab's `colab-t4` profile (roberta-base) that is hours.

# %% [markdown]
# ## Setup
#
# The first cell makes `peft_imdb` importable. Where it is installed already (`make setup`, then the
# `.venv` kernel) it only says so; in a clone of the repository without it, it installs the clone
# (`pip install -e`); on Colab it clones `REPO_URL` (set it to this repository's URL) and installs that.
# The settings cell picks the **profile** (model, data sizes, schedule): `colab-t4` when a CUDA GPU is
# visible, `cpu` otherwise; the environment variable `PEFT_IMDB_PROFILE` (`colab-t4`, `cpu` or `smoke`)
# overrides the choice. `PEFT_IMDB_DATA`, `PEFT_IMDB_RESULTS` and `PEFT_IMDB_FIGURES` set the folders;
# without them the data comes from `../shared/data/imdb` beside the repository (or the hub when that is
# missing), run records go to `results/` and figures to `figures/` at the repository root.

# %%
# Makes `peft_imdb` importable. Installed already: nothing to do. In a clone of the repository:
# `pip install -e` of the clone. On Colab: clones REPO_URL into the working folder and installs that.
REPO_URL = "https://github.com/OWNER/peft-imdb"  # placeholder: put the repository's URL here for Colab
# Colab gives every notebook its own runtime: to let 05_compare see the runs of 01-04, keep the run
# records on Google Drive, e.g. DRIVE_FOLDER = "/content/drive/MyDrive/peft-imdb".
DRIVE_FOLDER = None

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ON_COLAB = "google.colab" in sys.modules
PLACEHOLDER = "/OWNER/" in REPO_URL
clone = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "src" / "peft_imdb").is_dir()), None)
if clone is None and ON_COLAB and not PLACEHOLDER:
    clone = Path.cwd() / "peft-imdb"
    if not clone.is_dir():
        subprocess.run(["git", "clone", "--quiet", REPO_URL, str(clone)], check=True)
    os.chdir(clone / "notebooks")  # results/ and figures/ of the clone, as on any checkout
if importlib.util.find_spec("peft_imdb") is None and clone is not None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", str(clone)], check=True)
    sys.path.insert(0, str(clone / "src"))  # an editable install reaches new processes; this one needs the path
    importlib.invalidate_caches()
if ON_COLAB and DRIVE_FOLDER:
    from google.colab import drive

    drive.mount("/content/drive")
    os.environ.setdefault("PEFT_IMDB_RESULTS", f"{DRIVE_FOLDER}/results")
    os.environ.setdefault("PEFT_IMDB_FIGURES", f"{DRIVE_FOLDER}/figures")
if importlib.util.find_spec("peft_imdb") is None:
    print("peft_imdb is not installed: set REPO_URL in this cell to the repository's URL and run it again "
          "(or run `make setup` in a clone and pick the .venv kernel)")
else:
    print("peft_imdb is importable" + ("; on Colab, set REPO_URL in this cell to the repository's URL"
                                       if PLACEHOLDER and not ON_COLAB else ""))

# %%
# peft_imdb.views first: it quiets tqdm's ipywidgets notice before anything imports datasets.
from peft_imdb.views import ablation_base, ablation_plan, chart, describe_settings, statistics_view

from peft_imdb.ablations import ablation_configs, ablation_folder
from peft_imdb.config import detect_profile
from peft_imdb.folders import folders
from peft_imdb.plan import plan_runs, train_planned
from peft_imdb.report import ablation_table, write_ablation

# %%
# The profile: PEFT_IMDB_PROFILE if set (colab-t4, cpu, smoke), else colab-t4 with a CUDA GPU,
# else cpu. To choose here instead: os.environ["PEFT_IMDB_PROFILE"] = "smoke" before this line.
profile = detect_profile()
paths = folders()  # data / results / figures: PEFT_IMDB_DATA, PEFT_IMDB_RESULTS, PEFT_IMDB_FIGURES
describe_settings(profile, paths)

# %% [markdown]
# ## The runs
#
# `base` holds each method's default config on this profile with seed 0: exactly the runs of 01-04, so
# the ablations share their keys. The plan lists every ablation run (its label says what it changes), the
# setting it varies, and whether it is already stored (in the ablation's folder, or in the study's store,
# then copied) or will train. In each section below, `plan_runs` makes that split for one ablation (copying
# what the study holds) and `train_planned` trains the rest, one run after the other, in this kernel.

# %%
base = ablation_base(profile, data_dir=paths.data_dir)
ablation_plan(base, paths.results_dir)

# %% [markdown]
# ## LoRA rank
#
# LoRA's adapters hold `r·(d_in + d_out)` parameters per adapted matrix: the rank sets their size and how
# much of a weight update they can express. The runs: `r` = 2, 8, 32 on query and value, with `α = 2r` so
# that the update's scale `α/r` stays 2 as in the default. Why: if accuracy rises with `r`, the default
# rank 8 is too small for this task; if it is flat, adapter size is not where accuracy comes from. Rank 8
# (`α` 16) is 02's run, taken from the store.

# %%
folder = ablation_folder("rank", paths.results_dir)
plan = plan_runs(ablation_configs("rank", base), folder, reuse_from=paths.results_dir)  # force=True: all again
print(f"{len(plan.stored)} stored, {len(plan.copied)} copied from the study, {len(plan.train)} to train")
trained = train_planned(plan.train, folder, in_process=True)

# %% [markdown]
# ### rank: the table
#
# The same statistics as in 05, one row per setting (`lora_r` first): accuracy mean ± std over the seeds,
# its 95% interval over seeds and reviews, and the difference to rank 8 with its 95% and 90% intervals,
# Holm's p over this ablation's comparisons and the verdict at the margin of 05 (δ = 1 point).

# %%
statistics_view(ablation_table("rank", folder), "lora_r")

# %% [markdown]
# ### rank: the figure
#
# Accuracy against the varied setting, written to the figures folder as `ablation_rank.png`; the
# error bars are the 95% intervals over seeds and reviews.

# %%
chart(write_ablation("rank", folder, paths.figures_dir), "ablation_rank.png",
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
folder = ablation_folder("targets", paths.results_dir)
plan = plan_runs(ablation_configs("targets", base), folder, reuse_from=paths.results_dir)  # force=True: all again
print(f"{len(plan.stored)} stored, {len(plan.copied)} copied from the study, {len(plan.train)} to train")
trained = train_planned(plan.train, folder, in_process=True)

# %% [markdown]
# ### targets: the table
#
# The same statistics as in 05, one row per setting (`placement` first): accuracy mean ± std over the seeds,
# its 95% interval over seeds and reviews, and the difference to the method's default placement with its 95% and 90% intervals,
# Holm's p over this ablation's comparisons and the verdict at the margin of 05 (δ = 1 point).

# %%
statistics_view(ablation_table("targets", folder), "placement")

# %% [markdown]
# ### targets: the figure
#
# Accuracy against the varied setting, written to the figures folder as `ablation_targets.png`; the
# error bars are the 95% intervals over seeds and reviews.

# %%
chart(write_ablation("targets", folder, paths.figures_dir), "ablation_targets.png",
      missing="this ablation has no finished (`ok`) runs.")

# %% [markdown]
# ## Precision
#
# On hardware with native bf16 (this CPU's `avx512_bf16`, an Ampere GPU) `auto` trains in bf16 autocast, about
# twice as fast as fp32 here (README, Performance). Speed is no reason to accept a different answer: each
# method runs in both precisions on the same reviews and seeds, and bf16 stays a method's CPU default only
# where the 90% interval of bf16 − fp32 lies within ±1 point (*equivalent*); the registry's `cpu_bf16` says
# which methods passed. Where `auto` picks fp32 anyway (a CPU without native bf16) the two runs are one.

# %%
folder = ablation_folder("precision", paths.results_dir)
plan = plan_runs(ablation_configs("precision", base), folder, reuse_from=paths.results_dir)  # force=True: all again
print(f"{len(plan.stored)} stored, {len(plan.copied)} copied from the study, {len(plan.train)} to train")
trained = train_planned(plan.train, folder, in_process=True)

# %% [markdown]
# ### precision: the table
#
# The same statistics as in 05, one row per setting (`precision_mode` first): accuracy mean ± std over the seeds,
# its 95% interval over seeds and reviews, and the difference to fp32 with its 95% and 90% intervals,
# Holm's p over this ablation's comparisons and the verdict at the margin of 05 (δ = 1 point).

# %%
statistics_view(ablation_table("precision", folder), "precision_mode")

# %% [markdown]
# ### precision: the figure
#
# Accuracy per method and precision, written to the figures folder as `ablation_precision.png`; the error
# bars are the 95% intervals over seeds and reviews, the labels the difference to fp32 and its verdict.

# %%
chart(write_ablation("precision", folder, paths.figures_dir), "ablation_precision.png",
      missing="this ablation has no finished (`ok`) runs.")

# %% [markdown]
# ## Learning rate: the validation sweep
#
# The methods' learning rates differ by orders of magnitude, and a comparison in which one method sits at a
# poor rate measures the rate, not the method. Each default was therefore picked by a sweep on validation
# reviews drawn from the train split (`python -m peft_imdb sweep`, 2 seeds per rate): no test review was
# drawn, seen or scored, so the test set never chose a setting. The table is the sweep's, with its stated
# pick rule; the figure marks each pick.

# %%
from peft_imdb.sweep import PICK_RULE, sweep_folder, sweep_table, write_sweep_chart

sweep = sweep_folder(profile, paths.results_dir)
print(PICK_RULE)
sweep_table(sweep)

# %%
chart(write_sweep_chart(sweep, paths.figures_dir), f"sweep_{sweep.name}.png",
      missing=f"no validation sweep is stored for this profile: run `python -m peft_imdb sweep --profile {profile.name}`.")

# %% [markdown]
# ## Reading the ablations
#
# A verdict is read as in 05: *equivalent* needs the 90% interval of the difference inside ±1 point, and
# *inconclusive* is not a finding either way. At the `smoke` profile's 64 test reviews the intervals are
# about ±10 points, so there the notebook only shows that the pipeline works. `write_report` (05, or
# `python -m peft_imdb report`) adds these tables to `results/summary.md`.
