"""The two training recipes the benchmarks compare, built from the package's own pieces.

- usual: what the reference studies (and most tutorials) do: every review padded to max length,
  random batches, the Trainer's defaults.
- ours: what `peft_imdb` does: dynamic padding per batch, length-grouped training batches,
  length-sorted evaluation (see `peft_imdb.train`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without install

from peft_imdb.config import RunConfig, detect_profile  # noqa: E402
from peft_imdb.data import load_imdb  # noqa: E402
from peft_imdb.hardware import fused_optimizer, resolve_precision  # noqa: E402
from peft_imdb.models import build_model, load_tokenizer, without_dropout  # noqa: E402
from peft_imdb.resolved import resolve  # noqa: E402
from peft_imdb.train import classification_metrics, in_order_trainer_class, prepare_data, training_arguments  # noqa: E402

RECIPES = ("usual", "ours")
BENCHMARKS_DIR = Path(__file__).resolve().parents[1] / "results" / "benchmarks"


def benchmark_parser(description: str) -> argparse.ArgumentParser:
    """A benchmark's argument parser with what every benchmark takes: --data-dir, --model, --out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", default=os.environ.get("PEFT_IMDB_DATA"), help="IMDb folder (default: "
                        "PEFT_IMDB_DATA, else the hub)")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--out", help="folder for the JSON record (default results/benchmarks)")
    return parser


def record_name(prefix: str, model: str, suffix: str = "", quick: bool = False) -> str:
    """A benchmark record's name: <prefix>_<model's folder name or alias><suffix>, `_quick` for a smoke run."""
    tag = Path(model).name if os.path.sep in model else model
    return f"{prefix}_{tag}{suffix}" + ("_quick" if quick else "")


