"""Write notebooks/*.ipynb from the cell texts below (outputs empty); run after editing a cell here.

    .venv/bin/python scripts/build_notebooks.py          # rewrite all seven notebooks, without outputs
    .venv/bin/python scripts/build_notebooks.py --check  # exit 1 if a notebook's cells differ from this file

Notebooks hold markdown that says what and why, and code cells that each call one package function;
helpers live in src/peft_imdb/notebook.py and src/peft_imdb/explore.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
REPO_PLACEHOLDER = "https://github.com/OWNER/peft-imdb"

# ---------------------------------------------------------------------------------------------
# Cells shared by every notebook
# ---------------------------------------------------------------------------------------------

SETUP_MD = """## Setup

On Colab, the first cell installs this package from its repository (set `REPO_URL` to it); anywhere
else it does nothing: run `make setup` and pick the `.venv` kernel. The settings cell picks the
**profile** (model, data sizes, schedule): `colab-t4` when a CUDA GPU is visible, `cpu` otherwise;
the environment variable `PEFT_IMDB_PROFILE` (`colab-t4`, `cpu` or `smoke`) overrides the choice.
`PEFT_IMDB_DATA`, `PEFT_IMDB_RESULTS` and `PEFT_IMDB_FIGURES` set the folders; without them the data
comes from `../shared/data/imdb` beside the repository (or the hub when that is missing), run records
go to `results/` and figures to `figures/` at the repository root."""

COLAB_CELL = f'''# Colab only: install this package from its repository. Anywhere else this cell does nothing.
REPO_URL = "{REPO_PLACEHOLDER}"  # placeholder: put the repository's URL here
# Colab gives every notebook its own runtime: to let 05_compare see the runs of 01-04, keep the
# run records on Google Drive, e.g. DRIVE_FOLDER = "/content/drive/MyDrive/peft-imdb".
DRIVE_FOLDER = None

import os
import subprocess
import sys

try:
    import google.colab  # noqa: F401  (importable only on Colab)

    ON_COLAB = True
except ImportError:
    ON_COLAB = False

if ON_COLAB:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"git+{{REPO_URL}}"], check=True)
    if DRIVE_FOLDER:
        from google.colab import drive

        drive.mount("/content/drive")
        os.environ.setdefault("PEFT_IMDB_RESULTS", f"{{DRIVE_FOLDER}}/results")
        os.environ.setdefault("PEFT_IMDB_FIGURES", f"{{DRIVE_FOLDER}}/figures")
ON_COLAB'''

SETTINGS_CELL = '''# The profile: PEFT_IMDB_PROFILE if set (colab-t4, cpu, smoke), else colab-t4 with a CUDA GPU,
# else cpu. To choose here instead: os.environ["PEFT_IMDB_PROFILE"] = "smoke" before this line.
profile = detect_profile()
paths = folders()  # data / results / figures: PEFT_IMDB_DATA, PEFT_IMDB_RESULTS, PEFT_IMDB_FIGURES
describe_settings(profile, paths)'''

# The notebook helpers come first: importing them quiets tqdm's ipywidgets notice before datasets loads.
METHOD_IMPORTS = '''from peft_imdb.notebook import (compare_parameters, describe_config, describe_settings,
                                expected_parameters, folders, method_rows, run_or_load,
                                run_summary{extra})
from peft_imdb.config import RunConfig, detect_profile
from peft_imdb.results import load_results'''


def setup_cells(imports: str) -> list:
    return [md(SETUP_MD), code(COLAB_CELL), code(imports), code(SETTINGS_CELL)]


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


# ---------------------------------------------------------------------------------------------
# 00 setup and data
# ---------------------------------------------------------------------------------------------


def setup_and_data() -> list:
    imports = '''from peft_imdb.notebook import describe_settings, folders
from IPython.display import Image

from peft_imdb.config import detect_profile
from peft_imdb.data import load_imdb
from peft_imdb.explore import (class_balance, cutoffs_for, default_length_sample, environment_summary,
                               example_reviews, length_histogram, length_statistics, profile_summary,
                               review_token_lengths, subset_overview)'''
    return [
        md("""# 00 · Setup and data

