"""The results store: one JSON record per run under results/runs/ and its test predictions, written atomically.

A finished run is its record and its predictions together: an unreadable file of either is kept aside as
`.corrupt` and its run counts as not done. Also what the store's writes can go wrong with: a folder that
cannot hold it, a refused write (full disk, read-only), and folding several stores into one (merge).
"""

from __future__ import annotations

import errno
import glob
import json
import os
import pickle
import sys
import tempfile
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import UserError, first_line
from .stores import RESULTS_ENV, STUDY

STATUSES = ("ok", "failed", "skipped")


STORE_ERROR_EXIT = 3  # the CLI's exit code when the results folder could not be written after training
# errno values that mean "this folder cannot take the write", as opposed to a bug
STORE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}


@dataclass
class RunResult:
    """One run: its config, status, metrics, costs and environment, as plain JSON-able data."""

    key: str
    model: str
    method: str
    seed: int
    status: str
    reason: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    group: str = ""  # hash of the identity without the seed: the runs of one summary row
    identity: dict[str, Any] = field(default_factory=dict)  # what determines the run (resolved.ResolvedRun.identity)
    label: str = ""  # how summary rows and charts name the run: `lora (r=16)` (empty in older records)
    accuracy: float | None = None
    f1: float | None = None
    precision: float | None = None
    recall: float | None = None
    confusion_matrix: list[list[int]] | None = None  # rows: true neg/pos, columns: predicted
    val_accuracy: float | None = None  # of the model that was tested (the best epoch when selecting)
    val_accuracy_per_epoch: list[float] = field(default_factory=list)
    train_loss: float | None = None
    # The Trainer's log history: {step, epoch, loss, learning_rate, grad_norm} per logging step and
    # {step, epoch, eval_loss, eval_accuracy, ...} per epoch (train.log_history); empty in older records.
    log_history: list[dict[str, float]] = field(default_factory=list)
    trainable_params: int | None = None
    adapter_params: int | None = None
    head_params: int | None = None
    total_params: int | None = None
    train_time_s: float | None = None
    eval_time_s: float | None = None
    load_time_s: float | None = None
    train_samples_per_s: float | None = None
    eval_samples_per_s: float | None = None
    peak_memory_mb: float | None = None  # training phase
    train_start_memory_mb: float | None = None  # held when training began (model, data, runtime): its baseline
    peak_reserved_mb: float | None = None  # CUDA only
    eval_peak_memory_mb: float | None = None
    eval_peak_reserved_mb: float | None = None
    load_peak_memory_mb: float | None = None  # loading and preparing the model (quantization included)
    load_peak_reserved_mb: float | None = None
    remaining_accuracy: float | None = None  # on every test review of the run's pool (score_remaining)
    remaining_reviews: int | None = None
    frozen_weights_mb: float | None = None  # bytes of the frozen base weights (4-bit packed for QLoRA)
    trainable_weights_mb: float | None = None
    memory_kind: str | None = None
    memory_note: str = ""
    base_weight_bits: int | None = None
    target_modules: list[str] | None = None
    model_type: str | None = None  # the architecture (config.model_type), e.g. bert
    gradient_checkpointing: bool | None = None
    saved_mb: float | None = None
    precision_mode: str | None = None
    precision_reason: str = ""  # why that precision (hardware flags, capability, or asked for)
    optimizer: str | None = None  # the Trainer's optimizer as it ran (adamw_torch_fused where torch has it)
    attention: str | None = None  # attention kernel (sdpa where the architecture has it)
    world_size: int = 1  # processes that trained together (torchrun / accelerate launch)
    train_steps: int | None = None  # optimizer steps
    lr: float | None = None
    resumed_from_step: int | None = None  # --resume: the checkpoint's step training went on from
    learned: bool | None = None  # learning.RULE's verdict; None in records made before the rule
    not_learned_reason: str = ""  # why the rule says it did not learn
    env: dict[str, Any] = field(default_factory=dict)
    finished_at: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if not self.finished_at:
            self.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")

    @property
    def trainable_percent(self) -> float | None:
        """Trainable share of all parameters, in percent."""
        if self.trainable_params is None or not self.total_params:
            return None
        return 100 * self.trainable_params / self.total_params

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view (what is written to disk)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunResult":
        """Inverse of to_dict; unknown keys (from newer versions) are ignored."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """The results folder: the argument, else PEFT_IMDB_RESULTS, else ./results (the study's: stores.py)."""
    return Path(path or os.environ.get(RESULTS_ENV) or STUDY.results)


def _runs_dir(root: str | os.PathLike | None) -> Path:
    return results_dir(root) / "runs"


def checkpoint_dir(key: str, root: str | os.PathLike | None = None) -> Path:
    """Where --resume keeps a run's epoch checkpoints until the run finishes: results/checkpoints/<key>."""
    return results_dir(root) / "checkpoints" / key


def atomic_write(path: Path, write) -> None:
    """Write a file through write(handle) so that readers see the old content or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; records are plain shared files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """atomic_write of a text (UTF-8)."""
    atomic_write(path, lambda handle: handle.write(text.encode()))


def predictions_path(key: str, root: str | os.PathLike | None = None, split: str = "test") -> Path:
    """Where a run's per-review test predictions are kept: results/predictions/<key>.npz; those of another split
    (the remaining test reviews) in results/predictions/<split>/<key>.npz."""
    folder = results_dir(root) / "predictions"
    return (folder if split == "test" else folder / split) / f"{key}.npz"


def save_predictions(key: str, review_ids, labels, predicted, prob_positive,
                     root: str | os.PathLike | None = None, split: str = "test") -> Path:
    """Store one run's test predictions (sorted by review id), atomically, as a compressed npz."""
    import numpy as np

    order = np.argsort(np.asarray(review_ids), kind="stable")
    arrays = {
        "review_id": np.asarray(review_ids, dtype=np.int32)[order],
        "label": np.asarray(labels, dtype=np.int8)[order],
        "predicted": np.asarray(predicted, dtype=np.int8)[order],
        "prob_positive": np.asarray(prob_positive, dtype=np.float16)[order],
    }
    import io

    buffer = io.BytesIO()  # compressed in memory: a full disk then fails one plain write, not numpy's zip writer
    np.savez_compressed(buffer, **arrays)
    path = predictions_path(key, root, split)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    return path


PREDICTION_FIELDS = ("review_id", "label", "predicted", "prob_positive")
PREDICTION_SPLITS = ("test", "remaining")  # the study's test subset; every test review of the pool (apart)
PREDICTIONS_MISSING = "predictions missing"  # the record stays a finished run: only its interval is lost
# What numpy raises on a predictions file cut short or overwritten: not a zip, a bad member, no data, not an array
UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, pickle.UnpicklingError)


