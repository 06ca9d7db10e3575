"""One run: train a method with the HF Trainer, select on validation, evaluate on the test subset once."""

from __future__ import annotations

import gc
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from .callbacks import StopWhenDiverged
from .checkpoints import last_checkpoint
from .compat import length_grouping_kwargs, warmup_kwargs
from .config import RunConfig
from .data import column, load_imdb, make_splits, tokenize, without_test_texts
from .errors import Diverged
from .hardware import device_kind, fused_optimizer, trainer_precision_args
from .learning import judge
from .models import build_model, load_tokenizer, method_callbacks, save_artifact
from .params import count_parameters, weights_mb
from .resolved import ResolvedRun
from .results import RunResult
from .tracking import PhaseStats, Tracker

CUDA_MEMORY_NOTE = "CUDA allocator peak during training, reset before it; the CUDA context is not counted"
CPU_MEMORY_NOTE = "peak resident memory of the process during training (Linux VmHWM reset before it)"
# Set (by `--report-to tensorboard`, or by hand in a notebook) to a folder: each run then writes TensorBoard
# event files to <folder>/<run key>. An environment variable, so runs in fresh processes see it too.
TENSORBOARD_ENV = "PEFT_IMDB_TENSORBOARD_DIR"
# What a run keeps of the Trainer's log history: one entry per logging step (training loss) and per epoch
# (validation metrics).
LOG_FIELDS = ("step", "epoch", "loss", "learning_rate", "grad_norm", "eval_loss", "eval_accuracy", "eval_f1")


@dataclass
class TestPredictions:
    """Per-review test outcome of one run, aligned by position."""

    review_id: np.ndarray
    label: np.ndarray
    predicted: np.ndarray
    prob_positive: np.ndarray
    remaining: TestPredictions | None = None  # every test review of the pool (RunConfig.score_remaining), apart


def predict(trainer, reviews) -> TestPredictions:
    """Score reviews once, without autograd state (the weights are final)."""
    with torch.inference_mode():
        prediction = trainer.predict(reviews)
    logits = prediction.predictions
    prob_positive = torch.softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)[:, 1].numpy()
    return TestPredictions(column(reviews, "review_id"), prediction.label_ids, np.argmax(logits, axis=-1),
                           prob_positive)


