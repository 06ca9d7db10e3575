"""Version shims: what differs between the oldest supported stack and the newest one.

The supported ranges live in pyproject.toml; `make test-oldest` runs the fast tests on their lower
bounds (constraints-oldest.txt). Everything that has to look at a library's version, or at the
signature of one of its classes, lives here, so that the rest of the package reads the same on
transformers 4.x (Colab) and 5.x (the pinned CPU install).
"""

from __future__ import annotations

import inspect
import logging
import warnings
from importlib import metadata

from packaging.version import Version

# transformers >= 4.53 runs NF4 4-bit layers on CPU; older versions refuse to quantize without CUDA.
NF4_CPU_TRANSFORMERS = "4.53"
# transformers 5 refuses 4-bit loading with bitsandbytes older than this (on GPU too).
NF4_BNB_FOR_TRANSFORMERS_5 = "0.46.1"


def silence_bitsandbytes_import_warning() -> None:
    """Keep bitsandbytes' import-time CPU warnings off stderr; they are not errors.

    bitsandbytes logs a warning when it is imported on a CPU-only machine (0.46-0.47: no GPU
    support / "The installed version of bitsandbytes was compiled without GPU support"; 0.48+: an
    optional hub kernel is missing). It falls back by itself and NF4 still works on CPU, but the
    warning reaches stderr through transformers -> peft and breaks the CLI's one-line error
    messages. Only those loggers are raised to ERROR: real errors still print.
    """
    for name in ("bitsandbytes.cextension", "bitsandbytes.backends.cpu.ops"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # bitsandbytes < 0.48 on torch >= 2.9: every first NF4 op warns that torch._check_is_size will be
    # removed (a FutureWarning about bitsandbytes' own code, nothing a user can act on).
    warnings.filterwarnings("ignore", message="_check_is_size will be removed", category=FutureWarning,
                            module="bitsandbytes")


# Logged by the `kernels` package (which bitsandbytes asks for its CPU NF4 kernel at import) only when the Hugging
# Face Hub is in offline mode: (logger, the message's start). Nothing a user of an offline run can act on.
OFFLINE_HUB_CHATTER = (("kernels._internals.hf_hub", "Skipping publisher trust check for "),)


class _DropMessages(logging.Filter):
    """A logging filter that drops the records whose message starts with one of `starts`."""

    def __init__(self, starts: tuple[str, ...]):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def silence_offline_hub_chatter() -> None:
    """Drop the offline-only notices of the hub kernel lookup (OFFLINE_HUB_CHATTER) at their loggers.

    Each is logged only when HF_HUB_OFFLINE is set (`kernels` skips the publisher trust check it cannot make
    offline), so online runs are untouched; every other record of those loggers still prints.
    """
    for name, start in OFFLINE_HUB_CHATTER:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) and start in f.starts for f in logger.filters):
            logger.addFilter(_DropMessages((start,)))


def version(package: str) -> str | None:
    """The installed version of `package`, or None when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def at_least(installed: str | None, needed: str) -> bool:
    """Whether version `installed` is `needed` or newer (False when not installed).

    Pre-releases count as their release ("5.0.0rc1" is at least "5.0"): they carry its API.
    """
    if installed is None:
        return False
    return Version(installed).release >= Version(needed).release


def nf4_version_problem(device: str, transformers: str | None = None, bitsandbytes: str | None = None) -> str | None:
    """Why transformers will not load a 4-bit NF4 model on `device` with the installed versions, or None.

    The versions default to the installed ones; pass them to ask about another stack.
    """
    transformers = transformers if transformers is not None else version("transformers")
    bitsandbytes = bitsandbytes if bitsandbytes is not None else version("bitsandbytes")
    if transformers is None:
        return "transformers is not installed"
    if device == "cpu" and not at_least(transformers, NF4_CPU_TRANSFORMERS):
        return (f"transformers {transformers} cannot load 4-bit NF4 models on CPU "
                f"(needs transformers >= {NF4_CPU_TRANSFORMERS}); pip install -U transformers")
    if at_least(transformers, "5") and not at_least(bitsandbytes, NF4_BNB_FOR_TRANSFORMERS_5):
        return (f"transformers {transformers} refuses 4-bit loading with bitsandbytes {bitsandbytes} "
                f"(needs bitsandbytes >= {NF4_BNB_FOR_TRANSFORMERS_5}); pip install -U bitsandbytes")
    return None


def _training_arguments_parameters(arguments_class=None) -> set[str]:
    if arguments_class is None:
        from transformers import TrainingArguments as arguments_class
    return set(inspect.signature(arguments_class.__init__).parameters)


def warmup_kwargs(ratio: float, arguments_class=None) -> dict:
    """TrainingArguments keywords for a learning-rate warmup over `ratio` of the training steps.

    transformers 4.x takes `warmup_ratio`; transformers 5 removed it and takes the ratio as a float
    `warmup_steps` (a value below 1 is read as a fraction of the steps). `arguments_class` defaults
    to `transformers.TrainingArguments`; its signature decides, not a version number.
    """
    if "warmup_ratio" in _training_arguments_parameters(arguments_class):
        return {"warmup_ratio": ratio}
    return {"warmup_steps": ratio}


def length_grouping_kwargs(on: bool, arguments_class=None) -> dict:
    """TrainingArguments keywords that turn batching by length on or off.

    transformers 4.x takes `group_by_length=True/False`; transformers 5 replaced it with
    `train_sampling_strategy="group_by_length"` (or "random"). `arguments_class` defaults to
    `transformers.TrainingArguments`; its signature decides, not a version number.
    """
    if "train_sampling_strategy" in _training_arguments_parameters(arguments_class):
        return {"train_sampling_strategy": "group_by_length" if on else "random"}
    return {"group_by_length": on}


def drop_peft_config(model):
    """Remove the `peft_config` attribute that peft < 0.19 leaves on a model after `merge_and_unload()`.

    The merged model is a plain transformers model; without this, code that tells PEFT models
    apart by `hasattr(model, "peft_config")` mistakes it for one. Returns the model.
    """
    if hasattr(model, "peft_config"):
        try:
            delattr(model, "peft_config")
        except AttributeError:  # a class attribute or property, not the instance's own
            pass
    return model


def enable_checkpointing(model) -> None:
    """Recompute activations in the backward pass: `activation_checkpointing_enable` (transformers 5), else
    the 4.x name `gradient_checkpointing_enable` (which 5.x deprecated)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
