"""Precision from the hardware, and the memory/time tracker."""

from __future__ import annotations

import numpy as np
import pytest

from peft_imdb.hardware import choose_precision, nf4_support
from peft_imdb.tracking import Tracker


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_precision_follows_compute_capability(capability, expected):
    precision = choose_precision(capability, cuda=True)
    assert precision.name == expected and str(capability[0]) in precision.reason


def test_cpu_trains_in_fp32():
    precision = choose_precision(cuda=False)
    assert precision.name == "fp32" and not precision.fp16 and not precision.bf16


def test_nf4_support_answers_with_a_reason():
    ok, reason = nf4_support()
    assert isinstance(ok, bool) and "bitsandbytes" in reason


def test_tracker_times_phases_and_sees_a_memory_peak():
    tracker = Tracker(cuda=False)
    with tracker.phase("small"):
        np.ones(1_000)
    with tracker.phase("big"):
        block = np.ones(400 * 2**20 // 8)  # 400 MB, touched
        block.sum()
        del block
    small, big = tracker.phases["small"], tracker.phases["big"]
    assert big.seconds > 0 and small.seconds >= 0
    # The peak is reset per phase: the big phase saw ~400 MB more than the small one.
    assert big.peak_mb - small.peak_mb > 300
    assert tracker.memory_kind == "cpu_rss"


def test_tracker_as_trainer_callback():
    tracker = Tracker(cuda=False)
    callback = tracker.callback()
    callback.on_train_begin(None, None, None)
    callback.on_train_end(None, None, None)
    assert "train" in tracker.phases