This study compares four ways of fine-tuning a pretrained encoder for IMDb sentiment classification
(positive / negative movie reviews): **full fine-tuning** (01), **LoRA** (02), **QLoRA** (03) and
**IA3** (04), on accuracy, trainable parameters, training time and peak memory (05).

This notebook checks the machine and looks at the data before anything is trained: which device and
precision the runs will use and why, what the profile trains on, how the labels are balanced, and how
long the reviews are in tokens, which decides how much of each review a model with a given maximum
length sees."""),
        *setup_cells(imports),
        md("""## The machine

Training precision follows the hardware (`peft_imdb.hardware.choose_precision`): **bf16** on GPUs of
compute capability 8.0 and above (A100, L4, H100), **fp16** below it (a Colab T4 is 7.5; there
`torch.cuda.is_bf16_supported()` can answer True through emulation, so the decision is made from the
capability), and **fp32** on CPU, where `fp16=True` would be a silent no-op and bf16 is emulated and
slower. QLoRA needs bitsandbytes to run 4-bit NF4 here: the table says whether it can.
Each run record stores the same environment, so results can be traced to the versions they came from."""),
        code("environment_summary()"),
        md("""## What the profile runs

The profile's model, data sizes and schedule, and the default learning rate of each method
(`peft_imdb.config.LEARNING_RATES`, with the evidence for each value in that file). One shared learning
rate does not fit all four methods: on a small budget LoRA stays near chance at full fine-tuning's 2e-5,
and IA3's rescaling vectors need larger steps still (the measured sweep behind the CPU values)."""),
        code("profile_summary(profile)"),
        md("""## The data

The IMDb Large Movie Review Dataset (Maas et al., 2011): 25,000 train and 25,000 test reviews. From
`PEFT_IMDB_DATA` (a folder with `train.jsonl` and `test.jsonl`), else from the hub
(`stanfordnlp/imdb`)."""),
        code("imdb = load_imdb(paths.data_dir)\nimdb"),
        md("""### Labels

Both splits are balanced, so accuracy is a fair single number and chance is 50%. The subsets the runs
use are drawn balanced as well (last section)."""),
        code("class_balance(imdb)"),
        md("""### A few reviews

Random reviews of each label, cut at 400 characters. The text is left as the dataset has it, `<br />`
tags included: the tokenizer sees them too."""),
        code("example_reviews(imdb, n=4, seed=0)"),
        md("""### Review lengths in tokens

A model reads at most `max_length` tokens of each review; the rest is cut. The counts below use the
profile model's own tokenizer (special tokens included) on the train split (a sample of 1,000 reviews on
the `smoke` profile, all 25,000 otherwise). The share cut at the profile's max length says how much of
the signal a run can see; 256 and 512 are the lengths most studies use."""),
        code("lengths = review_token_lengths(imdb, profile.model, sample_size=default_length_sample(profile))\n"
             "length_statistics(lengths, cutoffs_for(profile))"),
        md("""The same lengths as a histogram, saved to the figures folder as `review_lengths.png`. The long
tail matters twice: truncation drops the end of long reviews (where the verdict often is), and padding
every review to the max length wastes compute on short ones; the runs pad per batch instead."""),
        code('histogram = length_histogram(lengths, paths.figures_dir / "review_lengths.png", cutoffs_for(profile),\n'
             '                             model=profile.model)\nImage(filename=str(histogram))'),
        md("""## The subsets every method trains and tests on

Label-balanced and seeded (`data_seed` 42): every method and every seed sees the same reviews. The
validation reviews come from the train split, outside the training subset, and are only reported; the
test subset is evaluated once, after training, and never picks a checkpoint."""),
        code("subset_overview(imdb, profile)"),
        md("""## Next

Notebooks 01-04 train one method each on this profile and store one run record each; 05 compares them
from the store alone. On the `smoke` profile (64 reviews, 64 tokens) the numbers only show that the
pipeline works: they say nothing about the methods."""),
    ]


