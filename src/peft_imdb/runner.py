"""Running a resolved run and storing its record and predictions: ok, skipped (hardware) or failed (the error, or the
step where the loss stopped being finite)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from datasets import DatasetDict

from .errors import Diverged, Unsupported, UserError, first_line
from .resolved import ResolvedRun
from .results import (RunResult, checkpoint_dir, is_store_error, results_dir, save_predictions, save_result,
                      store_write_failed)
from .stopping import storing
from .train import TestPredictions, release, train_and_evaluate, world


def train_and_store(run: ResolvedRun, root: str | os.PathLike | None = None,
                    imdb: DatasetDict | None = None) -> RunResult:
    """Train one run and store its record: ok, skipped (hardware) or failed (with the error).

    When the store refuses the write (full disk, read-only), the record is printed on stdout as JSON and
    StoreWriteError (a UserError) stops the command; no partial file is left. A stop (errors.Stopped) while the
    run trains stores nothing of it; one while it is being stored comes once it is stored whole.
    """
    checkpoints = checkpoint_dir(run.key, root) if run.config.resume else None
    result, predictions = train_outcome(run, imdb, checkpoints)
    if world()[0] != 0:
        return result  # under torchrun every process trains; only rank 0 writes the row
    return store_outcome(result, predictions, root, checkpoints)


def train_outcome(run: ResolvedRun, imdb: DatasetDict | None = None, checkpoints: str | os.PathLike | None = None
                  ) -> tuple[RunResult, TestPredictions | None]:
    """Train one run: its record (ok, skipped for hardware, failed with the error) and its test predictions.

    A UserError (bad input: every run would fail alike) and a stop are raised, not recorded.
    """
    try:
        return train_and_evaluate(run, imdb, checkpoints=checkpoints)
    except UserError:
        raise  # bad input stops the whole command: it would fail every run the same way
    except Unsupported as exc:
        return run.record("skipped", str(exc)), None
    except Exception as exc:  # one run's failure must not end a matrix
        reason = str(exc) if isinstance(exc, Diverged) else f"{type(exc).__name__}: {first_line(exc)}"[:500]
        release()
        return run.record("failed", reason), None


def store_outcome(result: RunResult, predictions: TestPredictions | None, root: str | os.PathLike | None = None,
                  checkpoints: str | os.PathLike | None = None) -> RunResult:
    """Store a run's predictions (each split's) and then its record, whole or not at all; the record."""
    written: list[Path] = []
    with storing():
        try:
            splits = {"remaining": predictions.remaining, "test": predictions} if predictions is not None else {}
            for split, scored in splits.items():  # the record last: it is what says the run is done
                if scored is not None:
                    written.append(save_predictions(result.key, scored.review_id, scored.label, scored.predicted,
                                                    scored.prob_positive, root, split))
            save_result(result, root)
        except OSError as exc:  # a refused write loses nothing the user needs
            if not is_store_error(exc):
                raise
            for path in written:  # no predictions without their record
                path.unlink(missing_ok=True)
            raise store_write_failed(result, results_dir(root), exc) from None
        if checkpoints is not None and result.status == "ok":
            shutil.rmtree(checkpoints, ignore_errors=True)  # kept only while the run is unfinished
    return result
