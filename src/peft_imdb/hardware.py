"""What this machine can do: device, training precision, and whether 4-bit NF4 works here."""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass

import torch

from .errors import UserError, first_line


@dataclass(frozen=True)
class Precision:
    """Mixed-precision choice for training and the compute dtype of 4-bit layers."""

    name: str  # "bf16", "fp16" or "fp32"
    reason: str

    @property
    def fp16(self) -> bool:
        return self.name == "fp16"

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype 4-bit layers compute in under this precision."""
        return DTYPES[self.name]


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def dtype_name(dtype: torch.dtype) -> str:
    """The short name (bf16, fp16, fp32) of a torch dtype."""
    return {v: k for k, v in DTYPES.items()}[dtype]


def device_kind() -> str:
    """'cuda' when a CUDA GPU is visible, else 'cpu'."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_name() -> str:
    """Human-readable name of the device training runs on."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# /proc/cpuinfo flags of CPUs that execute bf16 matmuls natively (AVX-512 BF16, AMX).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
FP16_ON_CPU = ("fp16 on CPU is a silent no-op in the Trainer (no autocast, fp32 results); "
               "use --precision bf16 or fp32 (or auto)")


@functools.lru_cache(maxsize=None)
def read_cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_description() -> dict:
    """CPU model, its native-bf16 flags and torch's threads, for benchmark records."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    flags = read_cpu_flags()
    return {"cpu_model": model or platform.processor() or platform.machine(),
            "bf16_flags": sorted(flags & NATIVE_BF16_FLAGS), "avx512f": "avx512f" in flags,
            "torch_threads": torch.get_num_threads()}