def _read_predictions(path: Path) -> pd.DataFrame:
    """A predictions file as a DataFrame; ValueError (its first line) when it is not a whole predictions file."""
    import numpy as np

    try:
        with np.load(path) as data:
            frame = pd.DataFrame({name: data[name] for name in PREDICTION_FIELDS})
    except UNREADABLE as exc:
        raise ValueError(f"{type(exc).__name__}: {first_line(exc)}") from None
    return frame.astype({"prob_positive": "float32"})


_WARNED: set[str] = set()  # each warning once per process: the store is read many times by one command


def warn_once(message: str) -> None:
    """Print `warning: message` on stderr, once per process."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"warning: {message}", file=sys.stderr)


def _kept_aside(path: Path) -> bool:
    """True when an unreadable copy of path was kept aside (`<name>.corrupt`, numbered)."""
    return any(path.parent.glob(glob.escape(path.name) + ".corrupt*"))


def _keep_predictions_aside(path: Path, key: str, why: str) -> None:
    """Move an unreadable predictions file to `<name>.corrupt` and say so in one line."""
    target = corrupt_path(path)
    try:
        os.replace(path, target)
    except FileNotFoundError:  # another process moved it aside first
        return
    warn_once(f"{path} is not a readable predictions file ({why}); kept aside as {target.name}, "
              f"run {key} counts as not done (the next matrix trains it again)")


def load_predictions(key: str, root: str | os.PathLike | None = None, split: str = "test") -> pd.DataFrame | None:
    """One run's predictions as a DataFrame (review_id, label, predicted, prob_positive), or None.

    None when there are none, or when the file cannot be read: then it is kept aside as `.corrupt` and reported.
    """
    path = predictions_path(key, root, split)
    if not path.is_file():
        return None
    try:
        return _read_predictions(path)
    except ValueError as exc:
        _keep_predictions_aside(path, key, str(exc))
        return None


def _mismatch(frame: pd.DataFrame, record: RunResult) -> str:
    """How predictions differ from the record they are stored for ('' when they belong to it)."""
    import numpy as np

    scored = int(np.sum(record.confusion_matrix)) if record.confusion_matrix else record.config.get("eval_size")
    if scored and len(frame) != scored:
        return f"{len(frame)} reviews, the record scored {scored}"
    if len(frame) == 0:
        return "no reviews"
    if not frame["review_id"].is_unique:
        return f"{int(frame['review_id'].duplicated().sum())} review ids repeated"
    correct = int((frame["label"] == frame["predicted"]).sum())
    if record.accuracy is not None and abs(correct - record.accuracy * len(frame)) >= 0.5:
        return f"accuracy {correct / len(frame):.4f}, the record's {record.accuracy:.4f}"
    return ""


def predictions_problem(record: RunResult, root: str | os.PathLike | None = None) -> str:
    """What keeps a finished run's predictions from being used: '' when they are whole and its own.

    'predictions missing' (the record stays a finished run), 'predictions unreadable' (the file is kept aside
    as `.corrupt` and reported) or 'predictions do not match the record (...)' (reported). Runs that scored no
    test review (tuning) and unfinished runs have none to check.
    """
    if record.status != "ok" or record.accuracy is None:
        return ""
    path = predictions_path(record.key, root)
    if not path.is_file():
        if not _kept_aside(path):
            return PREDICTIONS_MISSING
        warn_once(f"the predictions of run {record.key} were kept aside as unreadable ({path}.corrupt); the run "
                  "counts as not done (the next matrix trains it again)")
        return "predictions unreadable"
    try:
        frame = _read_predictions(path)
    except ValueError as exc:
        _keep_predictions_aside(path, record.key, str(exc))
        return "predictions unreadable"
    mismatch = _mismatch(frame, record)
    if mismatch:
        warn_once(f"{path} does not belong to the record of run {record.key} ({mismatch}); not used, and the run "
                  "counts as not done (the next matrix trains it again)")
        return f"predictions do not match the record ({mismatch})"
    return ""


def counts_as_done(record: RunResult | None, root: str | os.PathLike | None = None) -> bool:
    """True for a finished (`ok`) record whose predictions are its own, or missing (not kept aside as unreadable)."""
    if record is None or record.status != "ok":
        return False
    return predictions_problem(record, root) in ("", PREDICTIONS_MISSING)


def copy_predictions(key: str, source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy a run's predictions files (each split's) between results folders, atomically; nothing when none."""
    for split in PREDICTION_SPLITS:
        path = predictions_path(key, source, split)
        if path.is_file():
            data = path.read_bytes()
            atomic_write(predictions_path(key, target, split), lambda handle: handle.write(data))


