"""Parameters and model-state memory of a model under each method, computed from its config alone (no weights).

The model is built from its config on the meta device (no memory is allocated) and wrapped exactly as a run
wraps it: the registry's peft config on the architecture's preset targets, the head kept trainable, BitFit's
`prepare` hook, prompt tuning's `unsupported` check, and `prepare_model_for_kbit_training` for QLoRA. The
counts are then taken with the function a run counts with (`params.count_parameters`), so an estimate and a
run agree to the parameter. Configs of the reference models ship in `architectures/` (each names its source):
roberta-base, distilbert-base-uncased, deberta-v3-base, gpt-neo-1.3B and all-MiniLM-L6-v2 need no hub.

Model state, per method (MB = 2**20 bytes):

    model state = weights + gradients + optimizer
    weights     = every parameter and buffer as stored: 4 bytes for fp32 (the Trainer keeps fp32 weights
                  under fp16 or bf16 mixed precision: autocast computes in 16 bit, and the fp32 weights are the
                  master copy, so there is no second one). QLoRA stores the linear layers outside the head in
                  4-bit NF4 with double quantization: per weight 4 bits of code + 8/64 bits (one 8-bit absmax per
                  block of 64) + 32/(64*256) bits (one fp32 constant per 256 blocks) = 4.127 bits
                  (params.NF4_BITS_PER_WEIGHT); embeddings, norms, biases and the head stay fp32.
                  The dtype is the one the config names (transformers >= 5 loads with dtype="auto"), fp32 where it
                  names none; a checkpoint whose config names none but whose file is 16-bit loads in 16 bit there.
    gradients   = trainable parameters x bytes of their dtype (4, fp32)
    optimizer   = AdamW's two moments: trainable parameters x 2 x 4 bytes

Not estimated: activations (they grow with batch x length, and shrink under gradient checkpointing), the CUDA
context, temporary buffers and the allocator's fragmentation. With CUDA, `--measure` trains one real step
(random weights and token ids, the profile's batch and length, the profile's precision) and reports the
allocator's peak, which includes them all but the context.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import PROFILES, Profile, RunConfig
from .errors import Unsupported, UserError, first_line
from .methods import Method, get_method, method_adapters, method_names, takes_shared_adapter
from .models import ALIASES, adapt, check_supported, load_config, meta_model, transformers_errors_only
from .targets import head_modules

ARCHITECTURES = Path(__file__).with_name("architectures")
# The methods an estimate lists unless told which (--methods): the study's four and the six added ones.
TABLED = ("core", "added")
MB = 2**20
# The GPU each GPU profile stands for, by compute capability: the precision `auto` picks follows from it.
PROFILE_GPUS = {"colab-t4": ("NVIDIA T4", (7, 5))}
ADAMW_MOMENTS = 2  # exp_avg and exp_avg_sq, each as wide as the weight (fp32)
NOT_ESTIMATED = ("not included: activations (they grow with batch x length), the CUDA context, temporary buffers "
                 "and allocator fragmentation")


@dataclass
class EstimateRow:
    """One method on one model: what it trains and the memory its model state takes."""

    model: str  # as asked: alias, folder or hub id
    architecture: str  # config.model_type
    method: str
    status: str  # ok, skipped (the method cannot run this model, as a run records it) or failed (bad settings)
    reason: str = ""
    trainable_params: int | None = None  # adapter + head, as params.count_parameters counts them
    adapter_params: int | None = None
    head_params: int | None = None
    total_params: int | None = None
    trainable_pct: float | None = None
    weights_mb: float | None = None  # parameters and buffers as stored (QLoRA: NF4 codes + constants)
    gradients_mb: float | None = None
    optimizer_mb: float | None = None
    model_state_mb: float | None = None
    quantized_params: int = 0  # weights QLoRA keeps in 4-bit NF4
    quant_constants_mb: float = 0.0  # the NF4 absmax constants, part of weights_mb
    precision: str = ""  # the training precision the profile picks
    precision_reason: str = ""
    adapter: dict[str, Any] = field(default_factory=dict)  # the settings asked for (over the registry's)
    measured_model_mb: float | None = None  # --measure: CUDA memory held before the step
    measured_peak_mb: float | None = None  # --measure: CUDA allocator peak during one training step

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able)."""
        return asdict(self)


