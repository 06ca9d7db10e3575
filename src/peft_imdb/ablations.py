"""The ablations of the reference study, each a list of runs: LoRA rank, adapter placement, learning rate.

`python -m peft_imdb ablation rank|targets|lr` runs one into results/ablations/<name>/; a run that the
main study already holds (same run key) is copied from there instead of being trained again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from .config import METHODS, RunConfig
from .errors import UserError
from .methods import IA3_TARGETS, LORA_TARGETS, LORA_TARGETS_ATTN_FFN

RANKS = (2, 4, 8, 16, 32)
LR_FACTORS = (1 / 3, 1.0, 3.0)  # around each method's default learning rate


@dataclass(frozen=True)
class Ablation:
    """One ablation: what it varies, and the column of a result row that holds the varied value."""

    name: str
    title: str
    varies: str


ABLATIONS = {
    "rank": Ablation("rank", "LoRA rank (alpha = 2 x rank, query+value)", "lora_r"),
    "targets": Ablation("targets", "Where the adapter goes: attention only vs attention + feed-forward", "placement"),
    "lr": Ablation("lr", "Learning-rate sensitivity per method (default x 1/3, 1, 3)", "lr"),
}


def _model_type(model: str, trust_remote_code: bool = False) -> str:
    from .models import load_config

    return load_config(model, trust_remote_code).model_type


def placement(method: str, model_type: str, targets: list[str] | None) -> str:
    """'attention' or 'attention + FFN' for a run's target modules (None: the method's preset)."""
    if method == "ia3":
        preset, feedforward = IA3_TARGETS.get(model_type, ([], []))
        chosen = targets or preset
        return "attention + FFN" if set(chosen) & set(feedforward) else "attention"
    chosen = sorted(targets or LORA_TARGETS.get(model_type, []))
    return "attention + FFN" if chosen == sorted(LORA_TARGETS_ATTN_FFN.get(model_type, [])) else "attention"


def ablation_configs(name: str, base: dict[str, RunConfig]) -> list[RunConfig]:
    """The runs of ablation `name`, built from the default config of each method (`base[method]`)."""
    if name not in ABLATIONS:
        raise UserError(f"unknown ablation {name!r}; use one of {', '.join(ABLATIONS)}")
    if name == "rank":
        lora = base["lora"]
        return [replace(lora, lora_r=r, lora_alpha=2 * r) for r in RANKS]
    if name == "lr":
        # Factor 1 is the method's default config itself (lr unset), so the main study's run is reused.
        return [replace(base[m], lr=float(f"{base[m].learning_rate * f:.3g}")) if f != 1 else base[m]
                for m in METHODS for f in LR_FACTORS]
    lora, ia3 = base["lora"], base["ia3"]
    model_type = _model_type(lora.model, lora.trust_remote_code)
    if model_type not in LORA_TARGETS_ATTN_FFN or model_type not in IA3_TARGETS:
        raise UserError(f"no target presets for architecture {model_type!r}; the targets ablation needs one")
    preset, feedforward = IA3_TARGETS[model_type]
    return [
        lora,  # query + value
        replace(lora, target_modules=list(LORA_TARGETS_ATTN_FFN[model_type])),
        replace(ia3, target_modules=[t for t in preset if t not in feedforward]),  # keys and values only
        ia3,  # keys, values and the feed-forward output
    ]


def ablation_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where ablation `name` keeps its runs: <results>/ablations/<name>."""
    from .results import results_dir

    return results_dir(root) / "ablations" / name


def reuse_study_runs(configs: list[RunConfig], root: str | os.PathLike | None = None,
                     folder: Path | None = None) -> list[str]:
    """Copy into the ablation folder the runs the main study already finished (same key); return their keys."""
    from .results import copy_run, has_ok_result, results_dir

    return [c.key() for c in configs if not has_ok_result(c.key(), folder) and copy_run(c.key(), results_dir(root), folder)]


def run_ablation(name: str, base: dict[str, RunConfig], root: str | os.PathLike | None = None,
                 retrain: bool = False) -> Path:
    """Run ablation `name` in this process (finished and study runs are reused unless retrain); return its folder."""
    from .results import has_ok_result
    from .train import run_and_record

    folder = ablation_folder(name, root)
    configs = ablation_configs(name, base)
    if not retrain:
        reuse_study_runs(configs, root, folder)
    for config in configs:
        if retrain or not has_ok_result(config.key(), folder):
            run_and_record(config, folder)
    return folder
