"""Run configs: validation, profile defaults, and an identity that names the run and nothing else."""

from __future__ import annotations

import pytest

import dataclasses

from peft_imdb.config import IDENTITY_BASELINE, PROFILES, RunConfig, detect_profile
from peft_imdb.models import model_id
from peft_imdb.errors import UserError
from peft_imdb.methods import get_method, parse_adapter
from peft_imdb.resolved import resolve


def test_key_ignores_where_the_data_is_and_number_types():
    base = RunConfig(model="minilm", method="lora", epochs=1, data_dir="/a")
    assert resolve(base).key == resolve(RunConfig(model="minilm", method="lora", epochs=1.0, data_dir="../b")).key
    assert resolve(base).key != resolve(RunConfig(model="minilm", method="lora", epochs=2)).key
    assert resolve(base).key != resolve(RunConfig(model="minilm", method="lora", seed=1)).key


def test_default_lr_is_the_methods_and_explicit_lr_changes_the_key():
    config = RunConfig(model="minilm", method="ia3", lr_table="cpu")
    assert config.learning_rate == get_method("ia3").learning_rates["cpu"]
    assert resolve(RunConfig(model="minilm", method="ia3", lr=config.learning_rate)).key == resolve(config).key
    assert resolve(RunConfig(model="minilm", method="ia3", lr=1e-3)).key != resolve(config).key


def test_profile_defaults_and_overrides():
    config = RunConfig.from_profile(PROFILES["colab-t4"], "full", seed=2)
    assert (config.model, config.train_size, config.eval_size, config.epochs, config.max_length) == (
        "roberta", 3000, 2000, 3.0, 256)
    assert config.learning_rate == get_method("full").learning_rates["gpu"] and config.seed == 2


@pytest.mark.parametrize("bad", [dict(method="nope"), dict(max_length=0), dict(train_size=1), dict(epochs=0),
                                 dict(qlora_compute_dtype="int8")])
def test_bad_values_are_user_errors(bad):
    with pytest.raises(UserError):
        RunConfig(**{"model": "minilm", "method": "lora", **bad})


def test_profile_from_the_environment(monkeypatch):
    monkeypatch.setenv("PEFT_IMDB_PROFILE", "smoke")
    assert detect_profile().name == "smoke"
    monkeypatch.setenv("PEFT_IMDB_PROFILE", "huge")
    with pytest.raises(UserError, match="colab-t4, cpu, smoke"):
        detect_profile()


def test_identity_holds_the_resolved_peft_config_and_only_what_differs_from_defaults():
    lora = RunConfig(model="minilm", method="lora")
    adapter = resolve(lora).identity["adapter"]
    assert adapter["target_modules"] == ["query", "value"] and adapter["lora_alpha"] == 16
    assert "r" not in adapter  # r=8 is LoraConfig's own default
    assert "adapter" not in resolve(RunConfig(model="minilm", method="full")).identity
    # Naming a default explicitly is the same run; any other value is another run.
    assert resolve(RunConfig(model="minilm", method="lora", adapter={"r": 8})).key == resolve(lora).key
    assert resolve(RunConfig(model="minilm", method="lora", adapter={"r": 16})).key != resolve(lora).key
    assert resolve(RunConfig(model="minilm", method="lora", adapter={"target_modules": ["value", "query"]})).key == resolve(lora).key


def test_every_setting_has_a_baseline_value_and_a_new_field_at_it_renames_no_run(monkeypatch):
    from peft_imdb import config as config_module

    settings = {f.name for f in dataclasses.fields(RunConfig) if f.compare} - {"model", "method", "lr", "adapter"}
    assert settings == set(IDENTITY_BASELINE)  # a field added without its baseline value fails here

    @dataclasses.dataclass
    class Extended(RunConfig):
        new_setting: int = 3

    monkeypatch.setitem(config_module.IDENTITY_BASELINE, "new_setting", 3)  # what runs had before it existed
    for method in ("full", "lora"):
        plain = resolve(RunConfig(model="minilm", method=method)).key
        assert resolve(Extended(model="minilm", method=method)).key == plain
        assert resolve(Extended(model="minilm", method=method, new_setting=4)).key != plain


