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
# # 05 · Compare
#
# This notebook **trains nothing**: it reads the results store (one JSON record and one file of per-review
# predictions per run, in `results/runs/` and `results/predictions/`), written by notebooks 01-04 or by
# `make study` (`python -m peft_imdb experiment study`: the four methods and QLoRA's LoRA twin with 5 seeds each), and compares the methods
# from those records alone: the summary over seeds with its statistics, which method to use when (derived
# from the measured table by stated rules), and the report's charts: the headline figure, confusion heatmaps, bar charts and three Pareto
# charts of accuracy against a cost (`python -m peft_imdb report` writes the same files). The ablations
# (LoRA rank, adapter placement, learning rate) are in 06.

# %% [markdown]
# ## Setup
#
# The first cell makes `peft_imdb` importable and calls `peft_imdb.notebook_setup.setup` for the rest. Where
# the package is installed already (`make setup`, then the `.venv` kernel) it only says so; in a clone of
# the repository whose kernel lacks it, it installs the clone (`pip install -e`). On Colab the cell first
# clones `REPO_URL` (set it to this repository's URL) and works in the clone's `notebooks/`; with
# `DRIVE_FOLDER` set, it mounts Google Drive and keeps run records and figures there, where 05_compare (in
# a runtime of its own) finds the runs of 01-04.
# The settings cell picks the **profile** (model, data sizes, schedule): `colab-t4` when a CUDA GPU is
# visible, `cpu` otherwise; the environment variable `PEFT_IMDB_PROFILE` (`colab-t4`, `cpu` or `smoke`)
# overrides the choice. `PEFT_IMDB_DATA`, `PEFT_IMDB_RESULTS` and `PEFT_IMDB_FIGURES` set the folders;
# without them the data comes from `../shared/data/imdb` beside the repository (or the hub when that is
# missing), run records go to `results/` and figures to `figures/` at the repository root.

# %%
REPO_URL = "https://github.com/OWNER/peft-imdb"  # placeholder: put the repository's URL here for Colab
DRIVE_FOLDER = None  # Colab: e.g. "/content/drive/MyDrive/peft-imdb" keeps the runs where 05_compare sees them
import os, subprocess, sys
if "google.colab" in sys.modules and not os.path.isdir("../src/peft_imdb"):  # Colab: clone the repository first
    assert "/OWNER/" not in REPO_URL, "set REPO_URL in this cell to the repository's URL, then run it again"
    os.path.isdir("peft-imdb") or subprocess.run(["git", "clone", "--quiet", REPO_URL, "peft-imdb"], check=True)
    os.chdir("peft-imdb/notebooks")  # the clone's results/ and figures/, as on any checkout
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
from peft_imdb.table import load_results

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
table = study_statistics(paths.results_dir)  # summarize + add_statistics, the study's setting
Markdown(findings_markdown(table=table))

# %%
compact_statistics(table)

# %% [markdown]
# ## Every run in the store
#
# All models, methods, seeds and settings, including runs that were `skipped` (e.g. QLoRA where NF4
# cannot run) or `failed`, with the reason.

# %%
frame = load_results(paths.results_dir)
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
Markdown("\n".join(twin_lines(table, frame, paths.results_dir)) or "*No QLoRA run with its twin in the store.*")

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
# `write_report` writes `summary.md` next to the run records (the same table as markdown with the rules and
# the advice, memory per phase, the ablations once 06 or `make ablations` has run them, and the runs that did
# not finish) and the charts into the figures folder; the cells after it show the saved PNGs.

# %%
written = write_report(paths.results_dir, paths.figures_dir)  # [summary.md, *charts]
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
