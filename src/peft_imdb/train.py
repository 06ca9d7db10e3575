"""One run: train a method with the HF Trainer, evaluate on the test subset once, return a RunResult."""

from __future__ import annotations

import gc
import multiprocessing
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from .config import RunConfig
from .data import load_imdb, make_splits, tokenize
from .errors import Unsupported, UserError
from .hardware import choose_precision, device_kind
from .methods import build_model, count_parameters, weights_mb
from .models import load_tokenizer
from .results import RunResult, checkpoint_dir, environment, read_result, save_predictions, save_result
from .tracking import Tracker

CUDA_MEMORY_NOTE = "CUDA allocator peak during training, reset before it; the CUDA context is not counted"
CPU_MEMORY_NOTE = "peak resident memory of the process during training (Linux VmHWM reset before it)"


@dataclass
class TestPredictions:
    """Per-review test outcome of one run, aligned by position."""

    review_id: np.ndarray
    label: np.ndarray
    predicted: np.ndarray
    prob_positive: np.ndarray


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


def _warmup(arguments_class, ratio: float) -> dict:
    """transformers 5 takes a ratio as a float `warmup_steps`; 4.x (Colab) has `warmup_ratio`."""
    import inspect

    if "warmup_ratio" in inspect.signature(arguments_class.__init__).parameters:
        return {"warmup_ratio": ratio}
    return {"warmup_steps": ratio}


