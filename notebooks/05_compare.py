# ---
# jupyter:
#   colab:
#     provenance: []
#     toc_visible: true
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/peft-imdb/blob/main/notebooks/05_compare.ipynb)
#
# # 05 · Compare
#
# This notebook **trains nothing**: it reads the committed study (one JSON record and one file of per-review
# predictions per run, in `results/runs/` and `results/predictions/`, made by `make study`: the four methods
# and QLoRA's LoRA twin with 5 seeds each), and compares the methods from those records alone: the summary
# over seeds with its statistics, which method to use when (derived from the measured table by stated rules),
# and the report's charts: the headline figure, confusion heatmaps, bar charts and three Pareto charts
# (`python -m peft_imdb report` drew them into `figures/`). Then, labelled apart, the
# runs you trained yourself (01-04 with a changed config or on another profile, `python -m peft_imdb run`):
# they live in your own store, `results-scratch/`, never among the study's. The ablations (LoRA rank, adapter
# placement, learning rate) are in 06.

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
from peft_imdb.findings import findings_markdown, study_statistics
from peft_imdb.views import chart, compact_statistics, describe_settings, method_rows, rules, statistics_view
from IPython.display import Markdown

from peft_imdb.config import detect_profile
from peft_imdb.folders import folders
from peft_imdb.report import advice, twin_lines, write_report
from peft_imdb.table import by_store, load_results

# %%
# The profile: PEFT_IMDB_PROFILE if set (colab-t4, cpu, smoke), else colab-t4 with a CUDA GPU,
# else cpu. To choose here instead: os.environ["PEFT_IMDB_PROFILE"] = "smoke" before this line.
profile = detect_profile()
paths = folders()  # data / results / figures: PEFT_IMDB_DATA, PEFT_IMDB_RESULTS, PEFT_IMDB_FIGURES
describe_settings(profile, paths)

# %% [markdown]
# ## What the study finds
#
# Generated from the stored runs below (the same sentences as the README's): each method's accuracy and
# its paired difference to Full FT with intervals over seeds and reviews, and its verdict at the margin
# stated before the data. Then the compact table they come from, one row per run group.

# %%
table = study_statistics(paths.study_dir)  # summarize + add_statistics, the study's setting
Markdown(findings_markdown(table=table))

# %%
compact_statistics(table)

# %% [markdown]
# ## Every run in the committed study
#
# All models, methods, seeds and settings, including runs that were `skipped` (e.g. QLoRA where NF4
# cannot run) or `failed`, with the reason.

# %%
frame = load_results(paths.study_dir)
method_rows(frame)

# %% [markdown]
# ## The summary, with its statistics
#
# `summarize` takes the `ok` runs and groups them by run identity without the seed: one row per `label`
# (the method and what sets it apart from its defaults), `accuracy_mean` ± `accuracy_std` over the seeds,
# `n` the number of seeds. `add_statistics` adds what the per-review predictions allow, resampling seeds
# and then reviews (a two-level bootstrap):
#
# - `acc_low`, `acc_high`: the 95% interval of the accuracy; `seed_sd` / `review_sd`: how much of one
#   run's spread comes from the training seed and how much from the finite test reviews;
# - `diff`, `diff_low`, `diff_high` (95%) and `diff90_low`, `diff90_high` (90%): the paired difference to
#   full fine-tuning on the same test reviews, in accuracy (0.01 = 1 point);
# - `p_holm`: the test of "no difference", Holm-adjusted across the methods compared; `verdict`: equivalent,
#   worse, better or inconclusive by the rules below; `detectable`: the smallest difference this design
#   finds at 80% power.
#
# "No significant difference" is not "equal": only *equivalent* says the two are within the margin.

# %%
statistics_view(table)  # every column; the compact table above is the same rows

# %% [markdown]
# ## The 4-bit base alone
#
# QLoRA differs from LoRA in two ways at its defaults: the 4-bit base and its learning rate. The study
# therefore also trains LoRA with exactly QLoRA's settings (its `unquantized_twin`, at QLoRA's learning rate
# on a full-precision base); `twin_lines` compares the two on the same test reviews, so the difference is the
# 4-bit base's alone.

# %%
Markdown("\n".join(twin_lines(table, frame, paths.study_dir)) or "*No QLoRA run with its twin in the store.*")

# %% [markdown]
# ## Which method when
#
# The advice is not written by hand: `advice` applies these rules (the margin is declared before the data)
# to the verdicts above, so it changes when the runs do.

# %%
rules()

# %%
Markdown("\n".join(advice(table) or ["*Not enough runs with predictions to compare with Full FT.*"]))

# %% [markdown]
# ## The report
#
# `python -m peft_imdb report` (`write_report`) wrote the study's `summary.md` next to its run records (the
# same table as markdown with the rules and the advice, memory per phase, the ablations, and the
# runs that did not finish) and its charts into `figures/`; the cells after it show those PNGs.

# %%
written = [paths.study_dir / "summary.md", *sorted(paths.study_figures_dir.glob("*.png"))]  # drawn by `report`
print("\n".join(str(path.relative_to(path.parents[1])) for path in written))

# %% [markdown]
# ## The charts