def copy_run(key: str, source: str | os.PathLike, target: str | os.PathLike) -> bool:
    """Copy a finished run (row and predictions) from one results folder to another; False if none."""
    record = read_result(key, source)
    if not counts_as_done(record, source):
        return False
    copy_predictions(key, source, target)
    save_result(record, target)
    return True


def save_result(result: RunResult, root: str | os.PathLike | None = None) -> Path:
    """Store a run's record; a run with the same key replaces the earlier record."""
    path = _runs_dir(root) / f"{result.key}.json"
    atomic_write_text(path, json.dumps(result.to_dict(), indent=1, sort_keys=True) + "\n")
    return path


def corrupt_path(path: Path) -> Path:
    """Where an unreadable record or predictions file is kept aside: `<name>.corrupt` (numbered when taken)."""
    candidate, number = path.with_name(path.name + ".corrupt"), 1
    while candidate.exists():
        candidate, number = path.with_name(f"{path.name}.corrupt.{number}"), number + 1
    return candidate


def _parse_record(path: Path) -> RunResult:
    """Read one record file; ValueError when it is not a valid run record."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        return RunResult.from_dict(data)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise ValueError(first_line(exc)) from None


def _load_record(path: Path, keep_aside: bool = True) -> RunResult | None:
    """A record file's run, or None when it is missing or corrupt (then moved aside and reported)."""
    try:
        return _parse_record(path)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        if not keep_aside:
            print(f"warning: {path} is not a valid run record ({exc}); left in place, not read",
                  file=sys.stderr)
            return None
        target = corrupt_path(path)
        try:
            os.replace(path, target)
        except FileNotFoundError:  # another process moved it aside first
            return None
        print(f"warning: {path} is not a valid run record ({exc}); kept aside as {target.name}, "
              "its run counts as not done", file=sys.stderr)
        return None


def read_results(root: str | os.PathLike | None = None, keep_aside: bool = True) -> list[RunResult]:
    """All stored runs, oldest first; corrupt records are moved to `.corrupt` files and reported."""
    folder = _runs_dir(root)
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = _load_record(path, keep_aside)
        if record is not None:
            records.append(record)
    return sorted(records, key=lambda r: r.finished_at)


def read_result(key: str, root: str | os.PathLike | None = None) -> RunResult | None:
    """The stored run with this key, or None when there is none (a corrupt one is moved aside)."""
    return _load_record(_runs_dir(root) / f"{key}.json")