def world() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun / accelerate launch; (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _length_grouping(arguments_class, on: bool) -> dict:
    """transformers 5 takes `train_sampling_strategy`; 4.x (Colab) has `group_by_length`."""
    import inspect

    if "train_sampling_strategy" in inspect.signature(arguments_class.__init__).parameters:
        return {"train_sampling_strategy": "group_by_length" if on else "random"}
    return {"group_by_length": on}


def _trainer_class():
    """The Trainer, evaluating in dataset order: eval sets come sorted by length, predictions stay aligned."""
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

    class InOrderEvalTrainer(Trainer):
        def _get_eval_sampler(self, eval_dataset):
            if self.args.world_size > 1:  # accelerate shards it in order and gathers in order
                return None
            return SequentialSampler(eval_dataset)

    return InOrderEvalTrainer


def _dir_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def prepare_data(config: RunConfig, tokenizer, imdb: DatasetDict | None = None) -> DatasetDict:
    """Balanced train/validation/test subsets of IMDb, tokenized; with group_by_length, eval sets longest first."""
    imdb = imdb if imdb is not None else load_imdb(config.data_dir)
    splits = make_splits(imdb, config.train_size, config.eval_size, config.val_size, config.data_seed)
    data = tokenize(splits, tokenizer, config.max_length, config.truncation)
    if config.group_by_length:  # each eval batch then pads to a length close to its own reviews
        for split in ("validation", "test"):
            data[split] = data[split].sort("length", reverse=True)
    return data


def _last_checkpoint(folder: Path | None) -> str | None:
    """The newest checkpoint-N folder under folder, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder is not None and folder.is_dir() else None


def train_and_test(config: RunConfig, imdb: DatasetDict | None = None, save_dir: str | None = None,
                   checkpoints: str | os.PathLike | None = None) -> tuple[RunResult, TestPredictions]:
    """Train and evaluate one method, returning its row and per-review test predictions.

    Raises UserError/Unsupported for bad input or hardware. With `checkpoints`, a checkpoint is saved
    there each epoch and training goes on from the newest one.
    """
    from transformers import DataCollatorWithPadding, TrainingArguments, set_seed

    set_seed(config.seed)
    precision = choose_precision()
    tracker = Tracker()
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    data = prepare_data(config, tokenizer, imdb)
    with tracker.phase("load"):
        model, info = build_model(config, tokenizer, precision)
    counts = count_parameters(model, info.head_modules)
    weights = weights_mb(model)

    with tempfile.TemporaryDirectory(prefix="peft-imdb-") as workdir:
        has_val = len(data["validation"]) > 0
        # Model selection on validation: with several epochs, keep the epoch with the best
        # validation accuracy. The test subset plays no part in it.
        select_best = has_val and config.epochs > 1
        checkpoint_folder = Path(checkpoints) if checkpoints else None
        save = select_best or checkpoint_folder is not None
        args = TrainingArguments(
            output_dir=str(checkpoint_folder) if checkpoint_folder else workdir,
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.eval_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            **_warmup(TrainingArguments, config.warmup_ratio),
            lr_scheduler_type="linear",
            **_length_grouping(TrainingArguments, config.group_by_length),
            **({"optim": config.optim} if config.optim else {}),
            fp16=precision.fp16,
            bf16=precision.bf16,
            eval_strategy="epoch" if has_val else "no",
            save_strategy="epoch" if save else "no",
            load_best_model_at_end=select_best,
            metric_for_best_model="accuracy" if select_best else None,
            save_total_limit=1 if save else None,  # with selection the best one is kept too
            logging_strategy="steps",
            logging_steps=25,
            report_to=[],
            seed=config.seed,
            data_seed=config.seed,
            dataloader_num_workers=0,
            disable_tqdm=False,
            use_cpu=device_kind() == "cpu",
            **({"ddp_backend": "gloo"} if device_kind() == "cpu" and world()[1] > 1 else {}),
            **({"ddp_find_unused_parameters": False} if world()[1] > 1 else {}),
        )
        trainer = _trainer_class()(
            model=model,
            args=args,
            train_dataset=data["train"],
            eval_dataset=data["validation"] if has_val else None,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=_trainer_metrics,
            callbacks=[tracker.callback()],
        )
        resume_from = _last_checkpoint(checkpoint_folder)
        train_output = trainer.train(resume_from_checkpoint=resume_from)
        val_history = [log["eval_accuracy"] for log in trainer.state.log_history if "eval_accuracy" in log]
        # With selection, the model now holds the best epoch's weights: report that epoch's score.
        val_accuracy = trainer.state.best_metric if select_best else (val_history[-1] if val_history else None)

        # The test subset is evaluated once, after training: it never picks a checkpoint.
        with tracker.phase("eval"):
            prediction = trainer.predict(data["test"])
        logits = prediction.predictions
        predictions = np.argmax(logits, axis=-1)
        metrics = classification_metrics(prediction.label_ids, predictions)
        prob_positive = torch.softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)[:, 1].numpy()
        test_reviews = TestPredictions(np.asarray(list(data["test"]["review_id"])), prediction.label_ids,
                                       predictions, prob_positive)

        artifact = Path(save_dir) if save_dir else Path(workdir) / "artifact"
        model.save_pretrained(artifact, safe_serialization=True)
        saved_mb = _dir_size_mb(artifact)

    train_stats, eval_stats, load_stats = tracker.phases["train"], tracker.phases["eval"], tracker.phases["load"]
    result = RunResult(
        key=config.key(),
        model=config.model,
        method=config.method,
        seed=config.seed,
        status="ok",
        config=config.to_dict(),
        **metrics,
        val_accuracy=val_accuracy,
        val_accuracy_per_epoch=val_history,
        train_loss=float(train_output.training_loss),
        trainable_params=counts.trainable,
        adapter_params=counts.adapter,
        head_params=counts.head,
        total_params=counts.total,
        train_time_s=train_stats.seconds,
        eval_time_s=eval_stats.seconds,
        load_time_s=tracker.phases["load"].seconds,
        train_samples_per_s=len(data["train"]) * config.epochs / train_stats.seconds,
        eval_samples_per_s=len(data["test"]) / eval_stats.seconds,
        peak_memory_mb=train_stats.peak_mb,
        peak_reserved_mb=train_stats.peak_reserved_mb,
        eval_peak_memory_mb=eval_stats.peak_mb,
        eval_peak_reserved_mb=eval_stats.peak_reserved_mb,
        load_peak_memory_mb=load_stats.peak_mb,
        load_peak_reserved_mb=load_stats.peak_reserved_mb,
        frozen_weights_mb=weights["frozen"],
        trainable_weights_mb=weights["trainable"],
        memory_kind=tracker.memory_kind,
        memory_note=CUDA_MEMORY_NOTE if tracker.cuda else CPU_MEMORY_NOTE,
        base_weight_bits=info.base_weight_bits,
        target_modules=info.target_modules,
        gradient_checkpointing=info.gradient_checkpointing,
        saved_mb=saved_mb,
        precision_mode=precision.name,
        attention=getattr(model.config, "_attn_implementation", None),
        world_size=world()[1],
        train_steps=trainer.state.global_step,
        lr=config.learning_rate,
        resumed_from_step=int(resume_from.rsplit("-", 1)[1]) if resume_from else None,
        env=environment(),
    )
    del model, trainer
    release()
    return result, test_reviews


def run_experiment(config: RunConfig, imdb: DatasetDict | None = None, save_dir: str | None = None,
                   checkpoints: str | os.PathLike | None = None) -> RunResult:
    """Train and evaluate one method and return its row (train_and_test without the predictions)."""
    return train_and_test(config, imdb, save_dir, checkpoints)[0]


def release() -> None:
    """Collect dropped models and free cached CUDA memory so the next run starts clean."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def failed_result(config: RunConfig, status: str, reason: str) -> RunResult:
    """A record for a run that did not finish: `failed` or `skipped`, with the reason."""
    return RunResult(
        key=config.key(), model=config.model, method=config.method, seed=config.seed,
        status=status, reason=reason, config=config.to_dict(), lr=config.learning_rate, env=environment(),
    )


def run_and_record(config: RunConfig, results_dir: str | os.PathLike | None = None,
                   imdb: DatasetDict | None = None) -> RunResult:
    """Run one config and store its row: ok, skipped (hardware) or failed (with the error).

    When the store refuses the write (full disk, read-only), the record is printed on stdout as JSON and
    StoreWriteError (a UserError) stops the command; no partial file is left.
    """
    checkpoints = checkpoint_dir(config.key(), results_dir) if config.resume else None
    predictions = None
    try:
        result, predictions = train_and_test(config, imdb, checkpoints=checkpoints)
    except UserError:
        raise  # bad input stops the whole command: it would fail every run the same way
    except Unsupported as exc:
        result = failed_result(config, "skipped", str(exc))
    except Exception as exc:  # one run's failure must not end a matrix
        first = str(exc).splitlines()[0] if str(exc) else ""
        result = failed_result(config, "failed", f"{type(exc).__name__}: {first}"[:500])
        release()
    if world()[0] != 0:
        return result  # under torchrun every process trains; only rank 0 writes the row
    # --- reliability: a refused write loses nothing the user needs (claims.store_write_failed) ---
    from .claims import is_store_error, store_write_failed
    from .results import results_dir as _results_root

    written = None
    try:
        if predictions is not None:
            written = save_predictions(result.key, predictions.review_id, predictions.label,
                                       predictions.predicted, predictions.prob_positive, results_dir)
        save_result(result, results_dir)
    except OSError as exc:
        if not is_store_error(exc):
            raise
        if written is not None:  # no predictions without their record
            written.unlink(missing_ok=True)
        raise store_write_failed(result, _results_root(results_dir), exc) from None
    # --- end reliability ---
    if checkpoints is not None and result.status == "ok":
        shutil.rmtree(checkpoints, ignore_errors=True)  # kept only while the run is unfinished
    return result


def _die_with_parent(parent: int) -> None:
    """Linux: have the kernel kill this process when its parent dies, so no orphan trains on alone."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux/glibc: an orphan finishes its run and writes its row
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _run_in_child(config: RunConfig, results_dir, reply, parent: int) -> None:
    _die_with_parent(parent)
    try:
        run_and_record(config, results_dir)
    except UserError as exc:
        reply.send(str(exc))


def _death_reason(exitcode: int | None) -> str:
    """Why a run's process ended without a row, and what to try."""
    if exitcode is not None and exitcode < 0:
        return (f"the run's process was killed by signal {-exitcode} (exit code {exitcode}); "
                "if it ran out of memory, try a smaller --batch-size or --max-length")
    return f"the run's process died (exit code {exitcode}); its error is printed above"


def run_isolated(config: RunConfig, results_dir: str | os.PathLike | None = None) -> RunResult:
    """run_and_record in a fresh process: its memory figures start clean, and a crash costs one row."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_run_in_child, args=(config, results_dir, writer, os.getpid()))
    process.start()
    process.join()
    if reader.poll():
        raise UserError(reader.recv())
    result = read_result(config.key(), results_dir)
    if process.exitcode != 0 or result is None or result.finished_at < started:
        result = failed_result(config, "failed", _death_reason(process.exitcode))
        save_result(result, results_dir)
    return result
