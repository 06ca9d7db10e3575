"""The benchmarks: the padding bound by hand, and each script end to end on a few real reviews."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from recipes import padding_bound  # noqa: E402


@pytest.mark.unit
def test_padding_bound_by_hand():
    # Two batches of 2 at max length 10: padded to 10 -> 40 tokens; sorted [9, 8] [3, 2] -> 18 + 6 = 24.
    assert padding_bound(np.array([3, 9, 2, 8]), batch_size=2, max_length=10) == pytest.approx(40 / 24)
    assert padding_bound(np.array([50, 60, 70, 80]), batch_size=2, max_length=10) == pytest.approx(1.0)  # all cut


@pytest.mark.unit
@pytest.mark.parametrize("flags", [{"avx2"}, {"avx512f", "avx512_bf16"}], ids=["avx2-only", "native-bf16"])
def test_mfu_is_against_the_peak_of_the_trained_dtype_and_never_a_dtype_run_emulated(flags, monkeypatch, capsys):
    import mfu

    import peft_imdb.flops as flops
    import peft_imdb.hardware as hardware

    native_bf16 = "avx512_bf16" in flags
    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: frozenset(flags))
    timed = []

    def fake_matmul(m, k, n, dtype=torch.float32, min_seconds=0.5, device="cpu"):
        timed.append((dtype, (m, k, n)))
        return {torch.float32: 187e9, torch.bfloat16: 900e9 if native_bf16 else 1.8e9}[dtype]

    monkeypatch.setattr(flops, "matmul_flops_per_second", fake_matmul)
    peaks = mfu.measure_peaks([(384, 1536), (384, 384)], [1024, 2048], min_seconds=1.0)
    printed = capsys.readouterr().out.splitlines()
    assert peaks["fp32"]["native"] and peaks["fp32"]["peak"] == pytest.approx(187.0)
    assert printed[0].startswith("matmul peak fp32: 187.0 GFLOP/s ")
    bf16_timings = [shape for dtype, shape in timed if dtype == torch.bfloat16]
    fp32_row = {"peak_dtype": "fp32", **mfu.mfu_fields("fp32", 93.5e9, peaks)}
    bf16_row = {"peak_dtype": "bf16", **mfu.mfu_fields("bf16", 93.5e9, peaks)}
    assert fp32_row["mfu"] == pytest.approx(0.5) and mfu.mfu_text(fp32_row) == "MFU 0.500 of fp32 peak"
    if native_bf16:
        assert peaks["bf16"]["native"] and bf16_row["mfu"] == pytest.approx(93.5 / 900)
        assert printed[1].startswith("matmul peak bf16: 900.0 GFLOP/s") and len(bf16_timings) == 5  # + the square
    else:  # shown, never divided by: one shape timed once, not the 2048-square (~10 s a call here)
        assert not peaks["bf16"]["native"] and bf16_row["mfu"] is None
        assert printed[1].startswith("matmul peak bf16: not native (1.8 GFLOP/s)")
        assert bf16_timings == [(1024, 384, 1536)]
        assert mfu.mfu_text(bf16_row) == "MFU - (bf16 not native here)"
        assert mfu.headline_mfu(fp32_row, peaks) == "mfu=0.5000 peak_dtype=fp32 peak_gflops=187.0"
        assert mfu.headline_mfu(bf16_row, peaks) == "mfu=none peak_dtype=bf16 peak_gflops=1.8"


def _run(script: str, tmp_path: Path, data_dir: Path, model: Path | str, *args: str) -> str:
    """A benchmark script end to end on a model (a tiny one where the script's code is all that is checked)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--data-dir", str(data_dir),
                           "--model", str(model), "--out", str(tmp_path), *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_throughput_prints_the_ratio_line_and_stores_it(tmp_path, data_dir, tiny_models):
    out = _run("throughput.py", tmp_path, data_dir, tiny_models["bert"], "--steps", "3", "--max-length", "64", "--eval-size", "16")
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"ratio=([\d.]+) bound=([\d.]+) fraction=([\d.]+)", last)
    assert match, last
    ratio, bound, fraction = (float(x) for x in match.groups())
    assert bound >= 1 and fraction == pytest.approx(ratio / bound, abs=2e-3)
    record = json.loads((tmp_path / "throughput_lora_L64.json").read_text())
    assert record["train_reviews"] == 24 and record["test_reviews"] == 16 and record["env"]["versions"]


def test_study_time_and_inference_run_and_agree_on_merging(tmp_path, data_dir, tiny_models):
    out = _run("study_time.py", tmp_path, data_dir, tiny_models["bert"], "--train-size", "16", "--eval-size", "16", "--val-size", "8",
               "--epochs", "2", "--max-length", "32")
    assert re.search(r"time_usual=\d+ time_ours=\d+ speedup=[\d.]+$", out.strip())
    # Merging is exact arithmetic only in fp32 (bf16 rounds the merged weights differently), and is checked on the
    # real model: a tiny random one sits at chance, where float noise flips a prediction.
    _run("inference.py", tmp_path, data_dir, "minilm", "--steps", "2", "--eval-size", "16", "--max-length", "32",
         "--methods", "lora", "ia3", "--precision", "fp32")
    rows = json.loads((tmp_path / "inference_L32.json").read_text())["rows"]
    merged = [r for r in rows if r["form"] == "merged"]
    assert len(merged) == 2 and {r["precision"] for r in rows} == {"fp32"}
    assert all(r["identical_predictions"] and r["max_logit_difference"] < 1e-4 for r in merged), merged


def test_profile_step_traces_our_recipe_and_times_both_recipes_without_dropout(tmp_path, data_dir, tiny_models):
    out = _run("profile_step.py", tmp_path, data_dir, tiny_models["bert"], "--quick")
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"dropout_share=([\d.]+) matmul_share=([\d.]+) mfu_without_dropout=([\d.]+) "
                         r"peak_dtype=(fp32|bf16)", last)
    assert match, last
    (path,) = tmp_path.glob("profile_*_L32_quick.json")
    record = json.loads(path.read_text())
    shares = record["profiles"]["full"]["categories"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["matmul"] > 0 and shares["dropout masks"] > 0
    assert shares["dropout masks"] == pytest.approx(float(match.group(1)), abs=1e-3)
    cells = {(r["recipe"], r["dropout"]): r for r in record["rows"]}
    assert set(cells) == {("usual", True), ("ours", True), ("usual", False), ("ours", False)}
    assert all(cell["train_samples_per_s"] > 0 and cell["steps"] == 2 for cell in cells.values())
    assert all(cell["peak_dtype"] == cell["precision"] and 0 < cell["mfu"] < 1 for cell in cells.values())
    assert cells["ours", False]["mfu"] == pytest.approx(float(match.group(3)), abs=6e-5)
    assert cells["ours", False]["peak_dtype"] == match.group(4) and "mfu_of_bf16_peak" not in cells["ours", False]