# ---------------------------------------------------------------------------------------------
# 01-04 the methods: one template, the texts differ
# ---------------------------------------------------------------------------------------------


def method_notebook(method: str, title: str, intro: str, trains: str, config_hint: str,
                    after_config: list | None = None, after_rows: list | None = None, closing: str = "",
                    imports: str = METHOD_IMPORTS.format(extra="")) -> list:
    short_name = {"full": "full fine-tuning"}.get(method, title.split("·")[-1].strip())
    cells = [
        md(f"# {title}\n\n{intro.strip()}"),
        *setup_cells(imports),
        md("""## The run

One `RunConfig`: the profile's defaults for this method. Edit this cell to change the run (any
`RunConfig` field: `seed`, `lr`, `epochs`, `max_length`, `train_size`, ...). The config decides the run's
key in the results store (the last line of the table): the same config is the same run and has one row;
a changed config is another run, with a row of its own."""),
        code(f'''config = RunConfig.from_profile(
    profile, "{method}",
    data_dir=paths.data_dir,
    # {config_hint}
)
describe_config(config)'''),
        *(after_config or []),
        md(f"## What {short_name} trains, and how many parameters that is\n\n{trains.strip()}"),
        code("expected = expected_parameters(config)  # from the architecture alone, before training\nexpected"),
        md("""## Training

`run_or_load` looks in the results store first. The committed store already holds the CPU study's runs
(the four methods with 3 seeds each, made with `make study`), so on the `cpu` profile with the config
above unchanged this cell shows the stored seed-0 row at once and says so in one line; `retrain=True`
trains it again and replaces that row. A changed config (another profile, e.g. Colab's `colab-t4`, or any
edited field) has no stored run and trains: `run_and_record` loads the model, trains it with the Hugging
Face `Trainer` (its progress bar shows the steps and the validation metrics after each epoch), evaluates
once on the test subset, and stores the run record (metrics, parameter counts, wall time, peak memory,
environment) and the per-review predictions under the config's key. A run that cannot happen on this
machine is stored as `skipped` with the reason, one that breaks as `failed` with the error: the cell shows
the row either way, and only a finished (`ok`) run is reused."""),
        code("row = run_or_load(config, paths.results_dir)  # retrain=True trains it again\nrun_summary(row)"),
        md("""## The formula against the run

The trainable count measured on the model that was trained (peft's own count for adapters, correct
for 4-bit weights) next to the formula above."""),
        code("compare_parameters(expected, row)"),
        md(f"""## This method's rows in the results store

Everything stored for `{method}`: one row per configuration and seed (the study's seeds; other profiles
or settings appear as separate rows). Re-running this notebook adds no row: the same config is the same
run, shown from the store (with `retrain=True` its row is rewritten, not added)."""),
        code(f'method_rows(load_results(paths.results_dir), "{method}")'),
        *(after_rows or []),
    ]
    if closing:
        cells.append(md(closing))
    return cells


READING = """## Reading the numbers

The row above is one run, one seed: on the profile's test subset the 95% interval of an accuracy `p` is
about `±2·sqrt(p(1-p)/n)`: ±2.5 points at n = 1,000 test reviews, ±1.8 at 2,000, and ±10 at the `smoke`
profile's 64, where the run only shows that the pipeline works. Seeds vary the initialization and the
order of the batches on top of that. `peak_memory_mb` is the CUDA allocator's peak during training on a
GPU, and the whole process's peak resident memory on CPU (`memory_kind`). 05_compare puts the four
methods side by side over all stored seeds: mean ± std, a 95% bootstrap interval over the test reviews,
and the paired difference to full fine-tuning on the same reviews."""


