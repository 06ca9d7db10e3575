"""The further methods (family "further"): peft's other tuners and LoRA variants that apply to encoder classifiers.

One registry entry each, in peft's own names, like the study's methods: the config class, its defaults, where it
goes on each architecture, and the formula for what it trains (checked against the model in
tests/test_further_methods.py). They form their own comparison: their own validation sweep
(`experiment lr-sweep-further`), their own runs (`experiment further-methods`) and their own Holm family, so
they never move the verdicts of the study's four or of the six added methods.

Learning rates, per profile lr table:
- "cpu" (all-MiniLM-L6-v2): until `experiment lr-sweep-further` has picked one on validation reviews, the
  centre of `lr_grid["cpu"]`, the grid that sweep starts from: four rates an octave apart, placed by the
  nearest method the final sweep tuned (adapters of LoRA's kind near LoRA's and LoHa's picks; vectors near
  IA3's; spectral and circulant ones higher, as their papers train them); it widens the grid where the best
  rate falls at an end. Its picks then become these rates (tests/test_protocol.py checks it).
- "gpu" (roberta-base class): not measured here; LoRA's 4e-4 unless an entry says otherwise.

Defaults are peft's, except where peft's default is sized for far larger models than MiniLM (stated per entry):
there the adapter is sized to LoRA r=8's trainable parameters on the same layers where the method allows it.
"""

from __future__ import annotations

from typing import Any

from .methods import LayerCount, Method, PartCount, layer_dims, lora_layer, lora_targets, register
from .targets import preset

GPU_LR = 4e-4  # LoRA's gpu rate: the placeholder for a rate no paper gives for roberta-base that we know of
DOCS = "https://huggingface.co/docs/peft/package_reference/"


def _octaves(centre: float) -> tuple[float, ...]:
    """Four rates an octave apart with `centre` third: the grid the further sweep starts from."""
    return tuple(float(f"{centre * 2 ** step:.3g}") for step in (-2, -1, 0, 1))


