"""DoRA, VeRA, AdaLoRA, LoHa, BitFit and prompt tuning: built on every tiny family peft supports (skipped with
the reason elsewhere), one step trains exactly what each should, the formula is the measured count, and a
CLI run of each stores an `ok` row."""

from __future__ import annotations

import pytest

from peft_imdb.cli import main
from peft_imdb.methods import get_method, method_names, optimizer_steps, parse_adapter
from peft_imdb.models import build_model, load_tokenizer
from peft_imdb.params import count_parameters, expected_parameters
from peft_imdb.results import read_results
from peft_imdb.runner import train_and_store
from peft_imdb.tiny import FAMILIES
from peft_imdb.resolved import resolve

from conftest import builds_trains_what_it_should_and_matches_its_formula, tiny_config

MORE = ["dora", "vera", "adalora", "loha", "bitfit", "prompt_tuning"]
# Where peft (or the classifier) cannot run the method, and the reason the skipped row gives (a pattern).
UNSUPPORTED = {
    ("loha", "gpt2"): "Conv1D",  # GPT-2's fused projections are transformers' Conv1D; peft's LoHa has no adapter for it
    # peft cannot read DistilBERT's sizes from its config (0.21 names token_dim first, 0.14 num_layers)
    ("prompt_tuning", "distilbert"): "token_dim|num_layers",
    ("prompt_tuning", "gpt_neo"): "last non-padding token",
    ("prompt_tuning", "gpt2"): "last non-padding token",
}


@pytest.mark.unit
def test_the_six_are_registered_outside_the_core_four():
    assert [m for m in method_names() if m in MORE] == MORE
    assert method_names(core_only=True) == ["full", "lora", "qlora", "ia3"]
    for name in MORE:
        assert set(get_method(name).learning_rates) == {"cpu", "cpu-first", "gpu"}
        assert get_method(name).lr_grid["cpu-first"]  # the first sweep's grid, around which the final one centres


@pytest.mark.parametrize("method", MORE)
@pytest.mark.parametrize("family", FAMILIES)
def test_builds_trains_what_it_should_and_matches_its_formula(tiny_models, family, method):
    builds_trains_what_it_should_and_matches_its_formula(tiny_models, family, method, UNSUPPORTED)


def test_formula_tables_name_what_each_method_trains(tiny_models):
    bert = tiny_models["bert"]
    parts = {m: list(expected_parameters(tiny_config(bert, m)).index) for m in MORE}
    assert any(p.startswith("bias of bert.encoder.layer.*.attention.self.query") for p in parts["bitfit"])
    assert "adapter on the input: 20 virtual tokens" in parts["prompt_tuning"]
    assert "adapter on bert.encoder.layer.*.attention.self.query" in parts["vera"]
    formulas = expected_parameters(tiny_config(bert, "dora"))["formula"].tolist()
    assert any("r·(d_in + d_out) + d_out" in f for f in formulas)


def test_unsupported_combinations_are_stored_as_skipped(tiny_models, imdb, tmp_path):
    row = train_and_store(resolve(tiny_config(tiny_models["gpt2"], "loha")), tmp_path, imdb)
    assert row.status == "skipped" and "Conv1D" in row.reason
    # A soft prompt needs positions of its own: past the model's positions it is skipped, with the fix.
    row = train_and_store(resolve(tiny_config(tiny_models["bert"], "prompt_tuning", max_length=120)), tmp_path, imdb)
    assert row.status == "skipped" and "--max-length 108" in row.reason
    assert {r.status for r in read_results(tmp_path)} == {"skipped"}


@pytest.mark.unit
def test_adalora_schedule_follows_the_run():
    def steps(**overrides):
        settings = dict(model="minilm", method="adalora", train_size=64, batch_size=8)
        settings.update(overrides)
        return optimizer_steps(tiny_config(**settings))

    assert steps() == 8 and steps(train_size=65) == 9
    assert steps(train_size=65, gradient_accumulation_steps=4) == 3  # 9 batches -> 3 optimizer steps
    assert steps(train_size=65, gradient_accumulation_steps=4, epochs=1.5) == 5
    assert steps(train_size=None, val_size=200) == 24_800 // 8


def test_adalora_total_step_is_in_the_peft_config_and_the_identity(tiny_models):
    config = tiny_config(tiny_models["bert"], "adalora", train_size=64, batch_size=8)
    peft_config = resolve(config).peft_config
    assert (peft_config.total_step, peft_config.tinit, peft_config.tfinal) == (8, 0, 1)
    assert resolve(config).identity["adapter"]["total_step"] == 8
    assert resolve(tiny_config(tiny_models["bert"], "adalora", train_size=128)).key != resolve(config).key
    assert parse_adapter("adalora", ["init_r=6"]) == {"init_r": 6}


def test_adalora_reallocates_after_each_optimizer_step_with_the_gradients(tiny_models, imdb, monkeypatch):
    from peft.tuners.adalora import AdaLoraModel

    from peft_imdb.train import train_and_evaluate

    calls = []
    original = AdaLoraModel.update_and_allocate

    def update_and_allocate(self, global_step):
        grads = [p.grad for n, p in self.model.named_parameters() if "lora_E" in n]
        calls.append((global_step, all(g is not None and g.abs().sum() > 0 for g in grads)))
        return original(self, global_step)

    monkeypatch.setattr(AdaLoraModel, "update_and_allocate", update_and_allocate)
    config = tiny_config(tiny_models["bert"], "adalora", train_size=40, batch_size=8, val_size=0)
    row = train_and_evaluate(resolve(config), imdb)[0]
    assert row.status == "ok" and row.train_steps == 5 == resolve(config).peft_config.total_step
    assert calls == [(step, True) for step in range(5)]  # every step, before zero_grad


def test_bitfit_has_no_adapter_settings(capsys, tmp_path):
    assert main(["run", "--method", "bitfit", "--adapter", "r=4", "--results-dir", str(tmp_path)]) == 2
    assert "bitfit has no adapter settings" in capsys.readouterr().err


@pytest.mark.parametrize("method", MORE)
def test_a_cli_run_stores_an_ok_row(method, tiny_models, data_dir, tmp_path):
    assert main(["run", "--method", method, "--model", str(tiny_models["bert"]), "--profile", "smoke",
                 "--train-size", "16", "--eval-size", "16", "--val-size", "0", "--max-length", "32",
                 "--data-dir", str(data_dir), "--results-dir", str(tmp_path)]) == 0
    [row] = read_results(tmp_path)
    assert row.status == "ok", row.reason
    assert row.method == method and row.lr == get_method(method).learning_rates["cpu"]
    assert row.trainable_params == int(expected_parameters(
        tiny_config(tiny_models["bert"], method, train_size=16, eval_size=16, val_size=0, max_length=32,
                    lr=None)).loc["trainable (total)", "params"])


def test_bitfit_artifact_holds_only_what_it_trains(tiny_models, tmp_path):
    from safetensors.torch import load_file

    from peft_imdb.models import save_artifact

    config = tiny_config(tiny_models["bert"], "bitfit")
    built = build_model(resolve(config), load_tokenizer(config.model))
    save_artifact(built.model, tmp_path / "artifact", "bitfit")
    saved = load_file(str(tmp_path / "artifact" / "trained_parameters.safetensors"))
    assert sum(t.numel() for t in saved.values()) == count_parameters(built.model, built.head_modules).trainable