def full_finetuning() -> list:
    return method_notebook(
        "full", "01 · Full fine-tuning",
        intro="""
Full fine-tuning updates **every weight** of the pretrained encoder together with a new classification
head. It is the reference the parameter-efficient methods are measured against: the most parameters
trained, the largest optimizer state, and a complete copy of the model saved for every task.""",
        config_hint="e.g. seed=1, lr=3e-5, epochs=2, max_length=256, gradient_checkpointing=True",
        trains="""
All of it. For a BERT-style encoder with `L` layers, hidden size `h`, feed-forward size `I`, vocabulary
`V` and `P` positions:

- embeddings: `(V + P + 2)·h + 2h` (word, position and token-type tables, one LayerNorm);
- each encoder layer: `4(h² + h)` (query, key, value, attention output) `+ (hI + I) + (Ih + h)`
  (feed-forward) `+ 4h` (two LayerNorms);
- the head: BERT's pooler `h² + h` and classifier `2h + 2`; RoBERTa's dense `h² + h` and output `2h + 2`.

all-MiniLM-L6-v2 (`L` = 6, `h` = 384, `I` = 1536) has 22.7 M parameters, roberta-base 125 M. Training
them with AdamW in fp32 holds about 16 bytes per parameter before any activation: the weight, its
gradient and the optimizer's two moment estimates. The table computes the count for this profile's
model from its architecture.""",
        closing=READING + """

What to compare in 05: the accuracy the adapters reach against this run, and what they save in trainable
parameters, saved size (`saved_mb`: the whole model here, only adapter and head for the others), time
and memory.""",
    )


def lora() -> list:
    return method_notebook(
        "lora", "02 · LoRA",
        intro="""
LoRA (Hu et al., 2021) freezes the pretrained weights and learns a **low-rank update** of chosen weight
matrices: a layer computes `W·x + (α/r)·B·A·x` with `A` of shape `r × d_in` and `B` of shape `d_out × r`.
`B` starts at zero, so training starts exactly from the pretrained model. Here: rank `r` = 8, `α` = 16,
dropout 0.1 on the adapter input, on the **query and value** projections of every attention block (the
LoRA paper's choice), and the new classification head trained in full (with BERT's pooler, which
belongs to the head).""",
        config_hint='e.g. seed=1, lr=1e-3, lora_r=16, lora_alpha=32, target_modules=["query", "key", "value", "dense"]',
        trains="""
Per adapted `d_out × d_in` matrix, `A` and `B` hold `r·(d_in + d_out)` parameters. Query and value are
`h × h` in each of `L` layers, so the adapters hold `2·L·r·2h = 4·L·r·h`: 4 · 6 · 8 · 384 = **73,728** on
all-MiniLM-L6-v2, 4 · 12 · 8 · 768 = 294,912 on roberta-base, against 22.7 M and 125 M in the models.

The head is trained in full on top: BERT's pooler `h² + h` plus its classifier `2h + 2`
(147,840 + 770 on MiniLM: the pooler is two thirds of what LoRA trains on this small model); RoBERTa's
dense `h² + h` plus output `2h + 2` (592,130). Only adapters and head are saved (`saved_mb`).

The learning rate is much larger than full fine-tuning's (the profile's table in
`peft_imdb/config.py`, with its evidence): with full fine-tuning's 2e-5, LoRA stays near chance on
the small CPU budget.""",
        closing=READING,
    )


