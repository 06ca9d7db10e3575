"""Precision from the hardware, and the memory/time tracker."""

from __future__ import annotations

import numpy as np
import pytest

from peft_imdb.hardware import choose_precision, nf4_support
from peft_imdb.tracking import Tracker


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_precision_follows_compute_capability(capability, expected):
    precision = choose_precision(capability=capability, cuda=True)
    assert precision.name == expected and str(capability[0]) in precision.reason


def test_cpu_without_native_bf16_trains_in_fp32():
    precision = choose_precision(cuda=False, cpu_flags={"avx2"})
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


@pytest.mark.parametrize("capability, dtype", [((7, 5), "float16"), ((8, 6), "bfloat16")])
def test_qlora_compute_dtype_follows_the_hardware_with_fp32_fallback(capability, dtype):
    from peft_imdb.models import nf4_config

    precision = choose_precision(capability=capability, cuda=True)
    assert str(nf4_config(precision, ["classifier"]).bnb_4bit_compute_dtype) == f"torch.{dtype}"
    assert str(nf4_config(precision, ["classifier"], "fp32").bnb_4bit_compute_dtype) == "torch.float32"


def test_is_bf16_supported_alone_is_not_trusted(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what a T4 may answer
    assert choose_precision(capability=(7, 5), cuda=True).name == "fp16"


def test_cuda_peaks_are_reset_per_phase_and_cache_freed_between_runs(monkeypatch):
    import torch

    from peft_imdb.train import release

    calls = []
    peaks = iter([2**30, 2**29])
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: next(peaks))
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda: 2**31)
    tracker = Tracker(cuda=True)
    with tracker.phase("train"):
        calls.append("train")
    with tracker.phase("eval"):
        calls.append("eval")
    assert calls == ["reset", "train", "reset", "eval"]
    assert tracker.phases["train"].peak_mb == 1024 and tracker.phases["eval"].peak_mb == 512
    assert tracker.phases["train"].peak_reserved_mb == 2048 and tracker.memory_kind == "cuda_allocated"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    release()
    assert calls[-1] == "empty_cache"


def test_nf4_probe_leaves_the_random_state_alone():
    import torch

    nf4_support.cache_clear()
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    nf4_support()
    assert torch.equal(before, torch.random.get_rng_state())
