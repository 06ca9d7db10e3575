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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/peft-imdb/blob/main/notebooks/08_budget.ipynb)
#
# # 08 · The budget: do the verdicts hold with more data, epochs and length?
#
# Every verdict of 05 is about one small budget: 2000 training reviews, 1 epoch, 128 tokens. The reference
# reports trained at larger ones (3000 reviews, 3 epochs, 256 tokens; DistilBERT on all 25,000 reviews), and
# published work disagrees on the direction: PEFT methods ahead of full fine-tuning at low resource, level or
# behind with more data (Chen et al. 2022), LoRA behind at large budgets (Biderman et al. 2024). This notebook
# reads the budget experiment (`python -m peft_imdb experiment budget`): the four core methods at growing
# budgets, each against the Full FT **of its own budget**, every run scored on the study's own test reviews so
# that each point pairs with every other.
#
# Nothing here trains: the experiment is hours of CPU training, run from the command line and committed in
# `results/budget/`. The notebook shows its design (the points, the nested training reviews, the
# validation-only learning-rate check), what is stored, and the figures and table with their reading.

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
from peft_imdb.views import chart, describe_settings
from IPython.display import Markdown

from peft_imdb.budget import (CHECK_PICKS, CHECK_RULE, budget_table, checked_rates, nesting, point_rows, points_table, reading,
                              stored_runs)
from peft_imdb.comparison import MARGIN
from peft_imdb.config import detect_profile
from peft_imdb.data import load_imdb
from peft_imdb.experiments import get_experiment, profile_base
from peft_imdb.folders import folders
from peft_imdb.plots import budget_accuracy_chart, budget_gap_chart
from peft_imdb.sweep import sweep_table, write_sweep_chart

# %%
# The profile: PEFT_IMDB_PROFILE if set (colab-t4, cpu, smoke), else colab-t4 with a CUDA GPU,
# else cpu. To choose here instead: os.environ["PEFT_IMDB_PROFILE"] = "smoke" before this line.
profile = detect_profile()
paths = folders()  # data / results / figures: PEFT_IMDB_DATA, PEFT_IMDB_RESULTS, PEFT_IMDB_FIGURES
describe_settings(profile, paths)

# %% [markdown]
# ## The points
#
# Each point is the study's run of each method (01-04 on this profile) with one budget changed: its training
# reviews (500 to 8000, and every training review), or the reference reports' setting (3000 reviews, 3 epochs,
# 256 tokens). Where a point's runs are the study's own (on the `cpu` profile, the 2000-review point), they are
# copied, not trained again. Every point keeps the study's test reviews, precision and recipe.

# %%
base = profile_base(profile, data_dir=paths.data_dir)  # (method, seed) -> the study's config of that method
points_table(base)

# %% [markdown]
# ## The training reviews nest
#
# A curve over training reviews should show the effect of *more* reviews, not of *other* reviews: the sampler
# draws each label's reviews from one seeded permutation and takes its first ones, so each smaller subset lies
# inside the next larger one. Every subset leaves out the reviews whose text also occurs in the test split (IMDb
# repeats some), so no run learns a review it is scored on. The table draws each point's reviews here, from the
# data, and checks both, with the test reviews each point is scored on.

# %%
imdb = load_imdb(paths.data_dir)
nesting(base, imdb)

# %% [markdown]
# ## Learning rates at 8000 reviews: checked on validation
#
# A rate picked at 2000 reviews and 1 epoch need not suit four times the steps. So at 8000 reviews each method
# trains at half, once and twice its study rate on validation reviews only (no test review is drawn), and the
# rule below, stated before the runs, picks the rate the 8000-review and all-reviews points train at.

# %%
check = get_experiment("budget-lr").path(profile, paths.study_dir)  # the committed check, only read
print(CHECK_RULE)
picked = checked_rates(check)
print("picks:", picked if picked else "none yet: the check is not complete")
sweep_table(check)

# %%
chart(write_sweep_chart(check, paths.figures_dir, CHECK_PICKS), f"sweep_{check.name}.png",
      missing="no learning-rate check is stored for this profile: `python -m peft_imdb experiment budget-lr`.")

# %% [markdown]
# ## What is stored
#
# Finished runs per point and method, out of the seeds each point plans. The experiment resumes: a finished run
# is never trained twice, and every run of one point trains on one kind of machine, so that its times compare.

# %%
budget = get_experiment("budget").path(profile, paths.study_dir)  # the committed experiment, only read
stored_runs(budget)

# %% [markdown]
# ## Accuracy and the gap to Full FT, per budget
#
# Per point and method: accuracy with its 95% interval over seeds and reviews, the difference to the point's
# Full FT with its 95% interval and the verdict at the study's margin (±1 point; Holm over the point's three
# comparisons), training time and model state. Times compare within a point (one kind of machine), not across.

# %%
table = budget_table(budget)
Markdown("\n".join(point_rows(table)) if not table.empty else "*No budget run is stored yet.*")

# %% [markdown]
# ## The figures
#
# Accuracy against training reviews on a log axis, one line per method with its 95% band, the reference setting
# and the all-reviews point marked; then each method's difference to Full FT with its interval, the ±1 point
# band drawn, the marker saying the verdict. Both are drawn into your figures folder.

# %%
written = [] if table.empty else [budget_accuracy_chart(table, paths.figures_dir / "budget_accuracy.png"),
                                  budget_gap_chart(table, paths.figures_dir / "budget_gap.png", MARGIN)]
chart(written, "budget_accuracy.png", missing="no budget run is stored yet.")

# %%
chart(written, "budget_gap.png", missing="no budget run is stored yet.")

# %% [markdown]
# ## Reading
#
# Generated from the table by fixed rules: where each method's verdict changes with the budget, whether its
# difference moves between the smallest and the largest budget by more than their intervals allow, and how the
# shared settings compare with the reference reports (a different model: gaps, not levels).

# %%
Markdown("\n".join(reading(table)) if not table.empty else "*Nothing to read yet: no budget run is stored.*")

# %% [markdown]
# ## Training it yourself
#
# `python -m peft_imdb experiment budget --dry-run` prints every run, what is stored and the predicted time on
# your machine; without `--dry-run` it first completes the learning-rate check, then trains the points, smallest
# first, and writes `summary.md` and the two figures. Stop it at any time: finished runs are kept, and the same
# command goes on from there.