def bf16_support(capability: tuple[int, int] | None = None, cuda: bool | None = None,
                 cpu_flags: frozenset[str] | set[str] | None = None) -> tuple[bool, str]:
    """(whether this device runs bf16 natively, the device in those terms: `CPU without avx512_bf16/amx_bf16`)."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda:
        major, minor = capability if capability is not None else torch.cuda.get_device_capability(0)
        return major >= 8, f"compute capability {major}.{minor}"
    flags = read_cpu_flags() if cpu_flags is None else frozenset(cpu_flags)
    found = sorted(flags & NATIVE_BF16_FLAGS)
    return bool(found), (f"CPU with {', '.join(found)}" if found else "CPU without avx512_bf16/amx_bf16")


def choose_precision(requested: str = "auto", capability: tuple[int, int] | None = None, cuda: bool | None = None,
                     cpu_flags: frozenset[str] | set[str] | None = None) -> Precision:
    """Resolve a requested precision (auto, fp32, bf16, fp16) for this device, with the reason.

    auto: on CUDA bf16 at compute capability >= 8.0, fp16 below (a T4); on CPU bf16 where the CPU
    executes it natively (flags avx512_bf16 or amx_bf16), else fp32. `torch.cuda.is_bf16_supported()`
    answers True on a T4 (7.5) through emulation, so the decision is made from the capability.
    Raises UserError for an unknown name and for fp16 on CPU (the Trainer would silently run fp32).
    """
    if requested not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    cuda = torch.cuda.is_available() if cuda is None else cuda
    native, where = bf16_support(capability, cuda, cpu_flags)
    if requested == "fp32":
        return Precision("fp32", f"fp32 requested ({where})")
    if requested == "fp16":
        if not cuda:
            raise UserError(FP16_ON_CPU)
        return Precision("fp16", f"fp16 requested ({where})")
    if requested == "bf16":
        if native:
            return Precision("bf16", f"bf16 requested; {where} runs bf16 natively")
        return Precision("bf16", f"bf16 requested; {where} has no native bf16: emulated, likely slower than fp32")
    if native:
        return Precision("bf16", f"auto: {where} runs bf16 natively" + (" (>= 8.0)" if cuda else ""))
    if cuda:
        return Precision("fp16", f"auto: {where} < 8.0: fp16 tensor cores, no native bf16")
    return Precision("fp32", f"auto: {where}: bf16 would be emulated (slower) and fp16 is a no-op on CPU")


def native_precisions(cpu_flags: frozenset[str] | set[str] | None = None, cuda: bool | None = None,
                      capability: tuple[int, int] | None = None) -> frozenset[str]:
    """The precisions this machine runs natively: fp32 always; bf16 where `auto` would pick it; fp16 on CUDA."""
    chosen = choose_precision("auto", capability=capability, cuda=cuda, cpu_flags=cpu_flags)
    cuda = torch.cuda.is_available() if cuda is None else cuda
    return frozenset({"fp32", chosen.name} | ({"fp16"} if cuda else set()))


def cpu_kind_text(cpu: dict | None) -> str:
    """A CPU as records hold it (cpu_description), in words: `AMD EPYC with avx512_bf16`."""
    if not cpu:
        return "a CPU not recorded"
    flags = cpu.get("bf16_flags") or []
    native = f"with {', '.join(flags)}" if flags else "without native bf16" + ("" if cpu.get("avx512f") else
                                                                                 " (no AVX-512)")
    return f"{cpu.get('cpu_model') or 'CPU'} {native}"


def run_precision(requested: str = "auto", cpu_bf16: bool = True, method: str = "") -> Precision:
    """The precision a run trains in, with its reason: `requested` resolved for this machine and the method.

    `auto` on a CPU with native bf16 keeps fp32 for a method whose bf16 was not shown equivalent to fp32
    (cpu_bf16=False). `fast` is what `auto` picks for the hardware alone, whatever the method's CPU default
    (the precision ablation's arm).
    """
    if requested == "fast":
        chosen = choose_precision("auto")
        if not cpu_bf16 and chosen.bf16 and not torch.cuda.is_available():
            return Precision("bf16", f"{chosen.reason} ({method}'s fp32 CPU default set aside: the hardware's fast "
                                     "precision was asked for)")
        return chosen
    chosen = choose_precision(requested)
    if requested == "auto" and chosen.bf16 and not cpu_bf16 and not torch.cuda.is_available():
        return Precision("fp32", f"{chosen.reason}, but {method} keeps fp32 on CPU (its bf16 was not shown "
                                 "equivalent to fp32: registry cpu_bf16=False)")
    return chosen


def resolve_precision(requested: str = "auto", cpu_bf16: bool = True) -> str:
    """The concrete precision name (fp32, bf16 or fp16) a request resolves to on this machine."""
    return run_precision(requested, cpu_bf16).name


def trainer_precision_args(precision_name: str, cuda: bool) -> dict:
    """TrainingArguments kwargs for a resolved precision: bf16/fp16 flags and use_cpu (bf16 on CPU needs it)."""
    if precision_name not in DTYPES:
        raise UserError(f"resolved precision must be fp32, bf16 or fp16, got {precision_name!r}")
    if precision_name == "fp16" and not cuda:
        raise UserError(FP16_ON_CPU)
    return {"bf16": precision_name == "bf16", "fp16": precision_name == "fp16", "use_cpu": not cuda}


@functools.lru_cache(maxsize=None)
def fused_optimizer() -> str:
    """'adamw_torch_fused' where torch's fused AdamW steps on this device, else 'adamw_torch' (never left implicit).

    transformers >= 5 already defaults to the fused optimizer on torch >= 2.8 whether or not the
    device supports it, so the fallback is named explicitly rather than left to the Trainer's default.
    """
    device = device_kind()
    try:
        weight = torch.zeros(4, device=device, requires_grad=True)
        weight.grad = torch.ones_like(weight)
        torch.optim.AdamW([weight], lr=0.1, fused=True).step()
        if not bool((weight < 0).all()):
            return "adamw_torch"
    except (RuntimeError, TypeError, ValueError):
        return "adamw_torch"
    return "adamw_torch_fused"


def qlora_compute_dtype(precision_name: str, cuda: bool) -> tuple[torch.dtype, str]:
    """Compute dtype of QLoRA's 4-bit layers under a resolved precision, with the reason; fp32 where bf16 fails."""
    if precision_name == "fp32":
        return torch.float32, "fp32 run: 4-bit layers compute in fp32"
    if cuda:
        return DTYPES[precision_name], f"{precision_name} run on CUDA: 4-bit layers compute in {precision_name}"
    if precision_name != "bf16":
        raise UserError(FP16_ON_CPU)
    ok, reason = _nf4_bf16_on_cpu()
    return (torch.bfloat16 if ok else torch.float32), reason


@functools.lru_cache(maxsize=None)
def _nf4_bf16_on_cpu() -> tuple[bool, str]:
    """Whether an NF4 layer with bf16 compute runs forward+backward on CPU and matches fp32 compute."""
    try:
        import bitsandbytes as bnb

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            dense = torch.nn.Linear(128, 64)
            x = torch.randn(8, 128)
            outputs = {}
            for dtype in (torch.float32, torch.bfloat16):
                layer = bnb.nn.Linear4bit(128, 64, compute_dtype=dtype, quant_type="nf4")
                layer.load_state_dict(dense.state_dict())
                layer = layer.to("cpu")
                inputs = x.clone().requires_grad_(True)
                out = layer(inputs)
                out.float().square().mean().backward()
                outputs[dtype] = (out.detach().float(), inputs.grad.float())
    except Exception as exc:  # bitsandbytes missing, or a kernel that fails here
        first = first_line(exc)
        return False, f"NF4 with bf16 compute fails on this CPU ({first}): 4-bit layers compute in fp32"
    (ref, ref_grad), (out, grad) = outputs[torch.float32], outputs[torch.bfloat16]
    error = max(float((out - ref).abs().max() / ref.abs().max()),
                float((grad - ref_grad).abs().max() / ref_grad.abs().max()))
    if error > BF16_TOLERANCE:
        return False, f"NF4 bf16 compute differs from fp32 by {error:.2g} on this CPU: 4-bit layers compute in fp32"
    return True, (f"bitsandbytes {bnb.__version__} NF4 with bf16 compute matches fp32 on this CPU "
                  f"(max relative difference {error:.1g}, forward and backward)")


BF16_TOLERANCE = 3e-2  # relative to the largest value: bf16 keeps 8 bits (~4e-3), summed over 128 products


@functools.lru_cache(maxsize=None)
def nf4_support() -> tuple[bool, str]:
    """Whether a 4-bit NF4 model can be loaded and run here, and why not if not.

    Two conditions: bitsandbytes quantizes to NF4 and runs a 4-bit matmul on this device, and the
    installed transformers accepts that bitsandbytes on this device (transformers < 4.53 cannot
    load 4-bit models on CPU; transformers 5 refuses bitsandbytes < 0.46.1). Where either fails,
    QLoRA runs are recorded `skipped` with this reason, not `failed`.
    """
    from .compat import nf4_version_problem

    try:
        import bitsandbytes as bnb
    except Exception as exc:  # not installed, or a build that fails on import
        return False, f"bitsandbytes is not importable ({type(exc).__name__}: {exc}); pip install bitsandbytes"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    problem = nf4_version_problem(device)
    if problem:
        return False, problem
    try:
        # fork_rng: the probe's random init must not shift the seeded run that first calls it.
        with torch.random.fork_rng(devices=[]):
            layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4")
            layer.to(device)(torch.ones(2, 64, device=device))
    except Exception as exc:
        first = first_line(exc)
        return False, f"bitsandbytes {bnb.__version__} cannot run NF4 on {device}: {first}"
    return True, f"bitsandbytes {bnb.__version__} runs NF4 on {device}"
