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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/peft-imdb/blob/main/notebooks/07_more_methods.ipynb)
#
# # 07 · More methods: DoRA, VeRA, AdaLoRA, LoHa, BitFit, prompt tuning
#
# Six more ways to fine-tune, each one entry of the method registry (`peft_imdb/methods.py`), built with
# peft's own classes where peft has one, and run through the same pipeline as the study's four:
#
# | method | what it trains | built with |
# |---|---|---|
# | DoRA | LoRA on the *direction* of each adapted weight plus a trained *magnitude* per output | `LoraConfig(use_dora=True)` |
# | VeRA | one pair of frozen random matrices shared by every layer; two scaling vectors per layer | `VeraConfig` |
# | AdaLoRA | LoRA in SVD form (`P·Λ·Q`) whose rank budget moves between layers while training | `AdaLoraConfig` + a Trainer callback |
# | LoHa | the Hadamard (element-wise) product of two low-rank products per adapted matrix | `LoHaConfig` |
# | BitFit | only the bias terms (and the head); every weight matrix frozen | no peft: `requires_grad` on biases |
# | prompt tuning | 20 trained "virtual token" embeddings put before every review; the model frozen | `PromptTuningConfig` |
#
# They are not among the study's four (registry `family="added"`, so charts highlight the four), but they go
# through the same protocol: each CPU learning rate is the pick of the final validation-only sweep
# (`results/sweeps/lr_final_cpu_validation/`), and each method has 3 seeds in the committed store, judged against
# Full FT by the same verdicts (`results/summary.md`), with Holm over the six of them alone.

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
from peft_imdb.views import as_call, describe_settings, method_rows, statistics_view
import pandas as pd
from peft import get_peft_model

from peft_imdb.config import RunConfig, detect_profile
from peft_imdb.models import model_type
from peft_imdb.folders import folders
from peft_imdb.methods import get_method, method_names
from peft_imdb.models import load_model, load_tokenizer
from peft_imdb.params import expected_parameters
from peft_imdb.plan import load_or_train
from peft_imdb.comparison import add_statistics, summarize
from peft_imdb.table import load_results
from peft_imdb.resolved import resolve
# %%
# The profile: PEFT_IMDB_PROFILE if set (colab-t4, cpu, smoke), else colab-t4 with a CUDA GPU,
# else cpu. To choose here instead: os.environ["PEFT_IMDB_PROFILE"] = "smoke" before this line.
profile = detect_profile()
paths = folders()  # data / results / figures: PEFT_IMDB_DATA, PEFT_IMDB_RESULTS, PEFT_IMDB_FIGURES
describe_settings(profile, paths)

# %% [markdown]
# ## The runs
#
# One `RunConfig` per method: the profile's defaults for it (on the `cpu` and `smoke` profiles the model is
# the offline all-MiniLM-L6-v2). Edit the `adapter` of one to change its run (peft's own field names).

# %%
MORE = method_names(families=("added",))
configs = {name: RunConfig.from_profile(profile, name, data_dir=paths.data_dir) for name in MORE}
runs = {name: resolve(config) for name, config in configs.items()}  # each run as it trains
architecture = model_type(profile.model)
tokenizer = load_tokenizer(profile.model)
pd.DataFrame({name: {"label": get_method(name).label, "learning rate": f"{config.learning_rate:g}",
                     "what it trains": get_method(name).description, "key": runs[name].key}
              for name, config in configs.items()}).T


# %%
def wrapped(name):
    """The profile's pretrained model with a new head, wrapped by peft as the registry entry says."""
    model = load_model(profile.model, tokenizer)  # AutoModelForSequenceClassification, 2 labels
    return get_peft_model(model, runs[name].peft_config)


# %% [markdown]
# ## DoRA: `LoraConfig(use_dora=True)`
#
# DoRA (Liu et al., 2024) writes each adapted weight as a magnitude times a direction,
# `W' = m · (W + B·A) / ‖W + B·A‖` (the norm taken per output), trains LoRA's `A`, `B` on the direction and
# the magnitude `m` directly. Per adapted matrix: LoRA's `r·(d_in + d_out)` plus `d_out` for `m`. Same
# rank, targets and learning rate as LoRA: the difference between the two rows is DoRA's alone.

# %%
as_call(runs["dora"].peft_config)

# %%
peft_model = wrapped("dora")
peft_model.print_trainable_parameters()

# %% [markdown]
# ## VeRA: `VeraConfig`
#
# VeRA (Kopiczko et al., 2024) keeps **one** pair of random matrices `A` (`r × d_in`) and `B` (`d_out × r`),
# drawn from a fixed seed (`projection_prng_key`), frozen and shared by all adapted layers; each layer
# trains two vectors, `ΔW = Λ_b · B · Λ_d · A` with `Λ_d` of size `r` and `Λ_b` of size `d_out`. So the
# rank can be large (peft's default 256) at `r + d_out` parameters per layer. `A` and `B` are buffers, not
# parameters: saved with the adapter, never trained.

# %%
as_call(runs["vera"].peft_config)

# %%
peft_model = wrapped("vera")
peft_model.print_trainable_parameters()

