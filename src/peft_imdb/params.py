"""Parameters and weight memory: counted on the trained model, and predicted by each method's formula."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from .config import RunConfig
from .models import model_type
from .results import RunResult

ALL_PARAMETERS = "all parameters of the trained model"
# Storage of the frozen base weights under QLoRA: 4-bit NF4 codes, one 8-bit absmax per block of 64
# (double quantization) and one fp32 constant per 256 of those blocks: 4 + 8/64 + 32/(64*256) bits.
NF4_BITS_PER_WEIGHT = 4 + 8 / 64 + 32 / (64 * 256)


@dataclass
class ParamCounts:
    """Trainable parameters split into adapter and head, and the model's true total."""

    adapter: int
    head: int
    trainable: int
    total: int


def count_parameters(model, head_names: list[str]) -> ParamCounts:
    """Count parameters correctly for 4-bit models (peft's count doubles packed NF4 weights)."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, counted = model.get_nb_trainable_parameters()
        head = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "modules_to_save" in n)
        # modules_to_save keeps the original head beside its trainable copy: count the head once.
        return ParamCounts(adapter=trainable - head, head=head, trainable=trainable, total=counted - head)
    total = sum(p.numel() for p in model.parameters())
    head = sum(p.numel() for n, p in model.named_parameters() if set(n.split(".")[:-1]) & set(head_names))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ParamCounts(adapter=0, head=head, trainable=trainable, total=total)


def weights_mb(model) -> dict[str, float]:
    """Bytes held by the model's tensors, in MB: `frozen` (base weights, packed for 4-bit) and `trainable`."""
    frozen = trainable = 0
    for parameter in model.parameters():
        size = parameter.numel() * parameter.element_size()  # Params4bit: packed uint8, the real bytes
        if parameter.requires_grad:
            trainable += size
        else:
            frozen += size
    frozen += sum(b.numel() * b.element_size() for b in model.buffers())
    return {"frozen": frozen / 2**20, "trainable": trainable / 2**20}


def meta_model(config: RunConfig, wrapped: bool = True):
    """The run's model with no weights (on the meta device), wrapped by peft as the method says: enough to count."""
    import copy

    from peft import get_peft_model

    from .methods import get_method
    from .models import load_config, meta_model as build_on_meta
    from .resolved import resolve

    device = get_method(config.method).count_device if wrapped else "meta"
    model = build_on_meta(load_config(config.model, config.trust_remote_code), device)
    peft_config = resolve(config).peft_config if wrapped else None
    return model if peft_config is None else get_peft_model(model, copy.deepcopy(peft_config))