# --- configs ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def shipped_configs() -> dict[str, Path]:
    """The shipped config files, by the hub id each names as its source."""
    return {json.loads(path.read_text())["_source"]["hub_id"]: path for path in sorted(ARCHITECTURES.glob("*.json"))}


def read_shipped(path: Path) -> dict[str, Any]:
    """A shipped config as config.json holds it (its `_source` note stripped)."""
    data = json.loads(path.read_text())
    data.pop("_source")
    return data


def config_from_dict(data: dict[str, Any]):
    """A transformers config from config.json's contents."""
    from transformers import AutoConfig

    data = dict(data)
    return AutoConfig.for_model(data.pop("model_type"), **data)


def architecture_config(model: str, trust_remote_code: bool = False) -> tuple[Any, str]:
    """The model's config and where it came from: shipped (aliases, no hub), a folder, or the hub."""
    hub_id = ALIASES.get(model, model)
    shipped = shipped_configs()
    if hub_id in shipped:
        return config_from_dict(read_shipped(shipped[hub_id])), f"architectures/{shipped[hub_id].name} ({hub_id})"
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{model} has no config.json; give a model folder (as save_pretrained writes it), "
                            f"an alias ({', '.join(ALIASES)}) or a hub id")
        return load_config(str(path), trust_remote_code), str(path / "config.json")
    if model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model:
        raise UserError(f"no model folder {model!r}; give an existing folder with config.json, an alias "
                        f"({', '.join(ALIASES)}) or a hub id")
    try:
        return load_config(model, trust_remote_code), f"{model} (hub config.json)"
    except UserError:
        if "/" in model:
            raise
        raise UserError(f"unknown model alias {model!r}; use one of {', '.join(ALIASES)}, a model folder with "
                        "config.json, or a hub id such as org/name (needs hub access)") from None


# --- building and wrapping, as a run does -----------------------------------------------------------------