def classification_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """Accuracy, F1, precision, recall (positive class) and the 2x2 confusion matrix."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, average="binary", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
        "confusion_matrix": confusion_matrix(labels, predictions, labels=[0, 1]).tolist(),
    }


def _trainer_metrics(eval_prediction) -> dict:
    logits, labels = eval_prediction
    metrics = classification_metrics(labels, np.argmax(logits, axis=-1))
    metrics.pop("confusion_matrix")
    return metrics


def world() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun / accelerate launch; (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def in_order_trainer_class():
    """The Trainer, evaluating in dataset order: eval sets come sorted by length, predictions stay aligned."""
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

    class InOrderEvalTrainer(Trainer):
        def _get_eval_sampler(self, eval_dataset):
            if self.args.world_size > 1:  # accelerate shards it in order and gathers in order
                return None
            return SequentialSampler(eval_dataset)

    return InOrderEvalTrainer


def log_history(entries: list[dict]) -> list[dict]:
    """The Trainer's log history as plain JSON data: training-loss and evaluation entries, LOG_FIELDS only.

    The closing summary (train_runtime, train_loss of the whole run, ...) is left out: the record has it.
    """
    kept = []
    for entry in entries:
        if "loss" not in entry and "eval_accuracy" not in entry:
            continue
        kept.append({name: int(entry[name]) if name == "step" else float(entry[name])
                     for name in LOG_FIELDS if isinstance(entry.get(name), (int, float))})
    return kept


def logging_steps(train_reviews: int, config: RunConfig) -> int:
    """Every 25 optimizer steps, more often for short runs: a loss curve gets at least ~10 points."""
    steps_per_epoch = -(-train_reviews // (config.batch_size * config.gradient_accumulation_steps * world()[1]))
    return max(1, min(25, int(steps_per_epoch * config.epochs) // 10))


def require_tensorboard() -> None:
    """UserError in one line when the tensorboard package (TensorBoard's event writer) is not installed."""
    import importlib.util

    from .errors import UserError

    if importlib.util.find_spec("tensorboard") is None:
        raise UserError("--report-to tensorboard needs the tensorboard package: pip install tensorboard")


def _tensorboard_callbacks(key: str) -> list:
    """[TensorBoardCallback writing to <PEFT_IMDB_TENSORBOARD_DIR>/<key>] when that variable is set, else [].

    The writer is passed to the callback, not left to report_to: transformers 5 dropped
    TrainingArguments.logging_dir, and the folder must be the run's own on every supported version.
    """
    folder = os.environ.get(TENSORBOARD_ENV)
    if not folder:
        return []
    require_tensorboard()
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    return [TensorBoardCallback(SummaryWriter(log_dir=str(Path(folder) / key)))]


def _dir_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def draw_reviews(config: RunConfig, imdb: DatasetDict | None = None) -> DatasetDict:
    """The reviews a config's run sees: its balanced train/validation/test subsets of IMDb, as text."""
    imdb = imdb if imdb is not None else load_imdb(config.data_dir)
    if not config.evaluate_test:  # tuning: the test split is dropped before anything is drawn
        imdb = without_test_texts(imdb)
    return make_splits(imdb, config.train_size, config.eval_size, config.val_size, config.data_seed,
                       config.sampler, config.test_reviews, config.score_remaining)


def prepare_data(config: RunConfig, tokenizer, imdb: DatasetDict | None = None) -> DatasetDict:
    """A config's subsets (draw_reviews), tokenized; with group_by_length, eval sets longest first."""
    data = tokenize(draw_reviews(config, imdb), tokenizer, config.max_length, config.truncation)
    if config.group_by_length:  # each eval batch then pads to a length close to its own reviews
        for split in ("validation", "test", "remaining"):
            if split in data:
                data[split] = data[split].sort("length", reverse=True)
    return data


def training_arguments(config: RunConfig, precision: str, output_dir: str, train_reviews: int,
                       has_validation: bool, save: bool = False, **overrides):
    """The Trainer's arguments for a config in a resolved precision: the one recipe runs and benchmarks share.

    With validation reviews and several epochs, the epoch with the best validation accuracy is kept (the test
    subset plays no part in it); `save` keeps a checkpoint each epoch. `overrides` replace single arguments.
    """
    from transformers import TrainingArguments

    select_best = has_validation and config.epochs > 1
    save = save or select_best
    arguments = dict(
        output_dir=output_dir,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        **warmup_kwargs(config.warmup_ratio),
        lr_scheduler_type="linear",
        **length_grouping_kwargs(config.group_by_length),
        optim=config.optim or fused_optimizer(),
        **trainer_precision_args(precision, device_kind() == "cuda"),
        eval_strategy="epoch" if has_validation else "no",
        save_strategy="epoch" if save else "no",
        load_best_model_at_end=select_best,
        metric_for_best_model="accuracy" if select_best else None,
        save_total_limit=1 if save else None,  # with selection the best one is kept too
        logging_strategy="steps",
        logging_steps=logging_steps(train_reviews, config),
        report_to=[],
        seed=config.seed,
        data_seed=config.seed,
        dataloader_num_workers=0,
        disable_tqdm=False,
        **({"ddp_backend": "gloo"} if device_kind() == "cpu" and world()[1] > 1 else {}),
        **({"ddp_find_unused_parameters": False} if world()[1] > 1 else {}),
    )
    return TrainingArguments(**{**arguments, **overrides})


def train_and_evaluate(run: ResolvedRun, imdb: DatasetDict | None = None,
                       checkpoints: str | os.PathLike | None = None) -> tuple[RunResult, TestPredictions | None]:
    """Train and evaluate one resolved run, returning its record and per-review test predictions (None for tuning).

    Raises UserError/Unsupported for bad input or hardware. With `checkpoints`, a checkpoint is saved
    there each epoch and training goes on from the newest one.
    """
    from transformers import DataCollatorWithPadding, set_seed

    config = run.config
    set_seed(config.seed)
    tracker = Tracker()
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    data = prepare_data(config, tokenizer, imdb)
    with tracker.phase("load"):
        built = build_model(run, tokenizer)
    model = built.model
    counts = count_parameters(model, built.head_modules)
    weights = weights_mb(model)

    with tempfile.TemporaryDirectory(prefix="peft-imdb-") as workdir:
        has_val = len(data["validation"]) > 0
        checkpoint_folder = Path(checkpoints) if checkpoints else None
        args = training_arguments(config, run.precision.name, str(checkpoint_folder or workdir), len(data["train"]),
                                  has_val, save=checkpoint_folder is not None)
        divergence = StopWhenDiverged()
        trainer = in_order_trainer_class()(
            model=model,
            args=args,
            train_dataset=data["train"],
            eval_dataset=data["validation"] if has_val else None,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=_trainer_metrics,
            callbacks=[tracker.callback(), divergence, *method_callbacks(run), *_tensorboard_callbacks(run.key)],
        )
        resume_from = last_checkpoint(checkpoint_folder)
        train_output = trainer.train(resume_from_checkpoint=resume_from)
        if divergence.step is not None:
            raise Diverged(divergence.step, divergence.loss)
        val_history = [log["eval_accuracy"] for log in trainer.state.log_history if "eval_accuracy" in log]
        # With selection, the model now holds the best epoch's weights: report that epoch's score.
        val_accuracy = trainer.state.best_metric if args.load_best_model_at_end else (val_history[-1] if val_history
                                                                                      else None)

        # The test subset is evaluated once, after training: it never picks a checkpoint. A tuning run
        # (evaluate_test False) has no test subset at all: it is chosen on validation alone.
        metrics, test_reviews = {}, None
        if config.evaluate_test:
            with tracker.phase("eval"):
                test_reviews = predict(trainer, data["test"])
            metrics = classification_metrics(test_reviews.label, test_reviews.predicted)
        if config.score_remaining:  # after the test subset, in a phase of its own: eval_time_s stays comparable
            with tracker.phase("remaining"):
                test_reviews.remaining = predict(trainer, data["remaining"])
            metrics.update(remaining_accuracy=float(np.mean(test_reviews.remaining.label
                                                            == test_reviews.remaining.predicted)),
                           remaining_reviews=len(data["remaining"]))

        artifact = Path(workdir) / "artifact"
        save_artifact(model, artifact, config.method)
        saved_mb = _dir_size_mb(artifact)

    history = log_history(trainer.state.log_history)
    losses = [entry["loss"] for entry in history if "loss" in entry] or [float(train_output.training_loss)]
    judged_on = "test" if config.evaluate_test else "validation"
    scored = metrics.get("accuracy", val_accuracy)
    learning = judge(losses, scored, len(data["test"] if config.evaluate_test else data["validation"]), judged_on)
    train_stats, load_stats = tracker.phases["train"], tracker.phases["load"]
    eval_stats = tracker.phases.get("eval", PhaseStats(seconds=float("nan"), peak_mb=None))
    result = run.record(
        "ok",
        **metrics,
        val_accuracy=val_accuracy,
        val_accuracy_per_epoch=val_history,
        log_history=history,
        train_loss=float(train_output.training_loss),
        trainable_params=counts.trainable,
        adapter_params=counts.adapter,
        head_params=counts.head,
        total_params=counts.total,
        train_time_s=train_stats.seconds,
        eval_time_s=eval_stats.seconds if "test" in data else None,
        load_time_s=tracker.phases["load"].seconds,
        train_samples_per_s=len(data["train"]) * config.epochs / train_stats.seconds,
        eval_samples_per_s=len(data["test"]) / eval_stats.seconds if "test" in data else None,
        peak_memory_mb=train_stats.peak_mb,
        train_start_memory_mb=train_stats.start_mb,
        peak_reserved_mb=train_stats.peak_reserved_mb,
        eval_peak_memory_mb=eval_stats.peak_mb,
        eval_peak_reserved_mb=eval_stats.peak_reserved_mb,
        load_peak_memory_mb=load_stats.peak_mb,
        load_peak_reserved_mb=load_stats.peak_reserved_mb,
        frozen_weights_mb=weights["frozen"],
        trainable_weights_mb=weights["trainable"],
        memory_kind=tracker.memory_kind,
        memory_note=CUDA_MEMORY_NOTE if tracker.cuda else CPU_MEMORY_NOTE,
        base_weight_bits=built.base_weight_bits,
        target_modules=built.target_modules,
        gradient_checkpointing=built.gradient_checkpointing,
        saved_mb=saved_mb,
        optimizer=trainer.args.optim.value if hasattr(trainer.args.optim, "value") else str(trainer.args.optim),
        attention=getattr(model.config, "_attn_implementation", None),
        world_size=world()[1],
        train_steps=trainer.state.global_step,
        resumed_from_step=int(resume_from.rsplit("-", 1)[1]) if resume_from else None,
        learned=learning.learned,
        not_learned_reason=learning.reason,
    )
    del model, trainer
    release()
    return result, test_reviews


def release() -> None:
    """Collect dropped models and free cached CUDA memory so the next run starts clean."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
