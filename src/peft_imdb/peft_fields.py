"""A peft config as plain data: its fields, their class defaults, what differs from them, and typed --adapter values."""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from typing import Any

from .errors import UserError

# Fields of a peft config that describe where or how it is used, not what is trained.
RUNTIME_FIELDS = {"base_model_name_or_path", "revision", "inference_mode", "peft_version"}


def field_names(cls) -> set[str]:
    """The field names of a peft config class."""
    return {f.name for f in dataclasses.fields(cls)}


# peft config classes that refuse to be built from their defaults alone, and the value that lets them:
# AdaLoRA needs its schedule's length (any value gives the same defaults for every other field).
CLASS_DEFAULTS_NEED = {"AdaLoraConfig": {"total_step": 1}}


def class_defaults(cls):
    """An instance of a peft config class at its defaults (what identities and --adapter compare against)."""
    return cls(**CLASS_DEFAULTS_NEED.get(cls.__name__, {}))


def _plain(value: Any) -> Any:
    """A peft config value as plain JSON data: sets sorted, enums by value."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def plain_fields(peft_config) -> dict[str, Any]:
    """Every field of a peft config that says what is trained, as plain JSON data ({} for none)."""
    if peft_config is None:
        return {}
    return {k: _plain(v) for k, v in sorted(peft_config.to_dict().items()) if k not in RUNTIME_FIELDS}


def non_default_fields(peft_config) -> dict[str, Any]:
    """The fields of a peft config that differ from its class's defaults, as plain data (the run identity)."""
    if peft_config is None:
        return {}
    default = plain_fields(class_defaults(type(peft_config)))
    return {k: v for k, v in plain_fields(peft_config).items()
            if k not in default or json.dumps(v) != json.dumps(default[k])}


def typed_fields(cls, items: list[str]) -> dict[str, Any]:
    """`key=value` items typed by a peft config class's fields; UserError naming the valid ones when invalid."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    example = class_defaults(cls)
    adapter: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise UserError(f"--adapter takes key=value items (e.g. r=16), got {item!r}")
        if name not in known or name in RUNTIME_FIELDS | {"task_type", "peft_type"}:
            raise UserError(f"{cls.__name__} has no setting {name!r}; valid: "
                            f"{', '.join(sorted(set(known) - RUNTIME_FIELDS - {'task_type', 'peft_type'}))}")
        adapter[name] = _typed(name, text, str(known[name].type), getattr(example, name), cls.__name__)
    return adapter


def _typed(name: str, text: str, annotation: str, default: Any, where: str) -> Any:
    """Convert one --adapter value to the type its peft field holds."""
    try:
        if "list" in annotation or isinstance(default, (list, set)):
            return [part for part in text.split(",") if part]
        if isinstance(default, bool) or annotation.startswith("bool"):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(default, int) or annotation == "int":
            return int(text)
        if isinstance(default, float) or annotation == "float":
            return float(text)
    except ValueError:
        raise UserError(f"{where}.{name} expects {annotation}, got {text!r}") from None
    return text

