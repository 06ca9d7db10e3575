"""What this machine can do: device, training precision, and whether 4-bit NF4 works here."""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass

import torch


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


def device_kind() -> str:
    """'cuda' when a CUDA GPU is visible, else 'cpu'."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_name() -> str:
    """Human-readable name of the device training runs on."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def choose_precision(capability: tuple[int, int] | None = None, cuda: bool | None = None) -> Precision:
    """Pick bf16 at compute capability >= 8.0, fp16 below it, fp32 on CPU.

    `torch.cuda.is_bf16_supported()` answers True on a T4 (7.5) through emulation, so the
    decision is made from the capability, never from that call.
    """
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if not cuda:
        return Precision("fp32", "CPU: fp16=True is a silent no-op and bf16 is emulated (slower)")
    major, minor = capability if capability is not None else torch.cuda.get_device_capability(0)
    if major >= 8:
        return Precision("bf16", f"compute capability {major}.{minor} >= 8.0 has native bf16")
    return Precision("fp16", f"compute capability {major}.{minor} < 8.0: fp16 tensor cores, no native bf16")


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
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return False, f"bitsandbytes {bnb.__version__} cannot run NF4 on {device}: {first}"
    return True, f"bitsandbytes {bnb.__version__} runs NF4 on {device}"