def qlora() -> list:
    return method_notebook(
        "qlora", "03 · QLoRA",
        intro="""
QLoRA (Dettmers et al., 2023) is the LoRA of 02 on a base model **stored in 4 bits**. The frozen weight
matrices of the linear layers are quantized to **NF4** (a 4-bit code whose 16 levels are spaced for
normally distributed weights), with **double quantization** (the per-block scaling constants are
quantized too). At every matrix multiply a layer dequantizes its weights to the compute dtype (fp32 on
CPU, fp16 on a T4, bf16 from compute capability 8.0). The adapters and the head are trained in full
precision exactly as in 02, and the head stays out of 4-bit.

**What it saves, honestly:** weight memory. It does not shrink activations (batch × length × hidden ×
layers, the largest part at long sequences), nor the adapters' gradients and optimizer state, nor the
embeddings and LayerNorms, which are not quantized. It is usually **slower** than LoRA: every 4-bit
layer is dequantized on the fly, and the QLoRA recipe (`prepare_model_for_kbit_training`) turns on
gradient checkpointing, which recomputes the forward pass during the backward pass to save activation
memory. QLoRA pays off when the weights are what does not fit (billion-parameter models on one GPU),
not on a 22 M-parameter encoder.""",
        config_hint='e.g. seed=1, lr=1e-3, lora_r=16, qlora_compute_dtype="fp32", optim="paged_adamw_8bit" (CUDA)',
        after_config=[
            md("""### Can this machine run NF4?

bitsandbytes must quantize a layer to NF4 and multiply with it on this device. Where it cannot (no
bitsandbytes, a build without support for this device), `run_and_record` stores a **`skipped`** row
with this reason instead of failing, and the cells below show that row."""),
            code("nf4_support()"),
            md("""### Weight memory, estimated from the architecture

Weights only: what QLoRA shrinks. The estimate keeps the unquantized parts (embeddings, LayerNorms,
biases, head) in fp32, as they load here; NF4 with double quantization costs about 4.13 bits per
quantized weight."""),
            code("weight_memory(config)"),
        ],
        trains="""
Exactly LoRA's count (02): `r·(d_in + d_out)` per adapted matrix, `4·L·r·h` for query and value, plus
the head trained in full. The 4-bit base weights are frozen and are not counted as trainable; counting
them with `numel()` would be wrong anyway, since two 4-bit values are packed per stored byte (the
measured count uses peft's count, which corrects for that).""",
        after_rows=[
            md("""## QLoRA next to LoRA

The same adapters on a 4-bit base against the full-precision base of 02 (when 02 has run on this
profile): compare `train_time_s` and `peak_memory_mb`, read with `memory_kind`. On CPU the peak is the
resident memory of the whole process (Python, torch and libraries included), so the weight saving is a
small part of it."""),
            code('method_rows(load_results(paths.results_dir), ["lora", "qlora"])'),
        ],
        closing=READING,
        imports=METHOD_IMPORTS.format(extra=", weight_memory")
        + "\nfrom peft_imdb.hardware import nf4_support",
    )


def ia3() -> list:
    return method_notebook(
        "ia3", "04 · IA3",
        intro="""
(IA)³, *Infused Adapter by Inhibiting and Amplifying Inner Activations* (Liu et al., 2022), learns **one
vector per adapted layer** that rescales activations element by element: the attention keys and values
and the feed-forward activations. The vectors start at ones (the pretrained model unchanged). No
matrices are added, so it trains the fewest parameters of the four methods; the new classification
head is trained in full, as for LoRA.""",
        config_hint="e.g. seed=1, lr=1e-2, target_modules=[\"key\", \"value\", \"output.dense\"]",
        trains="""
Targets: `key`, `value` and `output.dense`. A key or value layer gets a vector of its output size `h`; a
feed-forward layer one of its input size. In BERT and RoBERTa the name `output.dense` matches two layers
per block, the attention output projection (`attention.output.dense`, `h → h`) and the feed-forward
output (`output.dense`, `I → h`), and peft adapts both, scaling both on the input side. Per block that is
`h + h + h + I = 3h + I`, over `L` blocks `L·(3h + I)`: 6 · (3 · 384 + 1536) = **16,128** on
all-MiniLM-L6-v2, 12 · (3 · 768 + 3072) = 64,512 on roberta-base.

The head adds what it adds for LoRA (on MiniLM the pooler's 147,840 are nine times the adapter's
vectors). A rescaling vector needs large steps to move: IA3's default learning rate is far above LoRA's
(the profile's table in `peft_imdb/config.py`; the (IA)³ paper uses 3e-3).""",
        closing=READING,
    )


# ---------------------------------------------------------------------------------------------
# 05 compare: reads the store only
# ---------------------------------------------------------------------------------------------

