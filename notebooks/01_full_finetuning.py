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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/peft-imdb/blob/main/notebooks/01_full_finetuning.ipynb)
#
# # 01 · Full fine-tuning
#
# Full fine-tuning updates **every weight** of the pretrained encoder together with a new classification
# head. It is the reference the parameter-efficient methods are measured against: the most parameters
# trained, the largest optimizer state, and a complete copy of the model saved for every task.

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
from peft_imdb.views import describe_config, describe_settings, method_rows, run_curve, run_summary

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
    profile, "full",
    data_dir=paths.data_dir,
    # e.g. seed=1, lr=3e-5, epochs=2, max_length=256, gradient_checkpointing=True
)
describe_config(config)

# %% [markdown]
# ## The model: a plain `AutoModelForSequenceClassification`
#
# Full fine-tuning has no peft config (`resolve(config).peft_config` is `None`): the run trains the model as
# `transformers` loads it, the pretrained encoder with a new, randomly initialized 2-label head
# (`load_model` is `AutoModelForSequenceClassification.from_pretrained` with the labels named). Every
# parameter has `requires_grad=True`.

# %%
tokenizer = load_tokenizer(config.model)
model = load_model(config.model, tokenizer)  # AutoModelForSequenceClassification, new 2-label head
total = sum(p.numel() for p in model.parameters())
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"{type(model).__name__}: {total:,} parameters, {trainable:,} of them trainable ({trainable / total:.0%})")

# %% [markdown]
# The new head, the only part not pretrained: BERT's classifier reads the pooler's output (the pooler
# is pretrained), RoBERTa's head has a dense layer of its own.

# %%
model.classifier

# %% [markdown]
# ## What full fine-tuning trains, and how many parameters that is
#
# All of it. For a BERT-style encoder with `L` layers, hidden size `h`, feed-forward size `I`, vocabulary
# `V` and `P` positions:
#
# - embeddings: `(V + P + 2)·h + 2h` (word, position and token-type tables, one LayerNorm);
# - each encoder layer: `4(h² + h)` (query, key, value, attention output) `+ (hI + I) + (Ih + h)`
#   (feed-forward) `+ 4h` (two LayerNorms);
# - the head: BERT's pooler `h² + h` and classifier `2h + 2`; RoBERTa's dense `h² + h` and output `2h + 2`.
#
# all-MiniLM-L6-v2 (`L` = 6, `h` = 384, `I` = 1536) has 22.7 M parameters, roberta-base 125 M. Training
# them with AdamW in fp32 holds about 16 bytes per parameter before any activation: the weight, its
# gradient and the optimizer's two moment estimates. The table computes the count for this profile's
# model from its architecture; its total is the count printed above.

# %%
expected = expected_parameters(config)  # from the architecture alone, before training
expected

# %% [markdown]
# ## Training, as you would write it: `TrainingArguments` and `Trainer`
#
# A run is the Hugging Face `Trainer` on the tokenized reviews. Here it is written out by hand on a small live
# run (at most 256 training reviews and 128 validation reviews, one epoch, max length 128: under a minute on
# CPU): the progress bar and the table of validation metrics after the epoch are the Trainer's own. On so few
# reviews and steps a run stays close to chance: it shows the mechanics, not what the method buys. It scores
# validation reviews only; the study's runs below add what a fair comparison needs (the recipe in
# `peft_imdb.train.training_arguments`: warmup, weight decay, length-grouped batches, the precision the
# hardware runs natively, selection on validation, one test evaluation at the end).

# %%
import tempfile

import torch
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from peft_imdb.data import load_imdb, make_splits, tokenize

reviews = make_splits(load_imdb(paths.data_dir), train_size=min(256, profile.train_size or 256), eval_size=0,
                      val_size=min(128, profile.val_size))  # no test review: a demonstration picks nothing
small = tokenize(reviews, tokenizer, max_length=128)
args = TrainingArguments(output_dir=tempfile.mkdtemp(), num_train_epochs=1, per_device_train_batch_size=8,
                         learning_rate=config.learning_rate, eval_strategy="epoch", logging_steps=10,
                         save_strategy="no", report_to=[], use_cpu=not torch.cuda.is_available())
trainer = Trainer(model=load_model(config.model, tokenizer), args=args, train_dataset=small["train"],
                  eval_dataset=small["validation"], data_collator=DataCollatorWithPadding(tokenizer),
                  compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())})
trainer.train()

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
model = trainer = None  # the run loads its own copy; these would add to its peak memory
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
# Everything stored for `full`, labelled by store: the committed study's rows (one per configuration and
# seed), then yours. Re-running this notebook adds no row: the same config is the same run, shown from the
# store (with `retrain=True` your row is rewritten, not added).

# %%
by_store({"committed study": method_rows(load_results(paths.study_dir), "full"),
          "your runs": method_rows(load_results(paths.results_dir), "full")})

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
#
# What to compare in 05: the accuracy the adapters reach against this run, and what they save in trainable
# parameters, saved size (`saved_mb`: the whole model here, only adapter and head for the others), time
# and memory.

# %% [markdown]
# ## The finding
#
# What the committed study says about this method, as one sentence generated from its stored runs (every
# seed, not only the run above): the accuracy with its 95% interval over seeds and reviews, the paired
# difference to Full FT with its 95% and 90% intervals, and the verdict at the margin 05 states.

# %%
from peft_imdb.findings import method_finding

print(method_finding("full", paths.study_dir))

# %% [markdown]
# Full FT is the reference: every other method's verdict is a paired difference to these runs on the same test
# reviews. Its interval is the yardstick: a method whose difference interval lies inside ±1 point of it is
# *equivalent*; one whose interval excludes 0 is *better* or *worse*.

