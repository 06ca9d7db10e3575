"""A run in a fresh process forked from a server that has imported the training stack: a crash costs one row,
and memory figures start clean. The child sends back its record, or the error or stop that ends the command; a
command that stops (SIGINT, SIGTERM) stops its run process too, within STOP_GRACE_S."""

from __future__ import annotations

import multiprocessing
import os

from ..errors import Stopped, UserError
from ..resolved import ResolvedRun
from ..results import RunResult, save_result
from ..stopping import on_signals, storing

# Imported once by the fork server that every run process is forked from: torch, transformers and peft
# take ~6 s to import, most of a run's time outside training and evaluation.
# (peft by name: not every transformers version imports it with the package.)
# peft_imdb first: its import quiets bitsandbytes' import-time chatter before peft imports bitsandbytes.
PRELOAD = ["peft_imdb", "peft", "peft_imdb.train", "peft_imdb.runner"]
STOP_GRACE_S = 5.0  # a stopped command waits this long for its run process to stop (SIGTERM), then kills it


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


def _run_in_child(run: ResolvedRun, root, reply, matrix: int) -> None:
    """The run process: train and store, then send the record (or the UserError or Stopped that ends the command)."""
    from ..runner import train_and_store

    _die_with_matrix(matrix)
    with on_signals():
        try:
            reply.send(train_and_store(run, root))
        except (UserError, Stopped) as exc:
            try:
                reply.send(exc)
            except OSError:  # the command stopped first and no longer listens
                pass


def _death_reason(exitcode: int | None) -> str:
    """Why a run's process ended without a row, and what to try."""
    if exitcode is not None and exitcode < 0:
        return (f"the run's process was killed by signal {-exitcode} (exit code {exitcode}); "
                "if it ran out of memory, try a smaller --batch-size or --max-length")
    return f"the run's process died (exit code {exitcode}); its error is printed above"


def run_context() -> multiprocessing.context.BaseContext:
    """Where run processes come from: a fork server that has imported the training stack and nothing else."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows: each run imports it all again
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # takes effect when the server starts (the first run)
    return context


def train_in_subprocess(run: ResolvedRun, root: str | os.PathLike | None = None) -> RunResult:
    """train_and_store in a fresh process; a process that dies without answering is stored as `failed`."""
    context = run_context()
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_run_in_child, args=(run, root, writer, os.getpid()))
    process.start()
    writer.close()  # the child holds the only writing end: its death ends the wait below
    try:
        try:
            answer = reader.recv()
        except EOFError:
            answer = None
    except BaseException:  # the command stops (a signal): so does its run process, storing nothing partial
        _stop(process)
        raise
    process.join()
    if isinstance(answer, (UserError, Stopped)):
        raise answer
    if not isinstance(answer, RunResult):
        answer = run.record("failed", _death_reason(process.exitcode))
        with storing():
            save_result(answer, root)
    return answer


def _stop(process) -> None:
    """Stop a run process as a signal would (SIGTERM: it stores nothing partial), then kill it after STOP_GRACE_S."""
    if process.is_alive():
        process.terminate()
        process.join(STOP_GRACE_S)
    if process.is_alive():
        process.kill()
    process.join()