BAR_CHART_TEXT = {
    "accuracy.png": """### Test accuracy

Mean over seeds with the standard deviation as error bar (none with one seed). The y axis starts near
the lowest bar, not at zero: read the values, and read differences against the 95% intervals in the
table above (`acc_low`, `acc_high`) and the paired comparison with full fine-tuning (`diff_low`,
`diff_high`), not against the bar heights alone.""",
    "trainable_params.png": """### Trainable parameters

Log scale: full fine-tuning trains every weight, LoRA and QLoRA the same adapters (the same count), IA3
one vector per adapted layer. On a small model the trained head (with BERT's pooler) is a large part of
the PEFT counts.""",
    "train_time.png": """### Training wall time

The training phase (with its per-epoch validation), not model loading and not the test evaluation, on
the device in the subtitle; mean ± std over seeds.
QLoRA is usually slower than LoRA: its 4-bit layers are dequantized at every multiply and gradient
checkpointing recomputes activations.""",
    "peak_memory.png": """### Peak memory during training

Read the memory kind in the subtitle. On a GPU: the CUDA allocator's peak during training (weights,
gradients, optimizer state, activations). On CPU: the peak resident memory of the whole process,
Python, torch and libraries included, so the differences between methods are a small part of each bar.""",
}

PARETO_MD = """## Accuracy against cost: the Pareto charts

Each point is one method (mean accuracy over seeds, the standard deviation as error bar) placed at one
cost. The dashed line is the **Pareto frontier**: the runs that no other run beats on both accuracy and
that cost, i.e. none is at least as accurate for less. A point below and to the right of the line is
dominated: another method gives as much accuracy for less of that cost. Points on the line are the real
choices; which one depends on the cost that binds (memory, storage per task, or time), and a gap
between two frontier points smaller than their intervals is no gap."""

PARETO_CHART_TEXT = {
    "pareto_memory.png": """### Accuracy against peak training memory

For when memory is what limits: the largest model or batch a device can train. On CPU the peak is the
whole process's resident memory: part of every point is the process itself (Python, torch, libraries),
the same for every method.""",
    "pareto_params.png": """### Accuracy against trainable parameters

Log scale. For when storage per task matters (one adapter and head per task on one shared base model)
and as a measure of how much the method changes the model.""",
    "pareto_time.png": """### Accuracy against training time

For when compute time is the budget. The same data and epochs for every method: a method to the left
finishes the same schedule sooner.""",
}
CHART_TEXT = {**BAR_CHART_TEXT, **PARETO_CHART_TEXT}  # every chart of write_report this notebook shows


def compare() -> list:
    imports = '''from peft_imdb.notebook import chart, describe_settings, folders, method_rows, rules, statistics_view
from IPython.display import Markdown

from peft_imdb.config import detect_profile
from peft_imdb.report import add_statistics, advice, summarize, write_report
from peft_imdb.results import load_results'''
    cells = [
        md("""# 05 · Compare

This notebook **trains nothing**: it reads the results store (one JSON record and one file of per-review
predictions per run, in `results/runs/` and `results/predictions/`), written by notebooks 01-04 or by
`make study` (`python -m peft_imdb matrix`: the four methods with 3 seeds each), and compares the methods
from those records alone: the summary over seeds with its statistics, which method to use when (derived
from the measured table by stated rules), and the report's charts: four bar charts and three Pareto
charts of accuracy against a cost (`python -m peft_imdb report` writes the same files). The ablations
(LoRA rank, adapter placement, learning rate) are in 06."""),
        *setup_cells(imports),
        md("""## Every run in the store

All models, methods, seeds and settings, including runs that were `skipped` (e.g. QLoRA where NF4
cannot run) or `failed`, with the reason."""),
        code("frame = load_results(paths.results_dir)\nmethod_rows(frame)"),
        md("""## The summary, with its statistics

`summarize` takes the `ok` runs and groups them by model, method, data setting (sizes, epochs, max length)
and learning rate: `accuracy_mean` ± `accuracy_std` over the seeds, `n` the number of seeds.
`add_statistics` adds what the per-review predictions allow:

- `acc_low`, `acc_high`: the 95% bootstrap interval (over test reviews) of the seed-averaged accuracy;
- `diff`, `diff_low`, `diff_high`: the paired difference to full fine-tuning on the same test reviews,
  in accuracy (0.01 = 1 point), with its 95% bootstrap interval;
- `p_value`: the test of "no difference" (a paired sign-flip permutation test over reviews, McNemar's
  exact test when each side has one seed).

A difference whose interval contains 0 is not a measured difference at this test size."""),
        code("table = add_statistics(summarize(frame), paths.results_dir)\nstatistics_view(table)"),
        md("""## Which method when

The advice is not written by hand: `advice` applies these rules to the table above, so it changes when
the runs do."""),
        code("rules()"),
        code('Markdown("\\n".join(advice(table) or ["*Not enough runs with predictions to compare with Full FT.*"]))'),
        md("""## The report

`write_report` writes `summary.md` next to the run records (shown below: the same table as markdown with
the rules and the advice, memory per phase, the ablations once 06 or `make ablations` has run them, and
the runs that did not finish) and the charts into the figures folder; the cells after it show the saved
PNGs."""),
        code("written = write_report(paths.results_dir, paths.figures_dir)  # [summary.md, *charts]\n"
             "Markdown(filename=str(written[0]))"),
        md("## The charts"),
    ]
    for name, text in BAR_CHART_TEXT.items():
        cells += [md(text), code(f'chart(written, "{name}")')]
    cells.append(md(PARETO_MD))
    for name, text in PARETO_CHART_TEXT.items():
        cells += [md(text), code(f'chart(written, "{name}")')]
    cells.append(md("""## How to read them together

Each PEFT method trades trainable parameters (and the size of what is saved per task) against accuracy,
time and memory, on the profile and device in the chart subtitles. The summary is the mean ± std over
the stored seeds, with 95% intervals over the test reviews: differences inside those intervals are not
findings. Conclusions hold for that setting only: the model size, sequence length and hardware decide
where memory and time go."""))
    return cells


