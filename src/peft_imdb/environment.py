"""What a run ran on: device, versions and the git commit of the code, recorded with every run."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any


def environment() -> dict[str, Any]:
    """Versions, device and git commit of this process, for the record."""
    from importlib.metadata import PackageNotFoundError, version

    from .hardware import cpu_description, device_name

    versions = {}
    for package in ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "device": device_name(),
        # CPU model and flags: fp32 kernels differ between AVX2 and AVX-512 machines (reproduce.same_stack).
        "cpu": {k: v for k, v in cpu_description().items() if k != "torch_threads"},
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": _git_commit(),
        "hostname": platform.node(),
        "run_process": _run_process(),
    }


def _run_process() -> str:
    """Where this ran: a run process forked by matrix's fork server, or the command's own process."""
    import multiprocessing

    return "forked (matrix)" if multiprocessing.parent_process() is not None else "command"


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