def oft_layer(module, name: str, config) -> LayerCount:
    """OFT: a block-diagonal orthogonal rotation of the input, d_in / b blocks of b·(b-1)/2 skew-symmetric entries."""
    (d_in, _), b = layer_dims(module), config.oft_block_size
    return LayerCount(d_in // b * b * (b - 1) // 2, f"(d_in / b)·b·(b - 1)/2 = ({d_in} / {b})·{b}·{b - 1}/2")


def hra_layer(module, name: str, config) -> LayerCount:
    """HRA: r Householder reflections of the input, one d_in-long vector each."""
    r, (d_in, _) = config.r, layer_dims(module)
    return LayerCount(r * d_in, f"r·d_in = {r}·{d_in}")


def miss_layer(module, name: str, config) -> LayerCount:
    """MiSS (formerly Bone): one r × d_out block shared across the input's r-wide slices."""
    r, (_, d_out) = config.r, layer_dims(module)
    return LayerCount(r * d_out, f"r·d_out = {r}·{d_out}")


def c3a_layer(module, name: str, config) -> LayerCount:
    """C3A: a block-circulant update, one b-long kernel per (d_out / b) × (d_in / b) block."""
    b, (d_in, d_out) = config.block_size, layer_dims(module)
    return LayerCount(d_in * d_out // b, f"d_in·d_out / b = {d_in}·{d_out} / {b}")


def shira_layer(module, name: str, config) -> LayerCount:
    """SHiRA: a sparse update of the weight itself, as many entries as a rank-r LoRA has parameters."""
    r, (d_in, d_out) = config.r, layer_dims(module)
    return LayerCount(r * (d_in + d_out), f"r·(d_in + d_out) = {r}·({d_in} + {d_out}) entries")


def road_layer(module, name: str, config) -> LayerCount:
    """RoAd (road_1): a 2-D rotation of each pair of outputs, one angle and one scale per pair: d_out."""
    _, d_out = layer_dims(module)
    return LayerCount(d_out, f"d_out = {d_out} (an angle and a scale per output pair)")


def fourierft_layer(module, name: str, config) -> LayerCount:
    """FourierFT: n trained spectral coefficients at fixed random frequencies of the update, per layer."""
    n = config.n_frequency
    return LayerCount(n, f"n_frequency = {n}")


def vblora_layer(module, name: str, config) -> LayerCount:
    """VB-LoRA: top-k logits over the shared vector bank for every vector_length-long piece of A (r × d_in) and
    B (d_out × r)."""
    r, n, length, (d_in, d_out) = config.r, config.num_vectors, config.vector_length, layer_dims(module)
    return LayerCount(r * (d_in + d_out) // length * n,
                      f"r·(d_in + d_out) / L·num_vectors = {r}·({d_in} + {d_out}) / {length}·{n}")


def vblora_parts(model, model_type: str) -> list[PartCount]:
    """VB-LoRA's vector bank, shared by every adapted layer: num_vectors vectors of vector_length."""
    config = model.peft_config["default"]
    n, length = config.num_vectors, config.vector_length
    return [PartCount("adapter on the shared vector bank", 1, f"num_vectors × L = {n} × {length}", n * length)]


def lokr_layer(module, name: str, config) -> LayerCount:
    """LoKr: the Kronecker product of W1 (a × c, full) and W2 (b × d; two rank-r factors where r < max(b, d) / 2),
    with d_out = a·b and d_in = c·d factored as peft factors them."""
    from peft.tuners.lokr.layer import factorization

    (d_in, d_out), r = layer_dims(module), config.r
    (a, b), (c, d) = factorization(d_out, config.decompose_factor), factorization(d_in, config.decompose_factor)
    w1 = a * c
    if r < max(b, d) / 2:
        return LayerCount(w1 + r * (b + d), f"a·c + r·(b + d) = {a}·{c} + {r}·({b} + {d})")
    return LayerCount(w1 + b * d, f"a·c + b·d = {a}·{c} + {b}·{d}")


def ln_layer(module, name: str, config) -> LayerCount:
    """LN tuning: a trained copy of the LayerNorm, its weight and bias."""
    width = module.weight.numel()
    return LayerCount(2 * width, f"weight + bias = 2·{width}")


# The LayerNorms LN tuning trains, per architecture (peft has no preset for encoders).
LAYER_NORMS: dict[str, list[str]] = {
    "bert": ["LayerNorm"],
    "roberta": ["LayerNorm"],
    "deberta-v2": ["LayerNorm"],
    "distilbert": ["LayerNorm", "sa_layer_norm", "output_layer_norm"],
    "gpt_neo": ["ln_1", "ln_2", "ln_f"],
    "gpt2": ["ln_1", "ln_2", "ln_f"],
}


def ln_targets(model_type: str) -> dict[str, Any]:
    """LN tuning's placement: every LayerNorm of the model."""
    return {"target_modules": preset(LAYER_NORMS, model_type, "ln_tuning")}


def _further(name: str, label: str, colour: str, description: str, centre: float, **entry: Any) -> Method:
    """Register a further method: lr grid and provisional cpu rate from `centre`, LoRA's placement unless given,
    peft's page of the same name unless given."""
    entry.setdefault("targets", lora_targets)
    entry.setdefault("docs", DOCS + name)
    gpu = entry.pop("gpu_lr", GPU_LR)
    return register(Method(name=name, label=label, colour=colour, description=description,
                           learning_rates={"gpu": gpu, "cpu": centre}, lr_grid={"cpu": _octaves(centre)},
                           family="further", **entry))


# OFT: the skew-symmetric (Cayley) form the formula counts; an older peft's OFT (a full b×b block and a scale per
# output) lacks `use_cayley_neumann`, so there it is stored as skipped rather than counted wrong.
_further("oft", "OFT", "#393B79", "an orthogonal rotation of each adapted weight's input, in blocks of 32",
         4e-3, config_class="OFTConfig", defaults={"oft_block_size": 32, "r": 0, "use_cayley_neumann": True},
         layer_count=oft_layer)
_further("hra", "HRA", "#5254A3", "8 Householder reflections of each adapted weight's input",
         4e-3, config_class="HRAConfig", defaults={"r": 8}, layer_count=hra_layer)
# MiSS: peft's default r=64 trains 4x LoRA r=8's parameters on MiniLM; r=16 trains as many.
_further("miss", "MiSS", "#6B6ECF", "a shared r×d_out block added across the input's slices (Bone's successor)",
         4e-3, config_class="MissConfig", defaults={"r": 16}, layer_count=miss_layer)
# C3A: peft's default block 256 divides no MiniLM width (384); 64 divides every width here (64, 384, 768).
_further("c3a", "C3A", "#637939", "a block-circulant update of each adapted weight, blocks of 64 (FFT-based)",
         0.1, config_class="C3AConfig", defaults={"block_size": 64}, layer_count=c3a_layer,
         gpu_lr=0.3)  # gpu: peft's C3A example trains at 3e-1
# SHiRA: peft's default r=32 trains 4x LoRA r=8's entries; r=8 trains as many.
_further("shira", "SHiRA", "#8CA252", "a sparse update of 1-2% of each adapted weight's entries (a random mask)",
         1e-3, config_class="ShiraConfig", defaults={"r": 8}, layer_count=shira_layer, built_from_weights=True)
_further("road", "RoAd", "#8C6D31", "a learned 2-D rotation and scale of each pair of outputs of the adapted weights",
         1.6e-2, config_class="RoadConfig", defaults={"variant": "road_1"}, layer_count=road_layer)
_further("fourierft", "FourierFT", "#BD9E39", "1000 trained Fourier coefficients per adapted weight's update",
         5e-2, config_class="FourierFTConfig", defaults={"n_frequency": 1000}, layer_count=fourierft_layer)
# VB-LoRA: peft's vector_length 256 divides no MiniLM width; 64 does, and 128 vectors train about LoRA r=8's count.
_further("vblora", "VB-LoRA", "#843C39", "LoRA factors assembled from a shared bank of 128 vectors (top-2 per piece)",
         8e-3, config_class="VBLoRAConfig", defaults={"r": 4, "vector_length": 64, "num_vectors": 128},
         layer_count=vblora_layer, part_count=vblora_parts)
_further("lokr", "LoKr", "#AD494A", "the Kronecker product of a small full factor and a rank-8 one (LyCORIS)",
         8e-3, config_class="LoKrConfig", defaults={"r": 8, "alpha": 16}, layer_count=lokr_layer)
_further("ln_tuning", "LN tuning", "#7B4173", "only the LayerNorms (their trained copies) and the head",
         2e-3, config_class="LNTuningConfig", targets=ln_targets, layer_count=ln_layer, docs=DOCS + "layernorm_tuning")
# LoRA variants: LoRA's placement, rank and alpha, one thing changed each.
_LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1}
_further("lora_rs", "rsLoRA", "#A55194", "LoRA (rank 8, query and value) scaled by alpha/sqrt(r) instead of alpha/r",
         1e-3, config_class="LoraConfig", defaults={**_LORA, "use_rslora": True}, layer_count=lora_layer,
         docs=DOCS + "lora")