def quantized_weights(model, architecture: str) -> list:
    """The weights a QLoRA run stores in 4-bit: every nn.Linear (and Conv1D) outside the head, as transformers'
    bitsandbytes integration replaces them with models.nf4_config's skip list (the head modules)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    heads = set(head_modules(architecture)) | set(getattr(model, "_keep_in_fp32_modules", None) or [])
    return [module.weight for name, module in model.named_modules()
            if (type(module) is torch.nn.Linear or isinstance(module, Conv1D)) and not set(name.split(".")) & heads]


def wrap(model, method: Method, architecture: str, peft_config, run: RunConfig, model_config):
    """Wrap a model for its method as models.build_model does; Unsupported where a run would be skipped."""
    from peft import prepare_model_for_kbit_training

    check_supported(run, method, model_config)
    if method.quantized_base:  # freezes the base, casts 16-bit weights to fp32 (as after a 4-bit load)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return adapt(model, run, method, architecture, peft_config).model


def frozen_as_in_a_run(model) -> None:
    """Keep peft's non-adapter parameters (AdaLoRA's rank counter) frozen, as on a real device: moving them to
    the meta device turns them into new Parameters, which are trainable by default."""
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in model.modules():
        for name in module.other_param_names if isinstance(module, BaseTunerLayer) else ():
            if isinstance(getattr(module, name, None), torch.nn.ParameterDict):
                for parameter in getattr(module, name).values():
                    parameter.requires_grad = False


# --- precision ------------------------------------------------------------------------------------------------


def profile_precision(profile: Profile, method: Method, requested: str = "auto"):
    """The precision a run of this profile trains in: a GPU profile's on its GPU (T4: fp16), else this machine's."""
    from .hardware import choose_precision, run_precision

    if profile.name in PROFILE_GPUS:
        gpu, capability = PROFILE_GPUS[profile.name]
        chosen = choose_precision(requested, capability=capability, cuda=True)
        return type(chosen)(chosen.name, f"{gpu}: {chosen.reason}")
    return run_precision(requested, method.cpu_bf16, method.name)


# --- counting ---------------------------------------------------------------------------------------------


def model_state(model, quantized: list) -> dict[str, float]:
    """Weights, gradients and AdamW state in MB (the module docstring's formula), and the 4-bit constants."""
    from .params import NF4_BITS_PER_WEIGHT, weights_mb

    stored = weights_mb(model)  # what a run reads: parameters and buffers by their element size
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    in_4bit = sum(w.numel() for w in quantized)
    as_loaded = sum(w.numel() * w.element_size() for w in quantized)
    constants = in_4bit * (NF4_BITS_PER_WEIGHT - 4) / 8
    weights = (stored["frozen"] + stored["trainable"]) * MB - as_loaded + in_4bit * 4 / 8 + constants
    gradients = stored["trainable"] * MB
    optimizer = ADAMW_MOMENTS * trainable * 4
    return {"weights_mb": weights / MB, "gradients_mb": gradients / MB, "optimizer_mb": optimizer / MB,
            "model_state_mb": (weights + gradients + optimizer) / MB, "quant_constants_mb": constants / MB}


def estimate_method(model: str, model_config, method: str, adapter: dict[str, Any], profile: Profile,
                    precision: str = "auto", **overrides: Any) -> EstimateRow:
    """One method on one model: wrapped on the meta device as a run wraps it, then counted."""
    from .params import count_parameters

    entry = get_method(method)
    architecture = model_config.model_type
    chosen = profile_precision(profile, entry, precision)
    run = RunConfig.from_profile(profile, method, model=model, adapter=dict(adapter), precision=chosen.name,
                                 **overrides)
    row = EstimateRow(model, architecture, method, "ok", precision=chosen.name, precision_reason=chosen.reason,
                      adapter=dict(adapter))
    unavailable = entry.unavailable()
    if unavailable:
        row.status, row.reason = "skipped", unavailable
        return row
    peft_config = entry.peft_config(architecture, adapter, run=run)  # UserError for bad settings
    base = meta_model(model_config, entry.count_device)
    quantized = quantized_weights(base, architecture) if entry.quantized_base else []
    try:
        wrapped = wrap(base, entry, architecture, peft_config, run, model_config)
    except Unsupported as exc:
        row.status, row.reason = "skipped", str(exc)
        return row
    except (ValueError, TypeError, NotImplementedError) as exc:
        row.status, row.reason = "failed", f"peft refuses these settings on {architecture}: {first_line(exc)[:300]}"
        return row
    frozen_as_in_a_run(wrapped)
    counts = count_parameters(wrapped, head_modules(architecture))
    row.trainable_params, row.adapter_params, row.head_params = counts.trainable, counts.adapter, counts.head
    row.total_params, row.trainable_pct = counts.total, 100 * counts.trainable / counts.total
    row.quantized_params = sum(w.numel() for w in quantized)
    for name, value in model_state(wrapped, quantized).items():
        setattr(row, name, value)
    return row


def estimate(model: str, methods: list[str] | None = None, adapter: dict[str, Any] | None = None,
             profile: str = "colab-t4", precision: str = "auto", batch_size: int | None = None,
             max_length: int | None = None, measure: bool = False) -> list[EstimateRow]:
    """Trainable parameters and model-state memory of `model` under each method (default: every registered one).

    `adapter` holds peft settings (typed, peft's names) for every method that has an adapter; a profile
    gives batch, length and precision (colab-t4: a T4, fp16 mixed precision). `measure` trains one real step
    per method on CUDA and adds its allocator peak.
    """
    methods = list(methods or method_names(families=TABLED))
    adapters = {m: dict(adapter or {}) if takes_shared_adapter(m, methods) else {} for m in methods}
    return estimate_adapters(model, adapters, profile, precision, batch_size, max_length, measure)


def estimate_adapters(model: str, adapters: dict[str, dict[str, Any]], profile: str = "colab-t4",
                      precision: str = "auto", batch_size: int | None = None, max_length: int | None = None,
                      measure: bool = False) -> list[EstimateRow]:
    """`estimate` with settings per method ({method: adapter})."""
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    if precision not in ("auto", "fp32", "fp16", "bf16"):
        raise UserError(f"--precision must be auto, fp32, fp16 or bf16, got {precision!r}")
    model_config, _ = architecture_config(model)
    overrides = {k: v for k, v in {"batch_size": batch_size, "max_length": max_length}.items() if v is not None}
    rows = [estimate_method(model, model_config, method, adapter, PROFILES[profile], precision, **overrides)
            for method, adapter in adapters.items()]
    if measure:
        from .hardware import device_kind

        if device_kind() == "cuda":
            for row in rows:
                if row.status == "ok":
                    measure_row(row, model_config, PROFILES[profile], **overrides)
    return rows


# --- one real step (CUDA: its allocator peak) ---------------------------------------------------------------


def random_model(model_config, method: Method, architecture: str, precision, device: str = "cuda"):
    """The classifier with random weights on `device`; QLoRA's linear layers (outside the head) in 4-bit NF4."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model_config = copy.deepcopy(model_config)
    model_config.num_labels = 2
    if model_config.pad_token_id is None:  # decoders classify from the last non-padding token: they need a pad id
        model_config.pad_token_id = model_config.eos_token_id
    with torch.device(device), transformers_errors_only():
        model = AutoModelForSequenceClassification.from_config(model_config)
    if method.quantized_base:
        to_nf4(model, architecture, precision, device)
    return model


def to_nf4(model, architecture: str, precision, device: str = "cuda") -> None:
    """Replace the linear layers a QLoRA run quantizes with bitsandbytes NF4 layers (double quantization), as
    models.nf4_config has transformers do when it loads the weights."""
    import bitsandbytes as bnb
    import torch

    from .hardware import qlora_compute_dtype

    compute = qlora_compute_dtype(precision.name, device == "cuda")[0]
    targets = {id(weight) for weight in quantized_weights(model, architecture)}
    for name, module in list(model.named_modules()):
        if id(getattr(module, "weight", None)) not in targets:
            continue
        layer = bnb.nn.Linear4bit(module.in_features, module.out_features, bias=module.bias is not None,
                                  compute_dtype=compute, compress_statistics=True, quant_type="nf4", device="meta")
        layer.weight = bnb.nn.Params4bit(module.weight.data.cpu(), requires_grad=False, compress_statistics=True,
                                         quant_type="nf4")
        if module.bias is not None:
            layer.bias = torch.nn.Parameter(module.bias.data, requires_grad=False)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, layer.to(device))  # moving it quantizes it
    model.is_loaded_in_4bit = True  # what peft reads to give 4-bit layers its bitsandbytes LoRA layers


def train_step(model, vocab_size: int, batch_size: int, length: int, precision,
               device: str = "cuda") -> tuple[float | None, float | None]:
    """One AdamW step on random ids in the run's precision; on CUDA the memory held before it and the allocator
    peak during it (MB), elsewhere (None, None)."""
    import torch

    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    held = torch.cuda.memory_allocated() / MB if cuda else None
    ids = torch.randint(0, vocab_size, (batch_size, length), device=device)
    labels = torch.randint(0, 2, (batch_size,), device=device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=cuda)
    scaler = torch.amp.GradScaler(device, enabled=precision.fp16)
    model.train()
    with torch.autocast(device, dtype=precision.compute_dtype, enabled=precision.name != "fp32"):
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    if not cuda:
        return None, None
    torch.cuda.synchronize()
    return held, torch.cuda.max_memory_allocated() / MB


def measure_row(row: EstimateRow, model_config, profile: Profile, device: str = "cuda", **overrides: Any) -> None:
    """Train one step of the row's method (random weights, the profile's batch, length and precision) and record
    the CUDA memory it held and its peak."""
    import gc

    import torch

    entry = get_method(row.method)
    precision = profile_precision(profile, entry, row.precision)
    run = RunConfig.from_profile(profile, row.method, model=row.model, adapter=row.adapter, precision=precision.name,
                                 **overrides)
    model = random_model(model_config, entry, row.architecture, precision, device)
    model = wrap(model, entry, row.architecture, entry.peft_config(row.architecture, row.adapter, run=run), run,
                 model_config)
    try:
        row.measured_model_mb, row.measured_peak_mb = train_step(model, model_config.vocab_size, run.batch_size,
                                                                 run.max_length, precision, device)
    except torch.cuda.OutOfMemoryError:
        row.reason = f"--measure: out of CUDA memory at batch {run.batch_size} x {run.max_length}"
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


# --- output -----------------------------------------------------------------------------------------------

COLUMNS = [("method", "method", "{}"), ("status", "status", "{}"), ("trainable", "trainable_params", "{:,}"),
           ("total", "total_params", "{:,}"), ("trainable %", "trainable_pct", "{:.3f}"),
           ("weights MB", "weights_mb", "{:,.1f}"), ("grads MB", "gradients_mb", "{:,.1f}"),
           ("AdamW MB", "optimizer_mb", "{:,.1f}"), ("model state MB", "model_state_mb", "{:,.1f}")]
MEASURED = [("held MB", "measured_model_mb", "{:,.0f}"), ("peak MB (1 step)", "measured_peak_mb", "{:,.0f}")]


def format_rows(rows: list[EstimateRow], measured: bool = False) -> str:
    """The rows as an aligned text table, skipped methods with their reasons below it."""
    columns = COLUMNS + (MEASURED if measured else [])
    cells = [[title for title, _, _ in columns]]
    cells += [[fmt.format(getattr(row, key)) if getattr(row, key) is not None else "-" for _, key, fmt in columns]
              for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines += [f"{row.method} {row.status}: {row.reason}" for row in rows if row.reason]
    return "\n".join(lines)


def report(rows: list[EstimateRow], source: str, profile: Profile, measure: bool, elapsed_s: float,
           overrides: dict[str, Any], imports_s: float | None = None) -> str:
    """The table with its header (model, config source, profile, precision) and footer (formula, what is left out)."""
    from .hardware import device_kind

    first = rows[0]
    batch, length = overrides.get("batch_size", profile.batch_size), overrides.get("max_length", profile.max_length)
    quantized = next((r for r in rows if r.quantized_params), None)
    lines = [f"{first.model}: {first.architecture}, config {source}; built on the meta device (no weights): "
             f"{len(rows)} method(s) in {elapsed_s:.1f} s"
             + (f" (after {imports_s:.1f} s importing torch, transformers and peft)" if imports_s else ""),
             f"profile {profile.name}: batch {batch} x {length} tokens, {_precisions(rows)}",
             "", format_rows(rows, measured=measure and device_kind() == "cuda"), "",
             "model state = weights as stored (fp32: mixed precision keeps fp32 weights as the master copy) "
             "+ gradients (trainable x 4 B) + AdamW moments (trainable x 2 x 4 B)"]
    if quantized is not None:
        lines.append(f"QLoRA: {quantized.quantized_params:,} linear weights in NF4 at 4 + 8/64 + 32/(64*256) = "
                     f"4.127 bits each ({quantized.quant_constants_mb:.1f} MB of it double-quantized absmax "
                     "constants); embeddings, norms, biases and the head stay fp32")
    if measure and device_kind() == "cuda":
        lines.append(f"measured: one training step on {_device()}, random weights and ids, batch {batch} x "
                     f"{length}: held = CUDA memory before the step, peak = allocator peak (context not counted)")
    else:
        lines.append(NOT_ESTIMATED + ("; --measure needs CUDA (none here)" if measure else
                                      "; --measure on a CUDA machine reports one real step's peak"))
    return "\n".join(lines)


def _precisions(rows: list[EstimateRow]) -> str:
    """The training precision with its reason, or per method where methods differ (cpu_bf16=False: fp32 on a CPU)."""
    chosen = {row.precision: row.precision_reason for row in rows}
    if len(chosen) == 1:
        return "{} ({})".format(*next(iter(chosen.items())))
    return "; ".join(f"{name} for {', '.join(r.method for r in rows if r.precision == name)} ({reason})"
                     for name, reason in chosen.items())


def _device() -> str:
    import torch

    return torch.cuda.get_device_name(0)


# --- command line ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `estimate` command's arguments."""
    parser.add_argument("--model", required=True,
                        help=f"alias ({', '.join(ALIASES)}: configs ship with the package, no hub needed), "
                        "a model folder with config.json, or a hub id")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every registered method")
    parser.add_argument("--adapter", nargs="+", default=[], metavar="KEY=VALUE",
                        help="adapter settings in peft's own names, as for `run` (e.g. r=16 lora_alpha=32)")
    parser.add_argument("--profile", default="colab-t4",
                        help=f"whose batch, length and precision: {', '.join(PROFILES)} (default colab-t4: a T4)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="default auto: what the profile's machine picks (T4: fp16)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--measure", action="store_true",
                        help="with CUDA: train one real step per method (random weights) and report the peak")
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")


