"""The store as a table: one DataFrame row per run, with its label, data setting and memory split (for reports)."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from .resolved import recipe_text, stored_label
from .targets import placement
from .results import PREDICTIONS_MISSING, RunResult, predictions_path, predictions_problem, read_results, warn_once

COLUMNS = [
    "key", "model", "method", "seed", "status", "reason", "accuracy", "f1", "precision", "recall",
    "trainable_params", "adapter_params", "head_params", "total_params", "trainable_percent",
    "train_time_s", "eval_time_s", "train_samples_per_s", "eval_samples_per_s", "peak_memory_mb",
    "peak_reserved_mb", "memory_kind", "base_weight_bits", "saved_mb", "precision_mode", "lr",
    "train_size", "eval_size", "epochs", "max_length", "device", "finished_at",
]


def load_results(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The store as a DataFrame, one row per run, with the COLUMNS first, its row label and group.

    `predictions` says what keeps a finished run's predictions from being used ('' when nothing does; a missing,
    unreadable or foreign file is named in a warning on stderr).
    """
    rows, labels = [], {}
    for record in read_results(root):
        row = record.to_dict()
        row["predictions"] = predictions_problem(record, root)
        if row["predictions"] == PREDICTIONS_MISSING:
            warn_once(f"{predictions_path(record.key, root)} is missing: run {record.key} keeps its row, without an "
                      "interval or a comparison (predictions missing: interval not computed)")
        config = row.pop("config") or {}
        row.pop("env", None)
        row["trainable_percent"] = record.trainable_percent
        row["device"] = record.env.get("device")
        row["versions"] = record.env.get("versions")
        for name in ("train_size", "eval_size", "epochs", "max_length", "truncation", "group_by_length"):
            row[name] = config.get(name)
        row["recipe"] = recipe_text(config)
        row["lora_r"] = _adapter_field(record, "r")
        row["model_type"] = record.model_type or _model_type_of(config)
        row["placement"] = placement(record.target_modules, row["model_type"]) if record.target_modules else ""
        row.update(memory_split(record))
        if record.group not in labels:  # records written before labels were stored: computed once per row group
            labels[record.group] = record.label or stored_label(config, record.method)
        row["label"] = labels[record.group]
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    return frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS]]


def by_store(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Tables of several stores as one, each row under its store's name (the first index level); empty ones left out."""
    shown = {name: table for name, table in tables.items() if not table.empty}
    if not shown:
        return next(iter(tables.values()), pd.DataFrame())
    return pd.concat(shown, names=["store", "row"])


def memory_split(record: RunResult) -> dict[str, float | None]:
    """Model-state memory computed from the model, and the working memory measured above the baseline (MB).

    Model state: frozen weights (4-bit packed for QLoRA) + trainable weights + their gradients + AdamW's two
    moments, all fp32 master copies (so 4x the trainable weights). Working memory: the training peak minus
    the memory held when training began (activations, temporaries, the allocator's slack); the runtime and
    the data loaded before training are in neither.
    """
    state = None
    if record.frozen_weights_mb is not None and record.trainable_weights_mb is not None:
        state = record.frozen_weights_mb + 4 * record.trainable_weights_mb
    working = None
    if record.peak_memory_mb is not None and record.train_start_memory_mb is not None:
        working = record.peak_memory_mb - record.train_start_memory_mb
    return {"model_state_mb": state, "working_memory_mb": working}


def _adapter_field(record: RunResult, name: str) -> Any:
    """A peft field of a stored run: from its identity, else its peft class's default; None without one."""
    from .methods import METHODS
    from .peft_fields import class_defaults

    adapter = record.identity.get("adapter") or {}
    if name in adapter:
        return adapter[name]
    method = METHODS.get(record.method)
    cls = method.peft_class() if method and not method.unavailable() else None
    return getattr(class_defaults(cls), name, None) if cls else None


def _model_type_of(config: dict[str, Any]) -> str | None:
    """The architecture of a stored config's model (records made before it was stored); None if not loadable."""
    from .models import model_type

    try:
        return model_type(config["model"], config.get("trust_remote_code", False))
    except Exception:  # a model folder of another machine
        return None