def has_ok_result(key: str, root: str | os.PathLike | None = None) -> bool:
    """True when the store holds a finished (`ok`) run with this key whose predictions are not damaged."""
    return counts_as_done(read_result(key, root), root)


def _finished(record: RunResult) -> datetime:
    """finished_at as an aware datetime (records without one sort first)."""
    try:
        moment = datetime.fromisoformat(record.finished_at)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def merge_results(sources: list[str | os.PathLike], target: str | os.PathLike | None = None) -> list[str]:
    """Fold the runs of several results folders into target; per key the newer finished_at wins.

    Returns one line per run added or replaced. Source folders are only read (a corrupt record
    there is reported and left in place); target's corrupt records are moved aside as usual.
    """
    for source in sources:
        if not _runs_dir(source).is_dir():
            raise UserError(f"{source} is not a results folder (no runs/ inside); pass folders that `matrix` "
                            "wrote with --results-dir")
    out = results_dir(target)
    chosen = {r.key: (r, f"{out} (already there)") for r in read_results(out)}
    kept = dict(chosen)
    lines = []
    for source in sources:
        for record in read_results(source, keep_aside=False):
            held = chosen.get(record.key)
            if held is None:
                chosen[record.key] = (record, str(source))
            elif held[0].to_dict() == record.to_dict():
                continue
            elif _finished(record) > _finished(held[0]):
                lines.append(f"replaced {record.key}: {held[1]} finished {held[0].finished_at} ({held[0].status}) "
                             f"-> {source} finished {record.finished_at} ({record.status}), the newer")
                chosen[record.key] = (record, str(source))
            else:
                lines.append(f"kept {record.key} from {held[1]} (finished {held[0].finished_at}); "
                             f"row in {source} (finished {record.finished_at}) not newer, left out")
    added = 0
    for key, (record, origin) in chosen.items():
        if key not in kept or kept[key][0].to_dict() != record.to_dict():
            save_result(record, out)
            added += key not in kept
            copy_predictions(key, origin, out)  # the row came from a source folder
    replaced = sum(1 for key in kept if kept[key][0].to_dict() != chosen[key][0].to_dict())
    lines.append(f"merged {len(sources)} folder(s) into {_runs_dir(out)}: {len(chosen)} run(s), "
                 f"{added} added, {replaced} replaced")
    return lines


# --- the folder must be writable before anything trains, and a write may fail after training ---------

class StoreWriteError(UserError):
    """The results folder refused a write (full disk, quota, read-only); the CLI exits STORE_ERROR_EXIT."""


# --- the results folder must be writable before anything trains ------------------------------------

def _probe(folder: Path) -> None:
    """Create, write, fsync and remove a small temporary file in folder; raises OSError when it cannot."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=".peft-imdb-probe.", suffix=".tmp")
    try:
        os.write(fd, b"peft-imdb write probe\n")
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(name)


def check_writable(path: str | os.PathLike, what: str = "results folder", flag: str = "--results-dir") -> None:
    """UserError (one line: the path and the fix) unless path is, or can be made, a writable folder.

    Nothing is created: when path does not exist yet, its nearest existing parent must be a writable folder.
    """
    target = Path(path)
    existing = target
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: mkdir would fail on it
            raise UserError(f"{what} {target} cannot be created: {existing} is a broken symbolic link; "
                            f"remove it or choose another {flag}")
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == target else f"cannot be created: {existing} is a file, not a folder"
        raise UserError(f"{what} {target} {where}; choose another {flag} (a folder path)")
    try:
        _probe(existing)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        fix = ("free some space, or choose another " + flag) if exc.errno in (errno.ENOSPC, errno.EDQUOT) else \
            f"make it writable, or choose another {flag}"
        place = target if existing == target else f"{target} (its parent {existing})"
        raise UserError(f"{what} {place} is not writable ({why}); {fix}") from None


# --- a write that fails after training --------------------------------------------------------------

def is_store_error(exc: BaseException) -> bool:
    """True for an OSError that says the folder cannot take the write (full, read-only, no permission)."""
    return isinstance(exc, OSError) and exc.errno in STORE_ERRNOS


def store_write_failed(record, path: str | os.PathLike, exc: OSError, flag: str = "--results-dir") -> StoreWriteError:
    """Print the unsaved record in full (JSON on stdout, so its numbers survive) and return the error to raise."""
    print(f"# the record of run {record.key} could not be stored; here it is in full:", flush=True)
    print(json.dumps(record.to_dict(), indent=1, sort_keys=True), flush=True)
    why = exc.strerror or str(exc) or type(exc).__name__
    return StoreWriteError(f"could not write the record of run {record.key} to {path} ({why}); its metrics "
                           f"are printed above as JSON; free some space or choose another {flag}, then re-run")
