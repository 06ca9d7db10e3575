"""Run configs: validation, profile defaults, and a key that names the run and nothing else."""

from __future__ import annotations

import pytest

from peft_imdb.config import LEARNING_RATES, PROFILES, RunConfig, detect_profile
from peft_imdb.errors import UserError


def test_key_ignores_where_the_data_is_and_number_types():
    base = RunConfig(model="minilm", method="lora", epochs=1, data_dir="/a")
    assert base.key() == RunConfig(model="minilm", method="lora", epochs=1.0, data_dir="../b").key()
    assert base.key() != RunConfig(model="minilm", method="lora", epochs=2).key()
    assert base.key() != RunConfig(model="minilm", method="lora", seed=1).key()


def test_default_lr_is_the_methods_and_explicit_lr_changes_the_key():
    config = RunConfig(model="minilm", method="ia3", lr_table="cpu")
    assert config.learning_rate == LEARNING_RATES["cpu"]["ia3"]
    assert RunConfig(model="minilm", method="ia3", lr=config.learning_rate).key() == config.key()
    assert RunConfig(model="minilm", method="ia3", lr=1e-3).key() != config.key()


def test_profile_defaults_and_overrides():
    config = RunConfig.from_profile(PROFILES["colab-t4"], "full", seed=2)
    assert (config.model, config.train_size, config.eval_size, config.epochs, config.max_length) == (
        "roberta", 3000, 2000, 3.0, 256)
    assert config.learning_rate == LEARNING_RATES["gpu"]["full"] and config.seed == 2


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
