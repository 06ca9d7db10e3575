"""Running a resolved run and storing its record and predictions: ok, skipped (hardware) or failed (the error, or the
step where the loss stopped being finite)."""

from __future__ import annotations

import os
import shutil

from datasets import DatasetDict

from .errors import Diverged, Unsupported, UserError, first_line
from .resolved import ResolvedRun
from .results import (RunResult, checkpoint_dir, is_store_error, results_dir, save_predictions, save_result,
                      store_write_failed)
from .stopping import storing
from .train import release, train_and_evaluate, world


def train_and_store(run: ResolvedRun, root: str | os.PathLike | None = None,
                    imdb: DatasetDict | None = None) -> RunResult:
    """Train one run and store its record: ok, skipped (hardware) or failed (with the error).

    When the store refuses the write (full disk, read-only), the record is printed on stdout as JSON and
    StoreWriteError (a UserError) stops the command; no partial file is left. A stop (errors.Stopped) while the
    run trains stores nothing of it; one while it is being stored comes once it is stored whole.
    """
    checkpoints = checkpoint_dir(run.key, root) if run.config.resume else None
    predictions = None
    try:
        result, predictions = train_and_evaluate(run, imdb, checkpoints=checkpoints)
    except UserError:
        raise  # bad input stops the whole command: it would fail every run the same way
    except Unsupported as exc:
        result = run.record("skipped", str(exc))
    except Exception as exc:  # one run's failure must not end a matrix
        reason = str(exc) if isinstance(exc, Diverged) else f"{type(exc).__name__}: {first_line(exc)}"[:500]
        result = run.record("failed", reason)
        release()
    if world()[0] != 0:
        return result  # under torchrun every process trains; only rank 0 writes the row
    written = None
    with storing():
        try:
            if predictions is not None:
                written = save_predictions(result.key, predictions.review_id, predictions.label,
                                           predictions.predicted, predictions.prob_positive, root)
            save_result(result, root)
        except OSError as exc:  # a refused write loses nothing the user needs
            if not is_store_error(exc):
                raise
            if written is not None:  # no predictions without their record
                written.unlink(missing_ok=True)
            raise store_write_failed(result, results_dir(root), exc) from None
        if checkpoints is not None and result.status == "ok":
            shutil.rmtree(checkpoints, ignore_errors=True)  # kept only while the run is unfinished
    return result
