"""Shared fixtures: the real IMDb folder, tiny random models of each family, a tiny run config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peft_imdb.config import RunConfig
from peft_imdb.data import load_imdb
from peft_imdb.tiny import FAMILIES, build_tiny_model

REPO = Path(__file__).resolve().parents[1]


def imdb_dir() -> Path:
    """PEFT_IMDB_DATA, else ../shared/data/imdb beside the repository."""
    return Path(os.environ.get("PEFT_IMDB_DATA") or REPO.parent / "shared" / "data" / "imdb")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = imdb_dir()
    if not (path / "train.jsonl").is_file():
        pytest.skip(f"real IMDb data not found at {path}; set PEFT_IMDB_DATA")
    return path


@pytest.fixture(scope="session")
def imdb(data_dir):
    return load_imdb(data_dir)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, imdb) -> dict[str, Path]:
    """One tiny random classifier per architecture family, tokenizer trained on real reviews."""
    root = tmp_path_factory.mktemp("tiny-models")
    texts = imdb["train"].select(range(0, 25000, 125))["text"]
    return {family: build_tiny_model(family, root / family, texts) for family in FAMILIES}


def tiny_config(model: str | Path, method: str, **overrides) -> RunConfig:
    """A run small enough for seconds on CPU."""
    settings = dict(model=str(model), method=method, train_size=32, eval_size=16, val_size=8,
                    epochs=1, max_length=32, batch_size=8, lr=1e-3)
    settings.update(overrides)
    return RunConfig(**settings)
