"""The ablations of the reference study, each a list of runs: LoRA rank, adapter placement, learning rate.

`python -m peft_imdb ablation rank|targets|lr` runs one into results/ablations/<name>/; a run that the
main study already holds (same run key) is copied from there instead of being trained again (plan.py).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .config import RunConfig, model_type
from .errors import UserError
from .targets import IA3_TARGETS, LORA_TARGETS_ATTN_FFN

RANKS = (2, 4, 8, 16, 32)
LR_FACTORS = (1 / 3, 1.0, 3.0)  # around each method's default learning rate
# Each ablation and the column of its summary table that holds the varied value.
ABLATIONS = {"rank": "lora_r", "targets": "placement", "lr": "lr"}


def _rank(config: RunConfig, r: int) -> RunConfig:
    return replace(config, adapter={**config.adapter, "r": r, "lora_alpha": 2 * r})


def ablation_configs(name: str, base: dict[str, RunConfig]) -> list[RunConfig]:
    """The runs of ablation `name`, built from the default config of each method (`base[method]`)."""
    if name not in ABLATIONS:
        raise UserError(f"unknown ablation {name!r}; use one of {', '.join(ABLATIONS)}")
    if name == "rank":
        return [_rank(base["lora"], r) for r in RANKS]
    if name == "lr":
        # Factor 1 is the method's default config itself (lr unset), so the main study's run is reused.
        return [replace(config, lr=float(f"{config.learning_rate * f:.3g}")) if f != 1 else config
                for config in base.values() for f in LR_FACTORS]
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


def ablation_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where ablation `name` keeps its runs: <results>/ablations/<name>."""
    from .results import results_dir

    return results_dir(root) / "ablations" / name