# %% [markdown]
# ## AdaLoRA: `AdaLoraConfig` and a callback
#
# AdaLoRA (Zhang et al., 2023) parametrizes each update as `P · Λ · Q`, an SVD whose singular values `Λ`
# it prunes while training: every layer starts at `init_r = 12`, and after `tinit` steps the total budget
# shrinks until the layers average `target_r = 8`, the importance of each singular value read from its
# gradient. That schedule needs the run's length: `total_step` is the run's number of optimizer steps
# (train reviews, batch size, gradient accumulation, epochs), set by the registry entry from the
# `RunConfig`, and a Trainer callback calls `model.base_model.update_and_allocate(global_step)` after every
# optimizer step, before the gradients are zeroed (peft's contract). Pruned ranks are masked to zero, not
# removed: the parameter count is the one at `init_r`, `init_r·(d_in + d_out + 1)` per matrix. The
# training loss AdaLoRA reports includes its orthogonality penalty on `P` and `Q`.

# %%
as_call(runs["adalora"].peft_config)

# %%
peft_model = wrapped("adalora")
peft_model.print_trainable_parameters()
get_method("adalora").callbacks(configs["adalora"])

# %% [markdown]
# ## LoHa: `LoHaConfig`
#
# LoHa (from FedPara, Hyeon-Woo et al., 2022, as packaged by LyCORIS) writes the update as the element-wise
# product of two rank-`r` products, `ΔW = (B₁·A₁) ⊙ (B₂·A₂)`: twice LoRA's parameters at the same `r`,
# `2·r·(d_in + d_out)`, but an update whose rank can reach `r²`. GPT-2's fused projections are not
# `Linear` layers, and peft's LoHa has no adapter for them: there the run is stored as `skipped`.

# %%
as_call(runs["loha"].peft_config)

# %%
peft_model = wrapped("loha")
peft_model.print_trainable_parameters()

# %% [markdown]
# ## BitFit: biases only, no peft
#
# BitFit (Ben Zaken et al., 2022) trains every bias term (queries, keys, values, attention output,
# feed-forward, LayerNorms, embeddings' LayerNorm) and freezes every weight matrix. peft has no config for
# it: the registry entry's `prepare` sets `requires_grad` itself, on the bias terms and the head.

# %%
model = load_model(profile.model, tokenizer)
get_method("bitfit").prepare(model, architecture)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
total = sum(p.numel() for p in model.parameters())
print(f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}")

# %% [markdown]
# ## Prompt tuning: `PromptTuningConfig`
#
# Prompt tuning (Lester et al., 2021) trains `num_virtual_tokens` embeddings that peft puts before every
# review's token embeddings; nothing inside the model changes: `num_virtual_tokens × hidden` parameters
# plus the head. A BERT classifier reads position 0, which is now the first virtual token (it attends to
# the whole review). Decoder classifiers (GPT-2, GPT-Neo) read the last non-padding token, which they find
# from the input ids that peft no longer passes: there the run is stored as `skipped`, as it is when the
# virtual tokens and the review together exceed the model's positions.

# %%
as_call(runs["prompt_tuning"].peft_config)

# %%
peft_model = wrapped("prompt_tuning")
peft_model.print_trainable_parameters()
model = peft_model = None  # every run below loads its own copy

# %% [markdown]
# ## The parameters by formula
#
# `expected_parameters` counts, from the architecture alone (a weightless copy of the model), what each
# method trains: per adapted layer by the registry entry's formula, plus the parts that are not adapted
# layers (the soft prompt, BitFit's biases) and the head. The tests check each formula against the count on
# a built model, on six architectures. The study's four methods are in the table for scale.

# %%
STUDIED = method_names(families=("core", "added"))  # the study's four and the added six
expected = {name: expected_parameters(RunConfig.from_profile(profile, name)) for name in STUDIED}
pd.DataFrame({name: {"trainable (formula)": int(table.loc["trainable (total)", "params"]),
                     "share of the model": table.loc["trainable (total)", "share of the model"],
                     "of which the head": int(table.loc[[p for p in table.index if p.startswith("head:")], "params"].sum())}
              for name, table in expected.items()}).T

# %% [markdown]
# The full formula tables of two methods whose counts are not LoRA-like: VeRA's vectors and BitFit's biases.

# %%
expected["vera"]

# %%
expected["bitfit"]

# %% [markdown]
# ## Training, or the stored runs
#
# `load_or_train` looks up each config's key in the committed study first (`results/`, only read), then in
# your own store (`results-scratch/`), and trains what neither holds into yours: on the `cpu` profile the
# committed study holds all ten at seed 0, so nothing trains; on another profile the ten train. A combination
# that cannot run here is stored as `skipped` with the reason; one that breaks as `failed` with the error.

# %%
rows = {name: load_or_train(RunConfig.from_profile(profile, name, data_dir=paths.data_dir), paths.results_dir,
                            study=paths.study_dir) for name in STUDIED}
pd.DataFrame({name: {"status": row.status, "accuracy": row.accuracy, "trainable_params": row.trainable_params,
                     "train_time_s": row.train_time_s, "reason": row.reason} for name, row in rows.items()}).T

# %% [markdown]
# ## Against the study's four methods
#
# The report's own helpers over the whole committed study: `summarize` groups the `ok` runs over seeds, and
# `add_statistics` adds the 95% interval of each accuracy and of its paired difference to full fine-tuning
# on the same test reviews, both from the two-level bootstrap (the seeds, then the reviews), and its verdict
# by the study's margin. The six methods have 3 seeds each (the study's four have 5): their intervals are
# wider, and *inconclusive* means the design could not tell, not that the methods are equal.

# %%
frame = load_results(paths.study_dir)
table = add_statistics(summarize(frame[frame["model"] == runs["dora"].identity["model"]]), paths.study_dir)
statistics_view(table)

# %% [markdown]
# ## The six methods' rows in the committed study

# %%
method_rows(frame, MORE)
