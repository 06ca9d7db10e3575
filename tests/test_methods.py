"""Every architecture family x every method: builds, trains a step, trains only what it should."""

from __future__ import annotations

import pytest
import torch

from peft_imdb.hardware import choose_precision
from peft_imdb.methods import get_method, method_names
from peft_imdb.models import build_model, load_tokenizer
from peft_imdb.params import count_parameters
from peft_imdb.tiny import DECODERS, FAMILIES
from peft_imdb.resolved import resolve

from conftest import tiny_config


def _batch(tokenizer, texts=("a great film", "an awful movie , really bad and long")):
    batch = tokenizer(list(texts), padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor([1, 0])
    return batch


@pytest.mark.parametrize("method", method_names(core_only=True))  # the others: tests/test_more_methods.py
@pytest.mark.parametrize("family", FAMILIES)
def test_build_and_train_one_step(tiny_models, family, method):
    config = tiny_config(tiny_models[family], method)
    tokenizer = load_tokenizer(config.model)
    built = build_model(resolve(config), tokenizer)
    model = built.model
    counts = count_parameters(model, built.head_modules)

    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()
              if not p.requires_grad and p.dtype.is_floating_point}
    assert counts.trainable == sum(p.numel() for p in trainable.values())
    assert 0 < counts.head < counts.trainable <= counts.total

    if get_method(method).config_class is None:
        assert not frozen and counts.trainable == counts.total and counts.adapter == 0
    else:
        for name in trainable:  # peft names adapter weights and trained head copies after the adapter
            assert ".default" in name, name
        assert counts.trainable == counts.adapter + counts.head and counts.adapter > 0
        assert counts.trainable < counts.total / 5

    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(**_batch(tokenizer)).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()

    after = dict(model.named_parameters())
    changed = [n for n, p in trainable.items() if not torch.equal(p, after[n].detach())]
    # LoRA's B starts at zero, so A gets no gradient on the first step: most, not all, change.
    assert len(changed) >= len(trainable) / 2
    assert all(torch.equal(p, after[n].detach()) for n, p in frozen.items())


@pytest.mark.parametrize("family", FAMILIES)
def test_qlora_base_layers_are_4bit_and_head_is_not(tiny_models, family):
    import bitsandbytes as bnb

    config = tiny_config(tiny_models[family], "qlora")
    built = build_model(resolve(config), load_tokenizer(config.model))
    four_bit = [n for n, m in built.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert four_bit and built.base_weight_bits == 4
    assert not [n for n in four_bit if any(f".{h}" in f".{n}" for h in built.head_modules)]
    # The true parameter count matches the same model unquantized with the same LoRA.
    lora = build_model(resolve(tiny_config(tiny_models[family], "lora")), load_tokenizer(config.model))
    assert (count_parameters(built.model, built.head_modules).total
            == count_parameters(lora.model, lora.head_modules).total)


def test_decoders_get_a_pad_token(tiny_models):
    for family in DECODERS:
        tokenizer = load_tokenizer(str(tiny_models[family]))
        assert tokenizer.pad_token is not None and tokenizer.pad_token == tokenizer.eos_token


@pytest.mark.unit
def test_unknown_architecture_without_targets_is_a_clear_error():
    from peft_imdb.errors import UserError

    with pytest.raises(UserError, match="--adapter target_modules="):
        get_method("lora").peft_config("some-new-arch")
    # Naming the targets is the fix: the same architecture then builds.
    assert sorted(get_method("lora").peft_config("some-new-arch", {"target_modules": ["q"]}).target_modules) == ["q"]