# %% [markdown]
# ### The four methods at a glance
#
# The reference reports' four charts in one figure, for Full FT, LoRA, QLoRA and IA3 at their defaults:
# accuracy with its 95% interval over seeds and reviews, training time on the machine that trained them,
# trainable parameters (with their share of Full FT's) and model-state memory. A method whose precision differs
# from the others' says so under its name.

# %%
chart(written, "headline.png")

# %% [markdown]
# ### Where each method errs
#
# The confusion matrix on the test reviews, averaged over seeds: rows are the true label, columns the
# prediction. A method that trades one kind of error for the other shows it here, not in its accuracy.

# %%
chart(written, "confusion.png")

# %% [markdown]
# ### The added methods
#
# The same four charts for the six methods added beside the study's four (DoRA, VeRA, AdaLoRA, LoHa, BitFit,
# prompt tuning), each at its validation-picked learning rate, with Full FT as the reference.

# %%
chart(written, "added_methods.png", "the store holds no run of the added methods")

# %% [markdown]
# ### Test accuracy
#
# One point per row, the mean over seeds, with its 95% interval over seeds and reviews (`acc_low`,
# `acc_high` above). Two overlapping intervals do not settle a comparison: the paired difference to full
# fine-tuning on the same reviews (`diff_low`, `diff_high`) does.

# %%
chart(written, "accuracy.png")

# %% [markdown]
# ### Trainable parameters
#
# Log scale: full fine-tuning trains every weight, LoRA and QLoRA the same adapters (the same count), IA3
# one vector per adapted layer. On a small model the trained head (with BERT's pooler) is a large part of
# the PEFT counts.

# %%
chart(written, "trainable_params.png")

# %% [markdown]
# ### Training wall time
#
# The training phase (with its per-epoch validation), not model loading and not the test evaluation, on
# the device in the subtitle; mean ± std over seeds.
# QLoRA is usually slower than LoRA: its 4-bit layers are dequantized at every multiply (gradient
# checkpointing, which would add recomputation, is one study-wide setting, off on the CPU profile).

# %%
chart(written, "train_time.png")

# %% [markdown]
# ### Training curves
#
# The training loss of each method against the optimizer step: the mean over seeds, with a band of one
# standard deviation over seeds. Every run stores its log history with its record.

# %%
chart(written, "loss_curves.png", "the stored runs predate the training-curve record (retrain to draw it)")

# %% [markdown]
# ### Memory: the model's state, and the working memory above it
#
# Model state is computed from the model: its weights (4-bit packed for QLoRA), and the gradients and
# AdamW's two moments of the trainable weights. Working memory is measured: the training peak above the
# memory held when training began (activations and temporaries), on the device in the subtitle.

# %%
chart(written, "model_state_memory.png")

# %%
chart(written, "working_memory.png", "the stored runs predate the working-memory measurement")

# %% [markdown]
# ## Accuracy against cost: the Pareto charts
#
# Each point is one method (mean accuracy over seeds, its 95% interval over seeds and reviews) placed at one
# cost. The dashed line is the **Pareto frontier**: the runs that no other run beats on both accuracy and
# that cost, i.e. none is at least as accurate for less. A point below and to the right of the line is
# dominated: another method gives as much accuracy for less of that cost. Points on the line are the real
# choices; which one depends on the cost that binds (memory, storage per task, or time), and a gap
# between two frontier points smaller than their intervals is no gap.

# %% [markdown]
# ### Accuracy against model-state memory
#
# For when memory is what limits: the largest model or batch a device can train. On CPU the peak is the
# whole process's resident memory: part of every point is the process itself (Python, torch, libraries),
# the same for every method.

# %%
chart(written, "pareto_memory.png")

# %% [markdown]
# ### Accuracy against trainable parameters
#
# Log scale. For when storage per task matters (one adapter and head per task on one shared base model)
# and as a measure of how much the method changes the model.

# %%
chart(written, "pareto_params.png")

# %% [markdown]
# ### Accuracy against training time
#
# For when compute time is the budget. The same data and epochs for every method: a method to the left
# finishes the same schedule sooner.

# %%
chart(written, "pareto_time.png")

# %% [markdown]
# ## How to read them together
#
# Each PEFT method trades trainable parameters (and the size of what is saved per task) against accuracy,
# time and memory, on the profile and device in the chart subtitles. The summary is the mean ± std over
# the stored seeds, with 95% intervals over the test reviews: differences inside those intervals are not
# findings. Conclusions hold for that setting only: the model size, sequence length and hardware decide
# where memory and time go.

# %% [markdown]
# ## Your runs, apart from the study
#
# The runs you trained (01-04 with a changed config or on another profile, `python -m peft_imdb run`, the
# `smoke` profile) are in your own store, `results-scratch/` (git-ignored; `PEFT_IMDB_RESULTS` names another,
# e.g. on Drive), never among the committed study's rows above. Here they are, labelled as yours, and
# `write_report` draws their summary and charts into your store (`results-scratch/summary.md`,
# `results-scratch/figures/`), leaving the committed ones as they are.

# %%
own = load_results(paths.results_dir)
by_store({"your runs": method_rows(own)})

# %%
own_written = write_report(paths.results_dir, paths.figures_dir)  # [your summary.md, *your charts]
chart(own_written, "accuracy.png", "no finished runs of your own yet: 01-04 train one with a changed config")
