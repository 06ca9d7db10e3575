"""The device check script runs on CPU as a dry run and reports every method."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO

from peft_imdb.gpucheck import synthetic_reviews
from peft_imdb.hardware import resolve_precision


@pytest.mark.unit
def test_synthetic_reviews_are_balanced_and_long_enough():
    data = synthetic_reviews(10, words_per_review=50)
    assert sum(data["train"]["label"]) == 5 and all(len(t.split()) == 50 for t in data["train"]["text"])


def test_gpu_check_dry_run_on_cpu():
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--dry-run", "--max-length", "64",
                           "--batch-size", "8"], capture_output=True, text=True, timeout=600, cwd=REPO,
                          env={**os.environ, "PY": sys.executable})  # this Python's stack, not .venv's
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    expected = resolve_precision()  # what this CPU's flags pick: bf16 with native bf16, else fp32
    assert f"precision: {expected}" in out
    for method in ("full", "lora", "qlora", "ia3"):
        assert f"\n{method:6s} precision={expected}" in out, out
    layers = int(out.split("qlora base layers in Linear4bit: ")[1].split()[0])
    assert layers == 36  # MiniLM-L6: 6 layers x (q, k, v, attention out, FFN in, FFN out); head and pooler stay fp32
    assert "would check full > lora >= qlora" in out
