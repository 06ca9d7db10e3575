"""Running a planned run and storing its record: in this process, or in a fresh one that a crash cannot take down."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from datetime import datetime, timezone

from datasets import DatasetDict

from .config import RunConfig, model_id
from .environment import environment
from .errors import Unsupported, UserError
from .results import RunResult, checkpoint_dir, read_result, save_predictions, save_result
from .train import release, train_and_evaluate, world


def failed_result(config: RunConfig, status: str, reason: str) -> RunResult:
    """A record for a run that did not finish: `failed` or `skipped`, with the reason."""
    return RunResult(
        key=config.key(), group=config.group(), identity=config.identity(), model=model_id(config.model),
        method=config.method, seed=config.seed,
        status=status, reason=reason, config=config.to_dict(), lr=config.learning_rate, env=environment(),
    )


def train_and_store(config: RunConfig, results_dir: str | os.PathLike | None = None,
                    imdb: DatasetDict | None = None) -> RunResult:
    """Train one config and store its row: ok, skipped (hardware) or failed (with the error).

    When the store refuses the write (full disk, read-only), the record is printed on stdout as JSON and
    StoreWriteError (a UserError) stops the command; no partial file is left.
    """
    from .claims import is_store_error, store_write_failed
    from .results import results_dir as results_root

    checkpoints = checkpoint_dir(config.key(), results_dir) if config.resume else None
    predictions = None
    try:
        result, predictions = train_and_evaluate(config, imdb, checkpoints=checkpoints)
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
    written = None
    try:
        if predictions is not None:
            written = save_predictions(result.key, predictions.review_id, predictions.label,
                                       predictions.predicted, predictions.prob_positive, results_dir)
        save_result(result, results_dir)
    except OSError as exc:  # a refused write loses nothing the user needs
        if not is_store_error(exc):
            raise
        if written is not None:  # no predictions without their record
            written.unlink(missing_ok=True)
        raise store_write_failed(result, results_root(results_dir), exc) from None
    if checkpoints is not None and result.status == "ok":
        shutil.rmtree(checkpoints, ignore_errors=True)  # kept only while the run is unfinished
    return result


def _die_with_matrix(matrix: int) -> None:
    """Linux: end this run process when the matrix that asked for it dies, so no orphan trains on alone.

    Not the parent's death signal: the parent is the fork server, which outlives the matrix while a run
    it forked holds its connection.
    """
    import select
    import threading

    try:
        handle = os.pidfd_open(matrix)
    except ProcessLookupError:  # the matrix died before this process started
        os._exit(1)
    except (AttributeError, OSError):  # not Linux >= 5.3: an orphan finishes its run and writes its row
        return

    def watch() -> None:
        select.select([handle], [], [])  # readable once the matrix has exited
        os._exit(1)

    threading.Thread(target=watch, name="die-with-matrix", daemon=True).start()


def _run_in_child(config: RunConfig, results_dir, reply, matrix: int) -> None:
    _die_with_matrix(matrix)
    try:
        train_and_store(config, results_dir)
    except UserError as exc:
        reply.send(str(exc))


def _death_reason(exitcode: int | None) -> str:
    """Why a run's process ended without a row, and what to try."""
    if exitcode is not None and exitcode < 0:
        return (f"the run's process was killed by signal {-exitcode} (exit code {exitcode}); "
                "if it ran out of memory, try a smaller --batch-size or --max-length")
    return f"the run's process died (exit code {exitcode}); its error is printed above"


# Imported once by the fork server that every run process is forked from: torch, transformers and peft
# take ~6 s to import, most of a run's time outside training and evaluation.
# (peft by name: not every transformers version imports it with the package.)
PRELOAD = ["peft", "peft_imdb.train", "peft_imdb.runner"]


def run_context() -> multiprocessing.context.BaseContext:
    """Where run processes come from: a fork server that has imported the training stack and nothing else."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows: each run imports it all again
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # takes effect when the server starts (the first run)
    return context


def train_and_store_in_subprocess(config: RunConfig, results_dir: str | os.PathLike | None = None) -> RunResult:
    """train_and_store in a fresh process: its memory figures start clean, and a crash costs one row."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    context = run_context()
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