def run(args: argparse.Namespace) -> int:
    """Print the estimate for args.model; 2 on bad input, 1 when a method failed on the settings given."""
    import sys

    begun = time.perf_counter()
    import peft  # noqa: F401  (imported first so the header can say how long the estimate itself took)
    import transformers  # noqa: F401

    imports_s, started = time.perf_counter() - begun, time.perf_counter()
    try:
        methods = args.methods or method_names(families=TABLED)
        for method in methods:
            get_method(method)
        adapters = method_adapters(methods, args.adapter)
        rows = estimate_adapters(args.model, adapters, args.profile, args.precision, args.batch_size,
                                 args.max_length, args.measure)
        source = architecture_config(args.model)[1]
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
    else:
        overrides = {"batch_size": args.batch_size, "max_length": args.max_length}
        print(report(rows, source, PROFILES[args.profile], args.measure, time.perf_counter() - started,
                     {k: v for k, v in overrides.items() if v is not None}, imports_s))
    return 1 if any(row.status == "failed" for row in rows) else 0


# --- the reference reports' published counts ---------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """A count one of the reference reports printed, with the settings it states (../shared/REFERENCE.md)."""

    report: str  # R1-R5 as REFERENCE.md names them
    model: str  # alias
    method: str
    printed: str  # the trainable count as printed ("124,647,170", "887K", "66.96M", "0.03%")
    adapter: dict[str, Any] = field(default_factory=dict)  # its settings in peft's names ({}: registry defaults)
    settings: str = ""  # what the report says about them
    memory: str = ""  # its peak GPU memory as printed (activations included: not a model-state figure)
    train_time_s: float | None = None  # its training time as printed, in seconds (R1's are approximate: "~370")
    accuracy: float | None = None  # its test accuracy as printed


