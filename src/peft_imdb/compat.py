"""Differences between the transformers versions students have (4.x on older Colab images, 5.x here)."""

from __future__ import annotations

import inspect


def warmup_kwargs(ratio: float) -> dict:
    """transformers 5 takes a ratio as a float `warmup_steps`; 4.x (Colab) has `warmup_ratio`."""
    from transformers import TrainingArguments

    if "warmup_ratio" in inspect.signature(TrainingArguments.__init__).parameters:
        return {"warmup_ratio": ratio}
    return {"warmup_steps": ratio}


def length_grouping_kwargs(on: bool) -> dict:
    """transformers 5 takes `train_sampling_strategy`; 4.x (Colab) has `group_by_length`."""
    from transformers import TrainingArguments

    if "train_sampling_strategy" in inspect.signature(TrainingArguments.__init__).parameters:
        return {"train_sampling_strategy": "group_by_length" if on else "random"}
    return {"group_by_length": on}


def enable_checkpointing(model) -> None:
    """Recompute activations in the backward pass: `activation_checkpointing_enable` (transformers 5), else
    the 4.x name `gradient_checkpointing_enable` (which 5.x deprecated)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