def cpu_tag() -> str:
    """This machine's kind as a file-name part: `intel-xeon-processor-with-avx512-bf16`."""
    from peft_imdb.wall_time import this_machine

    text = this_machine().text.lower().replace("(r)", "").replace("(tm)", "")
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def save_benchmark(name: str, payload: dict, folder: str | Path | None = None) -> Path:
    """Store a benchmark's measurements with the environment (results/benchmarks/<name>.json), atomically."""
    import json

    from peft_imdb.environment import environment
    from peft_imdb.results import atomic_write_text

    path = Path(folder or BENCHMARKS_DIR) / f"{name}.json"
    record = {"benchmark": name, **payload, "env": environment(),
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def prepare(data_dir: str | None, model: str, **config_fields):
    """(config or None, imdb, tokenizer) for a benchmark; None after a one-line error for bad input."""
    from peft_imdb.errors import UserError

    try:  # each model with its own dropout: a cell without it takes it off (adjust_model=without_dropout)
        config = RunConfig(model=model, data_dir=data_dir, **{"dropout": True, **config_fields}) if config_fields else None
        return config, load_imdb(data_dir), load_tokenizer(model)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def padding_bound(lengths: np.ndarray, batch_size: int, max_length: int) -> float:
    """Tokens of every review padded to max_length over tokens of length-sorted batches, each padded to its longest."""
    lengths = np.sort(np.minimum(lengths, max_length))[::-1]
    grouped = sum(len(chunk) * chunk.max() for chunk in np.array_split(lengths, np.arange(batch_size, len(lengths),
                                                                                           batch_size)))
    return float(len(lengths) * max_length / grouped)


def speed_settings(recipe: str) -> dict:
    """Precision and optimizer of a recipe compared whole (mfu.py): usual fp32 + plain AdamW; ours the precision of
    the profile this machine runs (config.detect_profile: fp32 on a CPU, the hardware's on a GPU) + fused AdamW."""
    if recipe == "usual":
        return {"precision": "fp32", "optim": "adamw_torch"}
    return {"precision": resolve_precision(detect_profile().precision), "optim": fused_optimizer()}


def ours_without_dropout():
    """What `ours` does to a built model in mfu.py: every dropout off where that is the package's default, as in
    a run (models.without_dropout), else nothing."""
    from peft_imdb.config import field_default

    return None if field_default("dropout") else without_dropout


def recipe_data(config: RunConfig, tokenizer, recipe: str, imdb=None):
    """Train/validation/test subsets tokenized for a recipe: padded to max_length (usual) or not (ours)."""
    # The package's own preparation; with group_by_length it sorts the eval sets by length (ours).
    data = prepare_data(replace(config, group_by_length=recipe == "ours"), tokenizer, imdb)
    if recipe == "usual":
        pad = tokenizer.pad_token_id

        def pad_to_max(batch):
            width = config.max_length
            out = {"input_ids": [ids + [pad] * (width - len(ids)) for ids in batch["input_ids"]],
                   "attention_mask": [m + [0] * (width - len(m)) for m in batch["attention_mask"]]}
            if "token_type_ids" in batch:
                out["token_type_ids"] = [t + [0] * (width - len(t)) for t in batch["token_type_ids"]]
            return out

        data = data.map(pad_to_max, batched=True, desc="pad to max length")
    return data


@dataclass
class Outcome:
    """What one recipe cost and bought."""

    recipe: str
    train_seconds: float
    train_samples: int
    eval_seconds: float
    eval_samples: int
    accuracy: float
    steps: int
    correct: np.ndarray
    trainer: object = None  # the Trainer with the trained model, for inference measurements
    precision: str = ""  # the resolved training precision (fp32, bf16, fp16)
    optim: str = ""  # the Trainer's optimizer name

    @property
    def train_samples_per_s(self) -> float:
        """Training throughput."""
        return self.train_samples / self.train_seconds

    @property
    def eval_samples_per_s(self) -> float:
        """Evaluation throughput."""
        return self.eval_samples / self.eval_seconds


def train_recipe(config: RunConfig, data, tokenizer, recipe: str, max_steps: int = -1,
                 eval_test_each_epoch: bool = False, precision: str = "auto", optim: str | None = None,
                 adjust_model=None, callbacks: list | None = None) -> Outcome:
    """Train config's model with one recipe, then evaluate on the test subset once.

    precision: auto|fp32|bf16 (auto: from the hardware); optim: a Trainer optimizer name (None: its default);
    adjust_model: a function applied to the built model (a counterfactual); callbacks: extra Trainer callbacks.
    """
    from transformers import DataCollatorWithPadding, set_seed

    set_seed(config.seed)
    ours = recipe == "ours"
    run = resolve(replace(config, precision=precision, group_by_length=ours, optim=optim or config.optim))
    model = build_model(run, tokenizer).model
    if adjust_model is not None:
        adjust_model(model)
    eval_set = data["test"] if eval_test_each_epoch else None
    # The recipe train.py runs (one builder), without what a benchmark does not measure: no checkpoint, no
    # model selection, no logging.
    args = training_arguments(run.config, run.precision.name, "/tmp/peft-imdb-benchmark", len(data["train"]),
                              has_validation=eval_test_each_epoch, max_steps=max_steps, load_best_model_at_end=False,
                              metric_for_best_model=None, save_strategy="no", save_total_limit=None,
                              disable_tqdm=True, logging_strategy="no")
    trainer = in_order_trainer_class()(model=model, args=args, train_dataset=data["train"], eval_dataset=eval_set,
                                        data_collator=DataCollatorWithPadding(tokenizer), callbacks=callbacks)
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    prediction = trainer.predict(data["test"])
    eval_seconds = time.perf_counter() - started
    predicted = np.argmax(prediction.predictions, axis=-1)
    order = np.argsort(np.asarray(list(data["test"]["review_id"])))
    correct = (predicted == prediction.label_ids)[order]
    steps = trainer.state.global_step
    samples = steps * config.batch_size * config.gradient_accumulation_steps
    return Outcome(recipe, train_seconds, samples, eval_seconds, len(predicted),
                   classification_metrics(prediction.label_ids, predicted)["accuracy"], steps, correct, trainer,
                   run.precision.name, str(getattr(args.optim, "value", args.optim)))