def adapted_layers(model) -> dict[str, object]:
    """The layers peft wrapped (name without peft's prefix -> the original linear layer)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return {name.removeprefix("base_model.model."): module.get_base_layer()
            for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)}


def head_parameters(model) -> dict[str, int]:
    """The head modules peft trains in full (modules_to_save), with their parameter counts."""
    from peft.utils import ModulesToSaveWrapper

    return {name.removeprefix("base_model.model."): sum(p.numel() for p in module.original_module.parameters())
            for name, module in model.named_modules() if isinstance(module, ModulesToSaveWrapper)}


def _part_of(name: str, base_prefix: str) -> tuple[str, int | None]:
    """Group a parameter name: 'bert.encoder.layer.*' (with its layer index), 'bert.embeddings', 'classifier'."""
    match = re.match(r"(.*?)\.(\d+)\.", name)
    if match:
        return f"{match.group(1)}.*", int(match.group(2))
    parts = name.split(".")
    return ".".join(parts[:2] if parts[0] == base_prefix else parts[:1]), None


def expected_parameters(config: RunConfig) -> pd.DataFrame:
    """Trainable parameters by the method's formula, layer group by layer group, before any run.

    peft wraps the model on the meta device (no weights), so the adapted layers are the ones peft itself
    matches; the registry entry's formula gives each layer's count (LoRA r·(d_in + d_out), IA3 one vector).
    Full fine-tuning trains every parameter; PEFT methods also train the classification head in full.
    """
    from .methods import get_method

    method = get_method(config.method)
    model = meta_model(config)
    rows = []
    frozen_added = 0  # parameters adapters add but do not train (AdaLoRA's rank counters)
    if method.layer_count is None and method.part_count is None:
        parts: dict[str, list] = defaultdict(lambda: [set(), 0])
        for name, parameter in model.named_parameters():
            part, layer = _part_of(name, model.base_model_prefix)
            parts[part][0].add(layer)
            parts[part][1] += parameter.numel()
        for part, (layers, count) in parts.items():
            layers.discard(None)
            formula = f"{len(layers)} × {count // len(layers):,}" if layers else "every weight and bias"
            rows.append({"part": part, "layers": len(layers) or "", "formula": formula, "params": count})
        base_params = sum(p.numel() for p in model.parameters())
    else:
        peft_config = model.peft_config["default"] if hasattr(model, "peft_config") else None
        groups: dict[tuple, int] = defaultdict(int)
        for name, layer in adapted_layers(model).items() if method.layer_count is not None else ():
            count = method.layer_count(layer, name, peft_config)
            groups[(re.sub(r"\.\d+\.", ".*.", name), count.formula, count.params, count.frozen)] += 1
        for (pattern, formula, size, frozen), layers in groups.items():
            rows.append({"part": f"adapter on {pattern}", "layers": layers, "formula": f"{layers} × {formula}",
                         "params": layers * size})
            frozen_added += layers * frozen
        # What the method trains outside adapted linear layers (a soft prompt; BitFit's biases and head).
        architecture = model_type(config.model, config.trust_remote_code)
        for part in method.part_count(model, architecture) if method.part_count else ():
            rows.append({"part": part.part, "layers": part.layers, "formula": part.formula, "params": part.params})
        for head, count in head_parameters(model).items():
            rows.append({"part": f"head: {head}", "layers": "", "formula": "trained in full", "params": count})
        base_params = sum(p.numel() for p in meta_model(config, wrapped=False).parameters())
    total = sum(row["params"] for row in rows)
    rows.append({"part": "trainable (total)", "layers": "", "formula": "", "params": total})
    adapters = sum(row["params"] for row in rows if row["part"].startswith("adapter on"))
    all_params = base_params + adapters + frozen_added
    rows.append({"part": ALL_PARAMETERS, "layers": "", "params": all_params,
                 "formula": "the pretrained model and the head" + (" + the adapters" if adapters else "")})
    frame = pd.DataFrame(rows).set_index("part")
    frame["share of the model"] = (frame["params"] / all_params).map(lambda x: f"{x:.3%}")
    return frame


def compare_parameters(expected: pd.DataFrame, row: RunResult) -> pd.DataFrame:
    """The formula's trainable count against the count measured in the run, and whether they agree."""
    heads = [part for part in expected.index if part.startswith("head:")]
    pairs = {"trainable": (int(expected.loc["trainable (total)", "params"]), row.trainable_params)}
    if heads:  # PEFT methods: the head is trained in full beside the adapters
        pairs["of which the head"] = (int(expected.loc[heads, "params"].sum()), row.head_params)
    pairs["all parameters"] = (int(expected.loc[ALL_PARAMETERS, "params"]), row.total_params)
    table = pd.DataFrame.from_dict(pairs, orient="index", columns=["formula", "measured in the run"])
    if row.trainable_params is None:
        table["measured in the run"] = ""
        table["agrees"] = f"not measured: the run is {row.status} ({row.reason})"
    else:
        table["agrees"] = table["formula"] == table["measured in the run"]
    return table


def weight_memory(config: RunConfig) -> pd.DataFrame:
    """Estimated size of the model's weights in fp32, in 16 bit, and as QLoRA stores them (NF4 linears).

    QLoRA quantizes the weight matrices of the linear layers outside the head; embeddings, norms,
    biases and the head stay in their load dtype (fp32 here). Weights only: activations, gradients
    and optimizer state are not in this table.
    """
    import torch

    from .targets import head_modules

    model = meta_model(config, wrapped=False)
    heads = head_modules(model_type(config.model, config.trust_remote_code))
    quantized = sum(m.weight.numel() for n, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and not set(n.split(".")) & set(heads))
    total = sum(p.numel() for p in model.parameters())
    rest = total - quantized
    mb = 2**20
    rows = {
        "fp32 (all weights)": {"MB": total * 4 / mb, "bits per weight": 32.0},
        "fp16 / bf16 (all weights)": {"MB": total * 2 / mb, "bits per weight": 16.0},
        "QLoRA: linear weights in NF4, the rest fp32": {
            "MB": (quantized * NF4_BITS_PER_WEIGHT / 8 + rest * 4) / mb,
            "bits per weight": (quantized * NF4_BITS_PER_WEIGHT + rest * 32) / total,
        },
    }
    frame = pd.DataFrame(rows).T.round(1).rename_axis("weights stored as")
    frame["note"] = ["", "", f"{quantized:,} of {total:,} parameters ({quantized / total:.0%}) are in quantized "
                             "linear layers; embeddings, norms, biases and the head are not"]
    return frame
