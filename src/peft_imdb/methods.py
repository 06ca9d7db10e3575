"""The four methods as model builders: full, lora, qlora (4-bit NF4 + LoRA) and ia3."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import RunConfig
from .errors import Unsupported, UserError
from .hardware import Precision, nf4_support
from .models import load_config, load_model

# LoRA targets per architecture (config.model_type). peft has presets for most, but none for
# DistilBERT; writing them all out keeps the choice visible and the same across peft versions.
LORA_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "deberta-v2": ["query_proj", "value_proj"],
    "gpt_neo": ["q_proj", "v_proj"],
    "gpt2": ["c_attn"],
}
# Attention plus feed-forward: the placement the reference ablation found better than more rank.
LORA_TARGETS_ATTN_FFN: dict[str, list[str]] = {
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj", "dense"],
    "gpt_neo": ["q_proj", "k_proj", "v_proj", "out_proj", "c_fc", "c_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}
# IA3 rescales keys, values and the feed-forward output: (targets, feed-forward subset).
IA3_TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "bert": (["key", "value", "output.dense"], ["output.dense"]),
    "roberta": (["key", "value", "output.dense"], ["output.dense"]),
    "distilbert": (["k_lin", "v_lin", "lin2"], ["lin2"]),
    "deberta-v2": (["key_proj", "value_proj", "output.dense"], ["output.dense"]),
    "gpt_neo": (["k_proj", "v_proj", "c_proj"], ["c_proj"]),
    "gpt2": (["c_attn", "mlp.c_proj"], ["mlp.c_proj"]),
}
# The classification head, trained (and saved with the adapter) by every PEFT method and never
# quantized. BERT and DeBERTa classify from a pooler layer that belongs to the head: peft's docs
# advise training it; DistilBERT's pre_classifier is matched by the "classifier" suffix.
HEAD_MODULES: dict[str, list[str]] = {
    "bert": ["classifier", "pooler"],
    "deberta-v2": ["classifier", "pooler"],
    "distilbert": ["pre_classifier", "classifier"],
    "roberta": ["classifier"],
    "gpt_neo": ["score"],
    "gpt2": ["score"],
}
DEFAULT_HEAD = ["classifier", "score"]


@dataclass
class MethodInfo:
    """What a builder did to the model: bits of the frozen base weights, targets, head modules."""

    base_weight_bits: int
    target_modules: list[str] = field(default_factory=list)
    head_modules: list[str] = field(default_factory=list)
    gradient_checkpointing: bool = False


def _model_type(model) -> str:
    return model.config.model_type


def _targets(config: RunConfig, model_type: str, table: dict) -> list[str]:
    if config.target_modules:
        return list(config.target_modules)
    if model_type not in table:
        raise UserError(
            f"no {config.method} target preset for architecture {model_type!r}; "
            "pass --target-modules with the names of its linear layers"
        )
    return list(table[model_type])


def head_modules(model_type: str) -> list[str]:
    """Names of the classification-head modules of an architecture."""
    return list(HEAD_MODULES.get(model_type, DEFAULT_HEAD))


def lora_config(config: RunConfig, model_type: str):
    """LoRA on the architecture's preset targets (or config.target_modules), head trainable."""
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=_targets(config, model_type, LORA_TARGETS),
        modules_to_save=head_modules(model_type),
    )


def ia3_config(config: RunConfig, model_type: str):
    """IA3 on keys, values and the feed-forward output, head trainable."""
    from peft import IA3Config, TaskType

    if config.target_modules:
        targets = list(config.target_modules)
        preset_feedforward = IA3_TARGETS.get(model_type, ([], []))[1]
        feedforward = [t for t in targets if t in preset_feedforward]
    else:
        if model_type not in IA3_TARGETS:
            raise UserError(f"no ia3 target preset for architecture {model_type!r}; pass --target-modules")
        targets, feedforward = (list(x) for x in IA3_TARGETS[model_type])
    return IA3Config(
        task_type=TaskType.SEQ_CLS,
        target_modules=targets,
        feedforward_modules=feedforward,
        modules_to_save=head_modules(model_type),
    )


def nf4_config(precision: Precision, skip_modules: list[str], compute_dtype: str | None = None):
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


def build_model(config: RunConfig, tokenizer, precision: Precision):
    """Load the model for config.model and wrap it for config.method; return (model, MethodInfo)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    trust = config.trust_remote_code
    if config.method == "qlora":
        ok, reason = nf4_support()
        if not ok:
            raise Unsupported(reason)
        model_type = load_config(config.model, trust).model_type
        heads = head_modules(model_type)
        model = load_model(config.model, tokenizer, nf4_config(precision, heads, config.qlora_compute_dtype), trust)
        # Casts norms to fp32 and turns gradient checkpointing on, as the QLoRA recipe does.
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False}
        )
        model = get_peft_model(model, lora_config(config, model_type))
        return model, MethodInfo(4, sorted(model.peft_config["default"].target_modules), heads, True)

    model = load_model(config.model, tokenizer, trust_remote_code=trust)
    model_type = _model_type(model)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.method == "full":
        return model, MethodInfo(32, [], head_modules(model_type), config.gradient_checkpointing)
    peft_cfg = lora_config(config, model_type) if config.method == "lora" else ia3_config(config, model_type)
    if config.gradient_checkpointing:
        model.enable_input_require_grads()
    model = get_peft_model(model, peft_cfg)
    targets = sorted(model.peft_config["default"].target_modules)
    return model, MethodInfo(32, targets, head_modules(model_type), config.gradient_checkpointing)


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
    return model.merge_and_unload()