QV16 = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "target_modules": ["query", "value"]}
# The reference reports' figures as published, transcribed in ../shared/REFERENCE.md (R1-R5). They are the
# published numbers this module is checked against, not results of this repository. R1 trained the colab-t4
# profile's setting (roberta-base, 3000 train / 2000 test, batch 8, 3 epochs, fp16) on a Colab T4: its times are
# the README's estimate for a T4.
T4_REPORT = "R1"
PUBLISHED = [
    Published("R1", "roberta", "full", "125M", settings="roberta-base (and GPT-Neo 1.3B), no settings given",
              memory="~6.5 GB", train_time_s=370),
    Published("R1", "roberta", "lora", "5M", settings="no settings given: registry defaults shown", memory="~3.5 GB",
              train_time_s=320),
    Published("R1", "roberta", "qlora", "5M", settings="no settings given: registry defaults shown", memory="~4 GB",
              train_time_s=340),
    Published("R1", "roberta", "ia3", "2M", settings="no settings given: registry defaults shown", memory="~3 GB",
              train_time_s=300),
    Published("R2", "roberta", "full", "124,647,170", memory="2.639 GB", accuracy=0.9140),
    Published("R2", "roberta", "lora", "1,181,954", QV16, "r=16, alpha=32, dropout 0.1 on query, value",
              memory="1.482 GB", accuracy=0.9115),
    Published("R2", "roberta", "qlora", "1,034,498",
              {"r": 8, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["query", "key", "value"]},
              "NF4, double quant, r=8, alpha=32, dropout 0.05; targets not given: query, key, value reproduce "
              "the count", memory="1.356 GB", accuracy=0.9045),
    Published("R2", "roberta", "ia3", "656,642", settings="peft defaults (key, value, output.dense)",
              memory="2.854 GB", accuracy=0.8495),
    Published("R3", "roberta", "full", "124.6M", memory="7746 MB"),
    Published("R3", "roberta", "lora", "887K", settings="not given: r=8 on query, value (registry defaults) "
              "reproduce it", memory="4120 MB"),
    Published("R3", "roberta", "qlora", "887K", settings="not given: r=8 on query, value reproduce it",
              memory="4260 MB"),
    Published("R3", "roberta", "ia3", "656K", settings="not given: peft defaults reproduce it", memory="3900 MB"),
    Published("R4", "distilbert", "full", "66.96M", accuracy=0.9307),
    Published("R4", "distilbert", "lora", "0.81M",
              {"r": 8, "lora_alpha": 32, "lora_dropout": 0.1, "target_modules": ["q_lin", "k_lin", "v_lin"]},
              "r=8, alpha=32, dropout 0.1 on q_lin, k_lin, v_lin", accuracy=0.9009),
    Published("R5", "deberta", "ia3", "0.03%", settings="'IA3 0.03% trainable' (no settings given)"),
    Published("R5", "deberta", "qlora", "", settings="'DeBERTa-v3 at 1.52 GB' (no settings given)",
              memory="1.52 GB"),
]