# A record written before dropout, the sampler and the test pool could be chosen: none of the three is stored.
OLD_RECORD = {"model": "minilm", "method": "lora", "seed": 0, "train_size": 2000, "eval_size": 2000, "val_size": 200,
              "lr": 1e-3, "truncation": "head_tail", "precision": "bf16"}


def test_a_changed_default_renames_the_runs_at_it_and_keeps_every_stored_runs_name():
    old = RunConfig.from_dict(OLD_RECORD)  # a missing field is read at its baseline value, not today's default
    assert (old.dropout, old.sampler, old.test_reviews) == (True, "independent", "all")
    at_baseline = RunConfig(**{**OLD_RECORD, "dropout": True, "sampler": "independent", "test_reviews": "all"})
    assert resolve(old).key == resolve(at_baseline).key
    assert not {"dropout", "sampler", "test_reviews"} & set(resolve(old).identity)
    today = RunConfig(**OLD_RECORD)  # the same request at today's defaults: no dropout, nested, fresh test reviews
    identity = resolve(today).identity
    assert {k: identity[k] for k in ("dropout", "sampler", "test_reviews")} == {
        "dropout": False, "sampler": "nested", "test_reviews": "fresh"}
    keys = {resolve(old).key, resolve(today).key}
    # Each of them alone, and one other setting, is another run than the stored one.
    for change in ({"dropout": False}, {"sampler": "nested"}, {"test_reviews": "fresh"}, {"truncation": "head"}):
        keys.add(resolve(dataclasses.replace(old, **change)).key)
    assert len(keys) == 6


def test_seeds_share_a_group_and_labels_say_what_differs():
    runs = [RunConfig(model="minilm", method="lora", seed=s) for s in (0, 1)]
    assert resolve(runs[0]).group == resolve(runs[1]).group and resolve(runs[0]).key != resolve(runs[1]).key
    assert resolve(runs[0]).label == "lora"
    assert resolve(RunConfig(model="minilm", method="lora", adapter={"r": 16})).label == "lora (r=16)"
    assert resolve(RunConfig(model="minilm", method="full", lr=3e-4, truncation="head")).label == "full (lr=0.0003, truncation=head)"


def test_a_model_folder_is_named_by_its_contents_not_its_path(tmp_path):
    for place in ("a", "b"):
        folder = tmp_path / place / "my-model"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text('{"model_type": "bert"}')
        (folder / "model.safetensors").write_bytes(b"")
    first, second = model_id(str(tmp_path / "a" / "my-model")), model_id(str(tmp_path / "b" / "my-model"))
    assert first == second and first.startswith("my-model-") and str(tmp_path) not in first
    (tmp_path / "b" / "my-model" / "config.json").write_text('{"model_type": "roberta"}')
    model_id.cache_clear()
    assert model_id(str(tmp_path / "b" / "my-model")) != first


@pytest.mark.parametrize("items, message", [
    (["rank=16"], "LoraConfig has no setting 'rank'"),
    (["r=sixteen"], "LoraConfig.r expects int"),
    (["r16"], "key=value"),
])
def test_bad_adapter_settings_are_one_line_errors(items, message):
    with pytest.raises(UserError, match=message):
        parse_adapter("lora", items)


def test_adapter_settings_are_typed_by_the_peft_class():
    assert parse_adapter("lora", ["r=16", "lora_alpha=32", "target_modules=query,key,value", "use_dora=true"]) == {
        "r": 16, "lora_alpha": 32, "target_modules": ["query", "key", "value"], "use_dora": True}
    with pytest.raises(UserError, match="no adapter settings"):
        parse_adapter("full", ["r=4"])
