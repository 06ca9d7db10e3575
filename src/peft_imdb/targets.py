"""Which layers each method adapts, per architecture (config.model_type), and the classification head."""

from __future__ import annotations

# LoRA on attention: peft has presets for most architectures but none for DistilBERT; writing them
# out keeps the choice visible and the same across peft versions.
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
# IA3 rescales keys, values and `output.dense`-style layers: (targets, feed-forward subset). In BERT-like
# models `output.dense` matches both the feed-forward output and the attention output projection
# (`attention.output.dense`): the modules it really wraps are read from the model (params.py).
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
# Decoder classifiers read the label from the last non-padding token, which they find in the input ids: a
# method that feeds embeddings instead (prompt tuning) leaves them reading padding.
LAST_TOKEN_CLASSIFIERS = {"gpt2", "gpt_neo", "gptj", "gpt_neox", "llama", "mistral", "qwen2", "opt", "bloom"}


def head_modules(model_type: str) -> list[str]:
    """Names of the classification-head modules of an architecture."""
    return list(HEAD_MODULES.get(model_type, DEFAULT_HEAD))


def preset(table: dict[str, list[str]], model_type: str, method: str) -> list[str]:
    """The preset target list of an architecture; a clear error naming the fix when there is none."""
    from .errors import UserError

    if model_type not in table:
        raise UserError(f"no {method} target preset for architecture {model_type!r}; "
                        "pass --adapter target_modules=<names of its linear layers>")
    return list(table[model_type])


# Feed-forward layer names per architecture (as target_modules spell them): what makes a placement
# "attention + FFN". In BERT-like models `dense`/`output.dense` also match attention projections.
FEEDFORWARD: dict[str, set[str]] = {
    "bert": {"dense", "output.dense"},
    "roberta": {"dense", "output.dense"},
    "deberta-v2": {"dense", "output.dense"},
    "distilbert": {"lin1", "lin2"},
    "gpt_neo": {"c_fc", "c_proj"},
    "gpt2": {"c_fc", "c_proj", "mlp.c_proj"},
}


def placement(targets: list[str] | None, model_type: str) -> str:
    """'attention + FFN' when the targets include a feed-forward layer of the architecture, else 'attention'."""
    return "attention + FFN" if set(targets or []) & FEEDFORWARD.get(model_type, set()) else "attention"