def printed_agrees(count: int, pct: float, printed: str) -> bool | None:
    """Whether a count is a printed figure ("124,647,170", "887K", "66.96M", "0.03%") to its last printed digit,
    rounded or cut off (reports do both: 656,642 is printed "656K"); None when nothing readable is printed."""
    match = re.fullmatch(r"([\d,]+(?:\.(\d+))?)\s*([KM%]?)", printed)
    if match is None:
        return None
    value, decimals = float(match.group(1).replace(",", "")), len(match.group(2) or "")
    ours = {"K": count / 1e3, "M": count / 1e6, "%": pct, "": count}[match.group(3)]
    return abs(ours - value) < 10**-decimals


def _agreement(row: EstimateRow, printed: str) -> str:
    """'yes' or 'no' as the estimate rounds to the printed figure; a share may leave the head out."""
    if not printed or row.status != "ok":
        return ""
    if printed_agrees(row.trainable_params, row.trainable_pct, printed):
        return "yes"
    if printed.endswith("%") and printed_agrees(row.adapter_params, 100 * row.adapter_params / row.total_params,
                                                printed):
        return "yes, without the head"
    return "no"


def reference_table(profile: str = "colab-t4") -> "pd.DataFrame":
    """Our estimate for the reference architectures beside the reference reports' published counts.

    First the four core methods at the registry's defaults on each reference model (what this repository's runs
    train), then every published count with the report's own settings where it states them.
    """
    import pandas as pd

    from .methods import method_names as names

    records = []
    for model in ("roberta", "distilbert", "deberta", "gpt-neo"):
        for row in estimate(model, names(core_only=True), profile=profile):
            records.append(_reference_record(row, "this repository", "registry defaults", None))
    for item in PUBLISHED:
        row = estimate(item.model, [item.method], item.adapter or None, profile=profile)[0]
        records.append(_reference_record(row, item.report, item.settings or "as published", item))
    return pd.DataFrame(records)


def _reference_record(row: EstimateRow, report_name: str, settings: str, item: Published | None) -> dict[str, Any]:
    """One line of the reference table."""
    printed = item.printed if item else ""
    return {"report": report_name, "model": ALIASES[row.model], "method": row.method, "settings": settings,
            "trainable_params": row.trainable_params, "published_trainable": printed,
            "agrees": _agreement(row, printed), "total_params": row.total_params,
            "trainable_pct": row.trainable_pct, "adapter_pct": 100 * row.adapter_params / row.total_params,
            "model_state_mb": row.model_state_mb, "published_peak_memory": item.memory if item else ""}
