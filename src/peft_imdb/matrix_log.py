"""The matrix commands that trained a store's runs: one entry each (when, how many runs, the wall time, the time in
training and evaluation, the machine), kept in <store>/matrix_log.json, so that a summary states how much of the
wall time went into training and evaluation and how much around them (process start, imports, loading, storing)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from .results import RunResult, atomic_write_text, results_dir

LOG = "matrix_log.json"


@dataclass(frozen=True)
class MatrixEntry:
    """One matrix command that trained runs into a store."""

    finished_at: str
    runs: int
    wall_s: float
    inside_s: float  # the runs' training and evaluation time
    machine: str  # the kind of machine, in words

    @property
    def outside_share(self) -> float:
        """The share of the wall time outside training and evaluation."""
        return 1 - self.inside_s / self.wall_s if self.wall_s > 0 else 0.0


def entry(rows: Iterable[RunResult], wall_s: float, machine: str) -> MatrixEntry:
    """The entry of a matrix that trained `rows` in `wall_s` seconds on `machine`."""
    rows = list(rows)
    inside = sum((row.train_time_s or 0) + (row.eval_time_s or 0) for row in rows)
    return MatrixEntry(time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), len(rows), round(wall_s, 1),
                       round(inside, 1), machine)


def overhead_line(matrix: MatrixEntry) -> str:
    """How much of a matrix's wall time went into training and evaluation, and how much around them."""
    return (f"matrix: {matrix.runs} run(s) in {matrix.wall_s:.0f} s; training + evaluation {matrix.inside_s:.0f} s; "
            f"outside them (process start, imports, model load, tokenization, storing) {matrix.outside_share:.1%}")


def read_log(root: str | os.PathLike | None = None) -> list[MatrixEntry]:
    """The entries of a store's matrix log, oldest first ([] without one)."""
    path = results_dir(root) / LOG
    if not path.is_file():
        return []
    return [MatrixEntry(**item) for item in json.loads(path.read_text())]


def append(matrix: MatrixEntry, root: str | os.PathLike | None = None) -> Path:
    """Add an entry to a store's matrix log (atomically); the log's path."""
    path = results_dir(root) / LOG
    entries = [asdict(e) for e in read_log(root)] + [asdict(matrix)]
    atomic_write_text(path, json.dumps(entries, indent=1) + "\n")
    return path


def entries_that_trained(entries: list[MatrixEntry], finished_at: Iterable[str]) -> list[MatrixEntry]:
    """The entries (oldest first) in whose window, after the previous entry finished, one of these runs finished."""
    times = sorted(finished_at)
    chosen, previous = [], ""
    for matrix in entries:
        if any(previous < t <= matrix.finished_at for t in times):
            chosen.append(matrix)
        previous = matrix.finished_at
    return chosen


def log_lines(root: str | os.PathLike | None = None) -> list[str]:
    """The summary's lines on the matrix commands that trained the store's runs; [] without a log."""
    entries = read_log(root)
    if not entries:
        return []
    wall, inside = sum(e.wall_s for e in entries), sum(e.inside_s for e in entries)
    total = MatrixEntry("", sum(e.runs for e in entries), wall, inside, "")
    lines = [f"{len(entries)} matrix command(s) trained {total.runs} run(s) here in {wall / 60:.1f} min of wall time; "
             f"training and evaluation took {inside / 60:.1f} min, {total.outside_share:.1%} went around them "
             "(process start, imports, model load, tokenization, storing).", "",
             "| finished | runs | wall (s) | training + evaluation (s) | outside | machine |", "|---" * 6 + "|"]
    lines += [f"| {e.finished_at} | {e.runs} | {e.wall_s:.0f} | {e.inside_s:.0f} | {e.outside_share:.1%} | "
              f"{e.machine} |" for e in entries]
    return lines