# ---------------------------------------------------------------------------------------------
# 06 ablations: trains what the store does not hold yet
# ---------------------------------------------------------------------------------------------

ABLATION_TEXT = {
    "rank": """## LoRA rank

LoRA's adapters hold `r·(d_in + d_out)` parameters per adapted matrix: the rank sets their size and how
much of a weight update they can express. The runs: `r` = 2, 4, 8, 16, 32 on query and value, with
`α = 2r` so that the update's scale `α/r` stays 2 as in the default. Why: if accuracy rises with `r`, the
default rank 8 is too small for this task; if it is flat, adapter size is not where accuracy comes from.
Rank 8 (`α` 16) is 02's run, taken from the store.""",
    "targets": """## Where the adapter goes

LoRA on query and value (02's default) against LoRA on every linear layer of the encoder blocks (query,
key, value, and the `dense` layers: attention output, feed-forward in and out); IA3 on keys and values
only against 04's default (keys, values and the feed-forward output). Why: this is the reference study's
finding to check, that the placement of the adapter matters more than its rank. The trainable parameters
change with the placement: the table shows them next to the accuracy. 02's and 04's runs come from the
store.""",
    "lr": """## Learning rate

Each method at its default learning rate (the profile's table in `peft_imdb/config.py`) and at a third
and three times it. Why: the methods' defaults differ by orders of magnitude, and a comparison in which
one method sits at a poor learning rate measures the learning rate, not the method. A flat curve says
the default is not a lucky pick; a peak at an edge says the default is off. The runs at factor 1 are
01-04's, from the store; QLoRA is `skipped` where NF4 cannot run, as in 03.""",
}
ABLATION_VARIED = {"rank": "lora_r", "targets": "placement", "lr": "lr"}


