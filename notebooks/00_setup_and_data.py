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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/peft-imdb/blob/main/notebooks/00_setup_and_data.ipynb)
#
# # 00 · Setup and data
#
# This study compares four ways of fine-tuning a pretrained encoder for IMDb sentiment classification
# (positive / negative movie reviews): **full fine-tuning** (01), **LoRA** (02), **QLoRA** (03) and
# **IA3** (04), on accuracy, trainable parameters, training time and peak memory (05), and varies LoRA's
# rank, the adapters' placement and the learning rate (06).
#
# This notebook checks the machine and looks at the data before anything is trained: which device and
# precision the runs will use and why, what the profile trains on, how the labels are balanced, and how
# long the reviews are in tokens, which decides how much of each review a model with a given maximum
# length sees.

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
from peft_imdb.views import describe_settings
from IPython.display import Image

from peft_imdb.config import detect_profile
from peft_imdb.data import load_imdb
from peft_imdb.explore import (class_balance, cutoffs_for, default_length_sample, environment_summary,
                               example_reviews, length_histogram, length_statistics, profile_summary,
                               review_token_lengths, subset_overview)
from peft_imdb.folders import folders

# %%
# The profile: PEFT_IMDB_PROFILE if set (colab-t4, cpu, smoke), else colab-t4 with a CUDA GPU,
# else cpu. To choose here instead: os.environ["PEFT_IMDB_PROFILE"] = "smoke" before this line.
profile = detect_profile()
paths = folders()  # data / results / figures: PEFT_IMDB_DATA, PEFT_IMDB_RESULTS, PEFT_IMDB_FIGURES
describe_settings(profile, paths)

# %% [markdown]
# ## The machine
#
# Training precision follows the hardware (`peft_imdb.hardware.choose_precision`): **bf16** on GPUs of
# compute capability 8.0 and above (A100, L4, H100), **fp16** below it (a Colab T4 is 7.5; there
# `torch.cuda.is_bf16_supported()` can answer True through emulation, so the decision is made from the
# capability); on CPU **bf16** where the CPU runs it natively (flags `avx512_bf16` or `amx_bf16`) and the
# method's bf16 was found equivalent to fp32 (the registry's `cpu_bf16`), else **fp32** (`fp16=True` would be a
# silent no-op on CPU, and emulated bf16 is slower). QLoRA needs bitsandbytes to run 4-bit NF4 here: the table says whether it can.
# Each run record stores the same environment, so results can be traced to the versions they came from.

# %%
environment_summary()

# %% [markdown]
# ## What the profile runs
#
# The profile's model, data sizes and schedule, and the default learning rate of each method (the method
# registry, `peft_imdb/methods.py`, with the evidence for each value). One shared learning rate does not
# fit all four methods: on a small budget LoRA stays near chance at full fine-tuning's learning rate, and
# IA3's rescaling vectors need larger steps still (the measured sweep behind the CPU values).

# %%
profile_summary(profile)

# %% [markdown]
# ## The data
#
# The IMDb Large Movie Review Dataset (Maas et al., 2011): 25,000 train and 25,000 test reviews. From
# `PEFT_IMDB_DATA` (a folder with `train.jsonl` and `test.jsonl`), else from the hub
# (`stanfordnlp/imdb`).

# %%
imdb = load_imdb(paths.data_dir)
imdb

# %% [markdown]
# ### Labels
#
# Both splits are balanced, so accuracy is a fair single number and chance is 50%. The subsets the runs
# use are drawn balanced as well (last section).

# %%
class_balance(imdb)

# %% [markdown]
# ### A few reviews
#
# Random reviews of each label, cut at 400 characters. The text is left as the dataset has it, `<br />`
# tags included: the tokenizer sees them too.

# %%
example_reviews(imdb, n=4, seed=0)

# %% [markdown]
# ### Review lengths in tokens
#
# A model reads at most `max_length` tokens of each review; the rest is cut. The counts below use the
# profile model's own tokenizer (special tokens included) on the train split (a sample of 1,000 reviews on
# the `smoke` profile, all 25,000 otherwise). The share cut at the profile's max length says how much of
# the signal a run can see; 256 and 512 are the lengths most studies use.

# %%
lengths = review_token_lengths(imdb, profile.model, sample_size=default_length_sample(profile))
length_statistics(lengths, cutoffs_for(profile))

# %% [markdown]
# The same lengths as a histogram, saved to the figures folder as `review_lengths.png`. The long
# tail matters twice: truncation drops the end of long reviews (where the verdict often is), and padding
# every review to the max length wastes compute on short ones; the runs pad per batch instead.

# %%
histogram = length_histogram(lengths, paths.figures_dir / "review_lengths.png", cutoffs_for(profile),
                             model=profile.model)
Image(filename=str(histogram))

# %% [markdown]
# ## The subsets every method trains and tests on
#
# Label-balanced and seeded (`data_seed` 42): every method and every seed sees the same reviews. The
# validation reviews come from the train split, outside the training subset, and are only reported; the
# test subset is evaluated once, after training, and never picks a checkpoint.

# %%
subset_overview(imdb, profile)

# %% [markdown]
# ## What each method trains and holds on the reference models (no weights needed)
#
# The reference reports fine-tuned roberta-base, DistilBERT, DeBERTa-v3-base and GPT-Neo 1.3B on a Colab T4.
# What a method trains follows from the architecture alone: peft wraps a model built from its config on
# PyTorch's meta device (shapes, no memory) exactly as it wraps a loaded one. `peft_imdb.estimate` does that
# with the registry's settings (this repository's runs) and with each report's own settings where it states
# them, and sets the reports' published counts beside ours (`published_trainable`, `agrees`). Model state, on a
# T4 in fp16 mixed precision = weights (fp32; QLoRA's linear layers in 4-bit NF4) + gradients + AdamW's two
# moments of what is trained. It is not the peak a T4 shows: activations, the CUDA context and temporary buffers
# come on top, and only a real step measures them (`python -m peft_imdb estimate --model roberta --measure` on a
# CUDA machine). From a terminal: `python -m peft_imdb estimate --model roberta`.

# %%
from peft_imdb.estimate import reference_table

reference_table().round({"trainable_pct": 3, "adapter_pct": 3, "model_state_mb": 1})

# %% [markdown]
# ## Next
#
# Notebooks 01-04 train one method each on this profile and store one run record each; 05 compares them
# from the store alone; 06 runs the ablations. On the `smoke` profile (64 reviews, 64 tokens) the numbers
# only show that the pipeline works: they say nothing about the methods.
