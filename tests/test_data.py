"""Data: the real IMDb folder, balanced seeded subsets, validation outside train, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from peft_imdb.data import balanced_indices, load_imdb, make_splits, tokenize
from peft_imdb.errors import UserError
from peft_imdb.models import load_tokenizer


@pytest.mark.integration
def test_real_folder_has_the_full_balanced_split(imdb):
    for split in ("train", "test"):
        labels = np.asarray(imdb[split]["label"])
        assert len(labels) == 25000 and labels.sum() == 12500


@pytest.mark.integration
def test_subsets_are_balanced_disjoint_and_seeded(imdb):
    splits = make_splits(imdb, train_size=300, eval_size=200, val_size=100, seed=7)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [300, 100, 200]
    for split in splits.values():
        assert sum(split["label"]) == len(split) // 2
    assert not set(splits["train"]["text"]) & set(splits["validation"]["text"])
    again = make_splits(imdb, train_size=300, eval_size=200, val_size=100, seed=7)
    assert again["train"]["text"] == splits["train"]["text"]
    other = make_splits(imdb, train_size=300, eval_size=200, val_size=100, seed=8)
    assert other["train"]["text"] != splits["train"]["text"]


def test_full_train_still_leaves_validation_out():
    labels = np.array([0, 1] * 50)
    val = balanced_indices(labels, 10, seed=1)
    train = balanced_indices(labels, None, seed=0, exclude=val)
    assert len(train) == 90 and not set(train) & set(val)


def test_sizes_larger_than_the_data_are_a_clear_error():
    with pytest.raises(UserError, match="only 2 of label 0"):
        balanced_indices(np.array([0, 1, 0, 1]), 6, seed=0)


@pytest.mark.integration
def test_tokenize_truncates_and_does_not_pad(imdb, tiny_models):
    tokenizer = load_tokenizer(str(tiny_models["bert"]))
    splits = make_splits(imdb, train_size=20, eval_size=20, val_size=0)
    lengths = [len(ids) for ids in tokenize(splits, tokenizer, 64)["train"]["input_ids"]]
    assert max(lengths) == 64 and min(lengths) < 64  # truncated at 64, padded later per batch


def _write(folder, split, rows):
    folder.mkdir(exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_local_formats_jsonl_csv_parquet(tmp_path):
    rows = [{"text": "good", "label": 1}, {"text": "bad", "label": 0}]
    _write(tmp_path / "j", "train", rows)
    _write(tmp_path / "j", "test", rows)
    (tmp_path / "c").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "c" / "train.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "c" / "test.parquet")
    for folder in ("j", "c"):
        data = load_imdb(tmp_path / folder)
        assert data["train"]["label"] == [1, 0] and data["test"]["text"] == ["good", "bad"]


@pytest.mark.parametrize("rows, message", [
    ([{"text": "good"}], "missing column"),
    ([{"text": "good", "label": 2}], "labels must be 0"),
    ([{"text": "  ", "label": 1}], "empty text"),
])
def test_bad_files_are_clear_errors(tmp_path, rows, message):
    _write(tmp_path, "train", rows)
    _write(tmp_path, "test", [{"text": "ok", "label": 0}])
    with pytest.raises(UserError, match=message):
        load_imdb(tmp_path)


def test_missing_folder_names_the_setting(tmp_path):
    with pytest.raises(UserError, match="PEFT_IMDB_DATA"):
        load_imdb(tmp_path / "nope")
    with pytest.raises(UserError, match="no train file"):
        load_imdb(tmp_path)
