"""The real offline pretrained model (all-MiniLM-L6-v2) fine-tuned on real IMDb reviews."""

from __future__ import annotations

import pytest

from peft_imdb.config import RunConfig
from peft_imdb.models import resolve_model
from peft_imdb.train import run_experiment


def test_offline_default_resolves_to_shipped_weights():
    from pathlib import Path

    path = Path(resolve_model("minilm"))
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("method, floor", [("full", 0.70), ("lora", 0.70)])
def test_real_model_learns_sentiment(imdb, method, floor):
    config = RunConfig(model="minilm", method=method, train_size=400, eval_size=300, val_size=0,
                       epochs=1, max_length=128)
    row = run_experiment(config, imdb)
    assert row.status == "ok"
    # 300 balanced test reviews: chance is 0.5 (95% band about 0.44-0.56); the floor is well above it.
    assert row.accuracy >= floor, row.accuracy
