"""Model FLOPs of a training step, and model FLOPs utilisation (MFU) against a measured matmul peak.

One definition, used everywhere in this package: **model FLOPs** are the FLOPs of the matrix
multiplications a training step needs, counted on the real (non-padding) tokens of each review:

- every weight matrix a token passes through costs 2 FLOPs per weight per token forward, 2 for the
  gradient of its input, and 2 more for the gradient of the weight only where the weight is trained:
  6 per trained weight (the "6N" of Kaplan et al. 2020 and PaLM, appendix B) and 4 per frozen weight
  (LoRA's, IA3's and QLoRA's frozen base: no weight gradient is needed, but the gradient still flows
  through it to the adapters below). The input gradient of the lowest frozen layers, below every
  trained weight, is not needed either; that small saving is ignored.
- attention: Q·Kᵀ and softmax(·)·V cost 2·T·d FLOPs each per token per layer forward, three times that
  with the backward pass: 12 · layers · d · T per token (PaLM's 12·L·H·Q·T with H·Q = d), T = the
  review's own length (no padding), d = the attention width (hidden size).
- the head (pooler, classifier) reads one token per review: its weights count once per review.

Not counted: embedding lookups, biases, LayerNorms, softmax, IA3's elementwise scaling (O(d) per token),
dequantizing 4-bit weights and recomputing activations under gradient checkpointing: these are costs
of an implementation, and MFU measures how much of the hardware's peak goes into the model's own work.
Padding is not counted either: a recipe that pads every review to the maximum length does more
arithmetic for the same model FLOPs, and its MFU shows it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch

# peft keeps a frozen copy of each modules_to_save module beside the trained one; only one runs.
_UNUSED_COPY = "original_module"


@dataclass(frozen=True)
class MatmulWeights:
    """Weights of a model's matrix multiplications: per token (in the layers) or per review (the head)."""

    layers: int
    hidden: int
    token_trained: int
    token_frozen: int
    review_trained: int
    review_frozen: int


def _matmul_size(module: torch.nn.Module) -> int | None:
    """Weights of a matmul module (true count for packed 4-bit layers), None for other modules."""
    if isinstance(module, torch.nn.Linear):  # bitsandbytes' Linear4bit subclasses it
        return module.in_features * module.out_features
    if type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None:  # GPT-2's linear
        return module.weight.numel()
    return None


def _as_model(model_or_config):
    """A model as given, or one built on the meta device from a transformers config (shapes only, no memory)."""
    from transformers import PretrainedConfig

    if not isinstance(model_or_config, PretrainedConfig):
        return model_or_config
    from transformers import AutoModelForSequenceClassification

    with torch.device("meta"):
        return AutoModelForSequenceClassification.from_config(model_or_config)


def _layers(model) -> tuple[str, torch.nn.ModuleList]:
    """Name and module of the repeated transformer layers: the ModuleList holding the most parameters."""
    lists = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m)]
    return max(lists, key=lambda item: sum(p.numel() for p in item[1].parameters()))


def count_matmul_weights(model_or_config) -> MatmulWeights:
    """Count the matmul weights of a model (plain, peft-wrapped or 4-bit) or of a transformers config."""
    model = _as_model(model_or_config)
    prefix, layers = _layers(model)
    counts = {"token_trained": 0, "token_frozen": 0, "review_trained": 0, "review_frozen": 0}
    for name, module in model.named_modules():
        size = _matmul_size(module)
        if size is None or _UNUSED_COPY in name.split("."):
            continue
        where = "token" if name.startswith(prefix + ".") else "review"
        counts[f"{where}_{'trained' if module.weight.requires_grad else 'frozen'}"] += size
    return MatmulWeights(layers=len(layers), hidden=model.config.hidden_size, **counts)


def layer_gemm_shapes(model_or_config) -> list[tuple[int, int]]:
    """Distinct (in, out) shapes of the linear layers in one transformer layer, largest first."""
    _, layers = _layers(_as_model(model_or_config))
    shapes = {(m.in_features, m.out_features) for m in layers[0].modules() if isinstance(m, torch.nn.Linear)}
    return sorted(shapes, key=lambda shape: (-shape[0] * shape[1], shape))


def _weights(model_or_counts) -> MatmulWeights:
    return model_or_counts if isinstance(model_or_counts, MatmulWeights) else count_matmul_weights(model_or_counts)


def training_flops_per_token(model_or_counts, seq_len: int) -> float:
    """Model FLOPs per token of training (forward + backward) on a review of seq_len real tokens."""
    w = _weights(model_or_counts)
    matmuls = 6 * w.token_trained + 4 * w.token_frozen
    attention = 12 * w.layers * w.hidden * seq_len
    head = (6 * w.review_trained + 4 * w.review_frozen) / seq_len
    return matmuls + attention + head


def training_flops(model_or_counts, lengths: Iterable[int]) -> float:
    """Model FLOPs of training once on reviews of these real (non-padding) token lengths."""
    w = _weights(model_or_counts)
    return float(sum(n * training_flops_per_token(w, n) for n in lengths))


def model_flops_per_second(model_or_counts, lengths: Iterable[int], seconds: float) -> float:
    """Model FLOP/s of training once on reviews of these lengths in `seconds`."""
    return training_flops(model_or_counts, lengths) / seconds


def mfu(flops_per_second: float, peak_flops_per_second: float) -> float:
    """Model FLOPs utilisation: the fraction of the peak that went into model FLOPs."""
    return flops_per_second / peak_flops_per_second


def matmul_flops_per_second(m: int, k: int, n: int, dtype: torch.dtype = torch.float32,
                            min_seconds: float = 0.5, device: str = "cpu") -> float:
    """Measured FLOP/s of an (m x k) @ (k x n) matmul in dtype: best of repeated timings over min_seconds."""
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    torch.mm(a, b)  # warm-up: first call pays for allocation and kernel selection
    best, spent = float("inf"), 0.0
    while spent < min_seconds:
        sync()
        started = time.perf_counter()
        torch.mm(a, b)
        sync()
        elapsed = time.perf_counter() - started
        best, spent = min(best, elapsed), spent + elapsed
    return 2 * m * k * n / best
