"""Tiny randomly initialised classifiers of each architecture family, for tests and device checks."""

from __future__ import annotations

from pathlib import Path

FAMILIES = ("bert", "roberta", "distilbert", "deberta-v2", "gpt_neo", "gpt2")
DECODERS = ("gpt_neo", "gpt2")
_CORPUS = (
    "a wonderful film with great acting and a moving story",
    "a terrible movie , boring plot and awful dialogue",
    "i loved every minute of it , the best film this year",
    "i hated it , the worst movie i have seen , a waste of time",
)


def _tokenizer(texts: list[str], vocab_size: int, decoder: bool):
    """A small word-level tokenizer trained on `texts`; decoders get no pad token, as GPT's have none."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>"] + ([] if decoder else ["<pad>", "<mask>"])
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=specials))
    if not decoder:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))]
        )
    # No token_type_ids: transformers 4.x's PreTrainedTokenizerFast emits them by default (5.x does
    # not), and DistilBERT's forward does not take them. Every family here works with one segment.
    kwargs = dict(unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                  model_input_names=["input_ids", "attention_mask"])
    if not decoder:
        kwargs.update(pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def tiny_config(family: str, vocab_size: int, pad_token_id: int | None, max_length: int = 128):
    """A 2-layer, 64-wide config of an architecture family (its real module names, random weights)."""
    from transformers import (BertConfig, DebertaV2Config, DistilBertConfig, GPT2Config, GPTNeoConfig,
                              RobertaConfig)

    # 64 wide, not less: bitsandbytes' CPU 4-bit kernels need in_features >= the block size (64).
    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    if family == "bert":
        return BertConfig(vocab_size=vocab_size, max_position_embeddings=max_length, pad_token_id=pad_token_id, **size)
    if family == "roberta":
        # RoBERTa numbers positions from pad_token_id + 1.
        return RobertaConfig(vocab_size=vocab_size, max_position_embeddings=max_length + pad_token_id + 2,
                             pad_token_id=pad_token_id, **size)
    if family == "distilbert":
        return DistilBertConfig(vocab_size=vocab_size, dim=64, n_layers=2, n_heads=2, hidden_dim=128,
                                max_position_embeddings=max_length, pad_token_id=pad_token_id)
    if family == "deberta-v2":
        return DebertaV2Config(vocab_size=vocab_size, max_position_embeddings=max_length, pad_token_id=pad_token_id,
                               pooler_hidden_size=64, **size)
    if family == "gpt_neo":
        return GPTNeoConfig(vocab_size=vocab_size, hidden_size=64, num_layers=2, num_heads=2,
                            attention_types=[[["global", "local"], 1]], window_size=16,
                            max_position_embeddings=max_length, intermediate_size=128)
    if family == "gpt2":
        return GPT2Config(vocab_size=vocab_size, n_embd=64, n_layer=2, n_head=2, n_positions=max_length)
    raise ValueError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")


def build_tiny_model(family: str, folder: str | Path, texts: list[str] | None = None, seed: int = 0) -> Path:
    """Save a tiny random classifier of `family` and its tokenizer to `folder` (a local model path)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    folder = Path(folder)
    decoder = family in DECODERS
    tokenizer = _tokenizer(list(texts or _CORPUS), vocab_size=2000, decoder=decoder)
    config = tiny_config(family, len(tokenizer), tokenizer.pad_token_id if not decoder else None)
    config.num_labels = 2
    # Wider random weights than the pretraining default (0.02), so that different reviews get
    # different features: at 0.02 a random encoder maps every review to nearly the same vector.
    config.initializer_range = 0.2
    config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
