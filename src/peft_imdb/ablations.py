"""The ablations, each a list of runs and a reference: LoRA rank, adapter placement, training precision.

The learning-rate ablation is the validation sweep (`python -m peft_imdb sweep`, sweep.py): learning rates are
chosen there, on validation reviews, never on the test set. `python -m peft_imdb ablation rank|targets|precision`
runs one into results/ablations/<name>/; a run that the
main study already holds (same run key) is copied from there instead of being trained again (plan.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import pandas as pd

from .config import RunConfig, model_type
from .errors import UserError
from .targets import IA3_TARGETS, LORA_TARGETS_ATTN_FFN

RANKS = (2, 8, 32)  # LoRA rank around the default 8 (alpha = 2r)


def _rank(config: RunConfig, r: int) -> RunConfig:
    return replace(config, adapter={**config.adapter, "r": r, "lora_alpha": 2 * r})


def _ranks(base: dict[str, RunConfig]) -> list[RunConfig]:
    return [_rank(base["lora"], r) for r in RANKS]


def _placements(base: dict[str, RunConfig]) -> list[RunConfig]:
    lora, ia3 = base["lora"], base["ia3"]
    architecture = model_type(lora.model, lora.trust_remote_code)
    if architecture not in LORA_TARGETS_ATTN_FFN or architecture not in IA3_TARGETS:
        raise UserError(f"no target presets for architecture {architecture!r}; the targets ablation needs one")
    preset, feedforward = IA3_TARGETS[architecture]
    return [
        lora,  # query + value
        replace(lora, adapter={**lora.adapter, "target_modules": list(LORA_TARGETS_ATTN_FFN[architecture])}),
        replace(ia3, adapter={**ia3.adapter, "target_modules": [t for t in preset if t not in feedforward]}),
        ia3,  # keys, values and the output projections
    ]


def _precisions(base: dict[str, RunConfig]) -> list[RunConfig]:
    # Each method in the precision this hardware runs fastest (auto, whatever the method's default) and in
    # fp32; one run where the two are the same.
    from .hardware import resolve_precision

    arms = dict.fromkeys([resolve_precision("auto"), "fp32"])
    return [replace(config, precision=precision) for config in base.values() for precision in arms]


def _at_defaults(rows: pd.DataFrame) -> pd.Series:
    """The row of each method at its defaults (its label is the method's name alone)."""
    return rows["label"] == rows["method"]


def _in_fp32(rows: pd.DataFrame) -> pd.Series:
    return rows["precision_mode"] == "fp32"


@dataclass(frozen=True)
class Ablation:
    """One ablation: its runs, the summary column that holds what it varies, and each method's reference row."""

    column: str  # the summary column with the varied setting
    configs: Callable[[dict[str, RunConfig]], list[RunConfig]]  # {method: default config} -> the runs
    reference: Callable[[pd.DataFrame], pd.Series]  # rows of one method -> the row the others are compared with
    question: str  # what it answers, for the summary


ABLATIONS: dict[str, Ablation] = {
    "rank": Ablation("lora_r", _ranks, _at_defaults, "LoRA rank 2, 8 (the default) and 32, alpha = 2r: "
                     "differences to rank 8."),
    "targets": Ablation("placement", _placements, _at_defaults, "Adapter placement, attention only against "
                        "attention + feed-forward, for LoRA and IA3: differences to each method's default placement."),
    "precision": Ablation("precision_mode", _precisions, _in_fp32, "Each method in the precision `auto` "
                          "picks on this hardware against fp32: differences to fp32. bf16 stays a method's "
                          "CPU default only where it is *equivalent* (registry field `cpu_bf16`)."),
}


def ablation_configs(name: str, base: dict[str, RunConfig]) -> list[RunConfig]:
    """The runs of ablation `name`, built from the default config of each method (`base[method]`)."""
    if name not in ABLATIONS:
        raise UserError(f"unknown ablation {name!r}; use one of {', '.join(ABLATIONS)}")
    return ABLATIONS[name].configs(base)


def ablation_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where ablation `name` keeps its runs: <results>/ablations/<name>."""
    from .results import results_dir

    return results_dir(root) / "ablations" / name
