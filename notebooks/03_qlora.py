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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/peft-imdb/blob/main/notebooks/03_qlora.ipynb)
#
# # 03 · QLoRA
#
# QLoRA (Dettmers et al., 2023) is the LoRA of 02 on a base model **stored in 4 bits**. The frozen weight
# matrices of the linear layers are quantized to **NF4** (a 4-bit code whose 16 levels are spaced for
# normally distributed weights), with **double quantization** (the per-block scaling constants are
# quantized too). At every matrix multiply a layer dequantizes its weights to the compute dtype (the run's
# precision: bf16 on this CPU where bitsandbytes computes NF4 in bf16 correctly, else fp32; fp16 on a T4;
# bf16 from compute capability 8.0). The adapters and the head are trained in full
# precision exactly as in 02, and the head stays out of 4-bit.
#
# **What it saves, honestly:** weight memory. It does not shrink activations (batch × length × hidden ×
# layers, the largest part at long sequences), nor the adapters' gradients and optimizer state, nor the
# embeddings and LayerNorms, which are not quantized. It is usually **slower** than LoRA: every 4-bit
# layer is dequantized on the fly. (The QLoRA paper also turns on gradient checkpointing, which recomputes
# the forward pass during the backward pass to save activation memory; here checkpointing is one study-wide
# setting, the same for every method, so QLoRA's time and memory differ from LoRA's by the 4-bit base
# alone.) QLoRA pays off when the weights are what does not fit (billion-parameter models on one GPU),
# not on a 22 M-parameter encoder.

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
from peft import get_peft_model, prepare_model_for_kbit_training

from peft_imdb.config import RunConfig, detect_profile
from peft_imdb.models import model_type
from peft_imdb.folders import folders
from peft_imdb.models import load_model, load_tokenizer, nf4_config
from peft_imdb.params import compare_parameters, expected_parameters, weight_memory
from peft_imdb.plan import load_or_train
from peft_imdb.table import by_store, load_results
from peft_imdb.hardware import choose_precision, nf4_support
from peft_imdb.targets import head_modules
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
    profile, "qlora",
    data_dir=paths.data_dir,
    # e.g. seed=1, lr=1e-3, adapter={"r": 16, "lora_alpha": 32}, qlora_compute_dtype="fp32", optim="paged_adamw_8bit" (CUDA)
)
describe_config(config)

# %% [markdown]
# ### Can this machine run NF4?
#
# bitsandbytes must quantize a layer to NF4 and multiply with it on this device. Where it cannot (no
# bitsandbytes, a build without support for this device), the cells that load a 4-bit model say so
# instead, and the run is stored as a **`skipped`** row with this reason, which the cells below show.

# %%
nf4_ok, reason = nf4_support()
print(reason)

# %% [markdown]
# ## The adapter: the same `LoraConfig` as 02
#
# The registry entry for `qlora` builds the same `LoraConfig` as `lora` does; what differs is its
# `quantized_base`: the base model loads in 4 bits.

# %%
run = resolve(config)  # the run as it trains: precision, architecture, peft config, key
peft_config = run.peft_config  # a peft.LoraConfig
as_call(peft_config)

# %% [markdown]
# ## The 4-bit base: `BitsAndBytesConfig`
#
# How `transformers` loads the base (`peft_imdb.models.nf4_config`): NF4 codes, double quantization, and
# the compute dtype the run's precision calls for (`hardware.qlora_compute_dtype`; fp32, the default, is not
# listed). The
# head's modules are kept out of 4-bit (`llm_int8_skip_modules`, by name and as a pattern, for nested
# names such as `bert.pooler.dense`): they are trained, and a trained 4-bit layer is not possible.

# %%
quantization = nf4_config(run.precision, head_modules(run.architecture), config.qlora_compute_dtype)
as_call(quantization)  # a transformers.BitsAndBytesConfig

# %% [markdown]
# ## Load in 4 bit, `prepare_model_for_kbit_training`, `get_peft_model`
#
# The QLoRA recipe: load the base quantized, let `prepare_model_for_kbit_training` cast the LayerNorms to
# fp32 (with `use_gradient_checkpointing=False`: checkpointing is the study-wide `--gradient-checkpointing`
# setting, off here as for every method), then add the LoRA adapters and the trainable head copy exactly
# as in 02. `print_trainable_parameters` gives 02's count: the 4-bit weights are frozen. Its `all params`
# counts the head twice (the frozen original and its trainable copy), and peft doubles the packed 4-bit
# weights to count each code as a parameter.

# %%
if nf4_ok:
    tokenizer = load_tokenizer(config.model)
    model = load_model(config.model, tokenizer, quantization_config=quantization)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    peft_model = get_peft_model(model, peft_config)
    peft_model.print_trainable_parameters()
else:
    print(f"no 4-bit model on this machine: {reason}")

# %% [markdown]
# One adapted layer: the base is a bitsandbytes `Linear4bit` now (its weight packed two 4-bit codes per
# byte), with LoRA's `lora_A` and `lora_B` in full precision beside it.

# %%
adapted_layer(peft_model) if nf4_ok else None

# %% [markdown]
# ### Weight memory, estimated from the architecture
#
# Weights only: what QLoRA shrinks. The estimate keeps the unquantized parts (embeddings, LayerNorms,
# biases, head) in fp32, as they load here; NF4 with double quantization costs about 4.13 bits per
# quantized weight.

# %%
weight_memory(config)

# %% [markdown]
# ## What QLoRA trains, and how many parameters that is
#
# Exactly LoRA's count (02): `r·(d_in + d_out)` per adapted matrix, `4·L·r·h` for query and value, plus
# the head trained in full. The 4-bit base weights are frozen and are not counted as trainable; counting
# them with `numel()` would be wrong anyway, since two 4-bit values are packed per stored byte (the
# measured count corrects for that).

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
# Everything stored for `qlora`, labelled by store: the committed study's rows (one per configuration and
# seed), then yours. Re-running this notebook adds no row: the same config is the same run, shown from the
# store (with `retrain=True` your row is rewritten, not added).

# %%
by_store({"committed study": method_rows(load_results(paths.study_dir), "qlora"),
          "your runs": method_rows(load_results(paths.results_dir), "qlora")})

# %% [markdown]
# ## QLoRA next to LoRA
#
# The same adapters on a 4-bit base against the full-precision base of 02 (when 02 has run on this
# profile): compare `train_time_s` and `peak_memory_mb`, read with `memory_kind`. On CPU the peak is the
# resident memory of the whole process (Python, torch and libraries included), so the weight saving is a
# small part of it.

# %%
by_store({"committed study": method_rows(load_results(paths.study_dir), ["lora", "qlora"]),
          "your runs": method_rows(load_results(paths.results_dir), ["lora", "qlora"])})

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

print(method_finding("qlora", paths.study_dir))

# %% [markdown]
# The sentence compares QLoRA with Full FT. How much of any difference the 4-bit base causes is a different question:
# 05's "The 4-bit base alone" pairs QLoRA with its LoRA twin, which differs from it by the 4-bit base only. The
# memory it saves is in 05's cost table.

