"""Stopping on a signal: SIGINT (Ctrl-C) and SIGTERM (Colab's interrupt, Slurm's preemption, `docker stop`) raise
errors.Stopped in the main thread, so every `finally` runs (claims released, temporary files removed, the run
process stopped); while a run is being stored the stop waits, so the run is stored whole or not at all."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from .errors import Stopped

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    """This process's stop: whether one is under way, and one that waits for a block to end."""

    deferring = 0  # `storing()` blocks open
    pending: Stopped | None = None
    stopping = False


def _on_signal(signum: int, frame) -> None:
    if _State.stopping:  # a second signal while the first one's cleanup runs: that cleanup goes on
        return
    stop = Stopped(signum)
    if _State.deferring:
        _State.pending = stop
        return
    _State.stopping = True
    raise stop


@contextlib.contextmanager
def on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise Stopped inside the block (main thread only; elsewhere nothing changes); the
    previous handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _on_signal) for signum in SIGNALS}
    _State.deferring, _State.pending, _State.stopping = 0, None, False
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _State.deferring, _State.pending, _State.stopping = 0, None, False


@contextlib.contextmanager
def storing() -> Iterator[None]:
    """A block that must run to its end (a run's predictions, record and checkpoints): a stop asked for during it is
    raised when it ends."""
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1
    if not _State.deferring and _State.pending is not None:  # (an error in the block ends the command anyway)
        stop, _State.pending = _State.pending, None
        _State.stopping = True
        raise stop
