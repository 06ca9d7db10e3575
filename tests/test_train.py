"""train_and_evaluate end to end on tiny models; adapters reload to the same predictions."""

from __future__ import annotations

import pytest
import torch

from peft_imdb.hardware import choose_precision
from peft_imdb.methods import method_names
from peft_imdb.models import build_model, load_model, load_tokenizer
from peft_imdb.tiny import FAMILIES
from peft_imdb.train import classification_metrics, train_and_evaluate
from peft_imdb.resolved import resolve

from conftest import tiny_config


@pytest.mark.unit
def test_metrics_on_a_known_case():
    metrics = classification_metrics([1, 1, 0, 0], [1, 0, 0, 0])
    assert metrics["accuracy"] == 0.75 and metrics["precision"] == 1.0 and metrics["recall"] == 0.5
    assert metrics["confusion_matrix"] == [[2, 0], [1, 1]]


# The further methods train through the same path in tests/test_further_methods.py (skipped where peft lacks them).
@pytest.mark.parametrize("method", method_names(families=("core", "added")))
def test_run_returns_a_complete_row(tiny_models, imdb, method):
    config = tiny_config(tiny_models["bert"], method)
    row = train_and_evaluate(resolve(config), imdb)[0]
    assert row.status == "ok" and row.key == resolve(config).key
    assert 0 <= row.accuracy <= 1 and sum(map(sum, row.confusion_matrix)) == 16
    assert row.trainable_params > 0 and row.total_params >= row.trainable_params
    assert row.train_time_s > 0 and row.eval_time_s > 0 and row.peak_memory_mb > 0
    assert row.memory_kind == "cpu_rss" and row.precision_mode == "fp32"
    assert row.base_weight_bits == (4 if method == "qlora" else 32)
    assert row.saved_mb > 0 and row.env["versions"]["torch"]
    if method != "full":  # an adapter + head is far smaller than the full model
        full_mb = row.total_params * 4 / 2**20
        assert row.saved_mb < full_mb


@pytest.mark.parametrize("method", method_names(families=("core", "added")))
def test_training_lowers_the_loss(tiny_models, imdb, method):
    config = tiny_config(tiny_models["bert"], method, lr=1e-3 if method == "full" else 1e-2)
    tokenizer = load_tokenizer(config.model)
    model = build_model(resolve(config), tokenizer).model
    reviews = imdb["train"].select(list(range(8)) + list(range(24992, 25000)))
    batch = tokenizer(list(reviews["text"]), truncation=True, max_length=32, padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor(list(reviews["label"]))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    model.eval()  # no dropout: the 16 reviews should be memorised quickly
    losses = []
    for _ in range(40):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


# gpt_neo's configs default every dropout to 0: there is nothing to turn off.
@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "gpt_neo"])
@pytest.mark.parametrize("method", ["full", "lora"])
def test_without_dropout_a_training_forward_pass_is_deterministic(tiny_models, family, method):
    tokenizer = load_tokenizer(str(tiny_models[family]))
    batch = tokenizer(["a fine film, well acted", "dull and long"], padding=True, return_tensors="pt")
    logits = {}
    for dropout in (True, False):
        model = build_model(resolve(tiny_config(tiny_models[family], method, dropout=dropout)), tokenizer).model.train()
        with torch.no_grad():
            for p in model.parameters():  # LoRA's B starts at zero, which would hide the adapter's dropout
                if p.requires_grad:
                    p.add_(0.05 * torch.randn_like(p))
            logits[dropout] = [model(**batch).logits for _ in range(2)]
    assert not torch.equal(*logits[True])  # the model's dropout draws new masks each pass
    assert torch.equal(*logits[False])  # every dropout, the adapter's included, is off


def test_same_seed_same_predictions(tiny_models, imdb, monkeypatch):
    from transformers import Trainer

    predicted = []
    original = Trainer.predict

    def predict(self, *args, **kwargs):  # keep each run's test predictions (the record holds only metrics)
        output = original(self, *args, **kwargs)
        predicted.append(output.predictions.argmax(-1).tolist())
        return output

    monkeypatch.setattr(Trainer, "predict", predict)
    config = tiny_config(tiny_models["roberta"], "lora")
    first, second = train_and_evaluate(resolve(config), imdb)[0], train_and_evaluate(resolve(config), imdb)[0]
    assert len(predicted) == 2 and predicted[0] == predicted[1]  # review by review, not just the counts
    assert first.accuracy == second.accuracy and first.confusion_matrix == second.confusion_matrix
    assert first.train_loss == second.train_loss and first.val_accuracy == second.val_accuracy


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_saved_adapter_reloads_to_the_same_predictions(tiny_models, tmp_path, method):
    from peft import PeftModel

    config = tiny_config(tiny_models["bert"], method)
    tokenizer = load_tokenizer(config.model)
    model = build_model(resolve(config), tokenizer).model
    with torch.no_grad():  # move the adapter and head away from their initial values
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path, safe_serialization=True)
    assert (tmp_path / "adapter_model.safetensors").is_file()
    batch = tokenizer(["a fine film", "dull and long"], padding=True, return_tensors="pt")
    model.eval()
    reloaded = PeftModel.from_pretrained(load_model(config.model, tokenizer), tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, reloaded(**batch).logits, atol=1e-6)


@pytest.mark.parametrize("method", ["full", "qlora"])
def test_several_epochs_select_the_best_validation_epoch(tiny_models, imdb, method):
    config = tiny_config(tiny_models["bert"], method, epochs=2, val_size=16)
    row = train_and_evaluate(resolve(config), imdb)[0]
    assert row.status == "ok" and len(row.val_accuracy_per_epoch) == 2
    assert row.val_accuracy == max(row.val_accuracy_per_epoch)
