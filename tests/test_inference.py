"""Merging LoRA/IA3 into the base weights changes nothing the model predicts."""

import pytest
import torch

from peft_imdb.config import RunConfig
from peft_imdb.errors import UserError
from peft_imdb.hardware import choose_precision
from peft_imdb.models import build_model, load_tokenizer, merge_adapter
from peft_imdb.resolved import resolve


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_merged_adapter_gives_the_same_logits(method, tiny_models):
    config = RunConfig(model=str(tiny_models["bert"]), method=method)
    tokenizer = load_tokenizer(config.model)
    model = build_model(resolve(config), tokenizer).model
    torch.manual_seed(0)
    with torch.no_grad():  # as if trained: adapters away from their identity initialisation
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.add_(0.5 * torch.randn_like(parameter))
    model.eval()
    batch = tokenizer(["a fine film", "dull and far too long, truly"], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model(**batch).logits
        merged = merge_adapter(model)
        after = merged(**batch).logits
    if method == "lora":
        assert not hasattr(merged, "peft_config")  # a plain transformers model now
    else:
        assert all(layer.merged for layer in merged.modules() if hasattr(layer, "ia3_l"))
    assert torch.allclose(before, after, atol=1e-5)
    assert not torch.allclose(before, torch.zeros_like(before))


def test_full_finetuning_has_nothing_to_merge(tiny_models):
    config = RunConfig(model=str(tiny_models["bert"]), method="full")
    model = build_model(resolve(config), load_tokenizer(config.model)).model
    with pytest.raises(UserError, match="full fine-tuning has none"):
        merge_adapter(model)