def ablations() -> list:
    imports = '''from peft_imdb.notebook import (ablation_base, ablation_plan, chart, describe_settings, folders,
                                statistics_view)
from peft_imdb.ablations import run_ablation
from peft_imdb.config import detect_profile
from peft_imdb.report import ablation_table, write_ablation'''
    cells = [
        md("""# 06 · Ablations

The strongest reference study we found reports that LoRA on attention **and** feed-forward layers beats
raising LoRA's rank. This notebook tests that claim and the two settings the comparison in 05 rests on,
around the defaults of 01-04 on this profile:

- **rank**: LoRA with `r` = 2, 4, 8, 16, 32 (query and value);
- **placement**: attention only against attention + feed-forward, for LoRA and for IA3;
- **learning rate**: each method at its default × 1/3, 1 and 3.

One seed each (seed 0) unless more seeds were run into the ablation folders
(`python -m peft_imdb ablation rank --seeds 0 1 2`): the tables and figures average whatever seeds are
stored. Each ablation keeps its runs in `results/ablations/<name>/`. A run that is one of the study's
(the same config and key: rank 8, the default placements, factor 1) is copied from the main store
instead of being trained again, and a finished ablation run is never trained twice, so after
`make ablations` (the same runs from the command line, one process per run) this notebook trains
nothing on that profile. Otherwise it trains 14 runs, each about as long as the same method's run in
01-04: on Colab's `colab-t4` profile (roberta-base) that is hours."""),
        *setup_cells(imports),
        md("""## The runs

`base` holds each method's default config on this profile with seed 0: exactly the runs of 01-04, so
the ablations share their keys. The plan lists every ablation run, the setting it varies, and whether it
is already stored (in the ablation's folder, or in the study's store, then copied) or will train."""),
        code("base = ablation_base(profile, data_dir=paths.data_dir)\nablation_plan(base, paths.results_dir)"),
    ]
    for name, text in ABLATION_TEXT.items():
        varied = ABLATION_VARIED[name]
        cells += [
            md(text),
            code(f'folder = run_ablation("{name}", base, paths.results_dir)  # retrain=True trains every run again'),
            md(f"""### {name}: the table

The same statistics as in 05, one row per setting (`{varied}` first): accuracy mean ± std over the seeds,
its 95% interval over the test reviews, and the costs. There is no paired comparison with full
fine-tuning here (05 has it): an ablation compares its own settings with each other."""),
            code(f'statistics_view(ablation_table("{name}", folder), "{varied}")'),
            md(f"""### {name}: the figure

Accuracy against the varied setting, written to the figures folder as `ablation_{name}.png`; the
shaded bands (for rank and learning rate) are the 95% intervals over test reviews."""),
            code(f'chart(write_ablation("{name}", folder, paths.figures_dir), "ablation_{name}.png",\n'
                 '      missing="this ablation has no finished (`ok`) runs.")'),
        ]
    cells.append(md("""## Reading the ablations

One seed per point unless more were run: a difference inside the 95% intervals is not a finding, and at
the `smoke` profile's 64 test reviews the intervals are about ±10 points, so there the notebook only shows
that the pipeline works. `write_report` (05, or `python -m peft_imdb report`) adds these tables to
`results/summary.md`."""))
    return cells


NOTEBOOK_CELLS = {
    "00_setup_and_data": setup_and_data,
    "01_full_finetuning": full_finetuning,
    "02_lora": lora,
    "03_qlora": qlora,
    "04_ia3": ia3,
    "05_compare": compare,
    "06_ablations": ablations,
}
NEEDS_GPU = {"00_setup_and_data", "01_full_finetuning", "02_lora", "03_qlora", "04_ia3", "06_ablations"}


def build(name: str):
    """The notebook `name` with empty outputs and stable cell ids."""
    cells = NOTEBOOK_CELLS[name]()
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index:02d}"
    metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": [], "toc_visible": True},
    }
    if name in NEEDS_GPU:
        metadata["accelerator"] = "GPU"  # Colab opens it on a GPU runtime (the colab-t4 profile)
    notebook = new_notebook(cells=cells, metadata=metadata)
    nbformat.validate(notebook)
    return notebook


def cell_sources(notebook) -> list[tuple[str, str]]:
    """(cell type, source) of each cell: what --check compares (outputs and ids may differ)."""
    return [(cell["cell_type"], cell["source"]) for cell in notebook["cells"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=NOTEBOOKS_DIR, help="folder to write into")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOK_CELLS:
        path = args.out / f"{name}.ipynb"
        notebook = build(name)
        if args.check:
            if not path.is_file() or cell_sources(nbformat.read(path, as_version=4)) != cell_sources(notebook):
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, path)
        print(f"wrote {path}")
    if stale:
        print("out of date (run scripts/build_notebooks.py):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
