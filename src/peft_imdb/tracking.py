"""Wall time and peak memory per phase: CUDA allocator peaks on GPU, peak RSS of the process on CPU."""

from __future__ import annotations

import ctypes
import gc
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import TrainerCallback

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _status_mb(field_name: str) -> float | None:
    """A memory field of /proc/self/status (VmHWM: peak since the last reset, VmRSS: now), in MB."""
    if _STATUS.exists():
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1]) / 1024
    return None


def _rss_peak_mb() -> float:
    """Peak resident set size since the last reset (VmHWM), in MB."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _trim_heap() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so RSS is live memory."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: RSS keeps what the allocator cached
        pass


def _reset_rss_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False where unsupported."""
    _trim_heap()  # else memory freed by earlier work in this process inflates the phase's peak
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


@dataclass
class PhaseStats:
    """One phase's wall time and peak memory (MB)."""

    seconds: float = 0.0
    peak_mb: float = 0.0
    peak_reserved_mb: float | None = None
    start_mb: float | None = None  # memory held when the phase began (the model, data, runtime): the baseline


@dataclass
class Tracker:
    """Times phases and records their peak memory; `with tracker.phase("train"): ...`."""

    cuda: bool = field(default_factory=torch.cuda.is_available)
    phases: dict[str, PhaseStats] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict, repr=False)
    _baseline: dict[str, float | None] = field(default_factory=dict, repr=False)

    @property
    def memory_kind(self) -> str:
        """`cuda_allocated` (allocator peak, CUDA context not counted) or `cpu_rss` (process peak)."""
        return "cuda_allocated" if self.cuda else "cpu_rss"

    def start(self, name: str) -> None:
        """Reset the peak counters and start the clock for a phase."""
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            _reset_rss_peak()
        self._baseline[name] = torch.cuda.memory_allocated() / 2**20 if self.cuda else _status_mb("VmRSS")
        self._started[name] = time.perf_counter()

    def stop(self, name: str) -> PhaseStats:
        """Stop the clock of a phase and read its peak memory."""
        if self.cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - self._started.pop(name)
        if self.cuda:
            stats = PhaseStats(
                seconds,
                torch.cuda.max_memory_allocated() / 2**20,
                torch.cuda.max_memory_reserved() / 2**20,
                self._baseline.pop(name, None),
            )
        else:
            stats = PhaseStats(seconds, _rss_peak_mb(), start_mb=self._baseline.pop(name, None))
        self.phases[name] = stats
        return stats

    @contextmanager
    def phase(self, name: str):
        """Context manager around one phase."""
        self.start(name)
        try:
            yield self
        finally:
            self.stop(name)

    def callback(self) -> "TrackerCallback":
        """A Trainer callback that records the `train` phase with this tracker."""
        return TrackerCallback(self)


class TrackerCallback(TrainerCallback):
    """Trainer callback: the `train` phase runs from on_train_begin to on_train_end."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker

    def on_train_begin(self, args, state, control, **kwargs):
        self.tracker.start("train")

    def on_train_end(self, args, state, control, **kwargs):
        self.tracker.stop("train")
