"""Data: the real IMDb folder, balanced seeded subsets, validation outside train, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset, DatasetDict

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


@pytest.mark.integration
def test_nested_subsets_extend_each_other_per_label_and_the_independent_draw_does_not(imdb):
    sizes = (500, 1000, 2000, 4000, 8000)
    nested = [make_splits(imdb, size, 0, 200, 42) for size in sizes]  # the budget experiment's training sizes
    ids = [set(split["train"]["review_id"]) for split in nested]
    assert all(small < large for small, large in zip(ids, ids[1:]))  # strictly inside the next, per label too:
    assert all(sum(split["train"]["label"]) == len(split["train"]) // 2 for split in nested)
    assert len({tuple(split["validation"]["review_id"]) for split in nested}) == 1  # one validation set for all
    independent = [set(make_splits(imdb, size, 0, 200, 42, "independent")["train"]["review_id"]) for size in sizes[:2]]
    assert not independent[0] < independent[1]


@pytest.mark.integration
def test_fresh_test_reviews_leave_out_every_review_the_earlier_study_scored(imdb):
    from peft_imdb.data import retired_test_reviews, without_test_texts

    earlier = make_splits(imdb, 2000, 2000, 200, 42, "independent", "all")["test"]  # the draw every committed run scored
    retired = retired_test_reviews(imdb["test"])
    assert set(earlier["review_id"]) <= set(retired) and set(imdb["test"].select(retired)["text"]) == set(earlier["text"])
    fresh = make_splits(imdb, 2000, 5000, 200, 42)["test"]
    assert len(fresh) == 5000 and sum(fresh["label"]) == 2500
    assert not set(fresh["review_id"]) & set(retired)
    assert not set(fresh["text"]) & set(earlier["text"])
    tuning = make_splits(without_test_texts(imdb), 2000, 0, 1000, 42)  # what a tuning run draws from
    assert not set(fresh["text"]) & (set(tuning["train"]["text"]) | set(tuning["validation"]["text"]))
    with pytest.raises(UserError, match=r"fresh test split has 11\d\d\d reviews of label 0"):
        make_splits(imdb, 2000, 24000, 200, 42)


@pytest.mark.integration
def test_a_study_run_learns_from_the_reviews_tuning_draws_and_none_shares_a_text_with_the_test_split(imdb):
    from peft_imdb.data import without_test_texts

    test_texts = set(imdb["test"]["text"])
    tuning = make_splits(without_test_texts(imdb), 2000, 0, 200, 42)
    study = make_splits(imdb, 2000, 5000, 200, 42)
    for split in ("train", "validation"):  # the same reviews, in the same order (ids count rows differently)
        assert study[split]["text"] == tuning[split]["text"]
        assert not set(study[split]["text"]) & test_texts
    everything = make_splits(imdb, None, 5000, 200, 42)["train"]  # every training review the study may use
    assert not set(everything["text"]) & test_texts
    assert set(study["train"]["review_id"]) < set(everything["review_id"])
    assert len(everything) == len(without_test_texts(imdb)["train"]) - 200
    earlier = make_splits(imdb, None, 2000, 200, 42, test_reviews="all")["train"]  # the earlier draw: every text
    assert len(earlier) == len(imdb["train"]) - 200 and set(earlier["text"]) & test_texts


def test_full_train_still_leaves_validation_out():
    labels = np.array([0, 1] * 50)
    val = balanced_indices(labels, 10, seed=1)
    train = balanced_indices(labels, None, seed=0, exclude=val)
    assert len(train) == 90 and not set(train) & set(val)


def test_sizes_larger_than_the_data_are_a_clear_error():
    with pytest.raises(UserError, match="only 2 of label 0"):
        balanced_indices(np.array([0, 1, 0, 1]), 6, seed=0)


def _reviews(labels: list[int], split: str = "train") -> Dataset:
    return Dataset.from_dict({"text": [f"{split} review {i}" for i in range(len(labels))], "label": labels})


def _one_label(rows: int) -> DatasetDict:
    return DatasetDict(train=_reviews([0] * rows), test=_reviews([0] * rows, "test"))


@pytest.mark.parametrize("sizes, says", [
    (dict(train_size=64, val_size=32), "the train split has 0 reviews of label 1 (positive), but --train-size 64 "
                                       "takes 32 and --val-size 32 takes 16; use a smaller --train-size or --val-size"),
    (dict(train_size=64, val_size=0), "the train split has 0 reviews of label 1 (positive), but --train-size 64 "
                                      "takes 32; use a smaller --train-size"),
    (dict(train_size=None, val_size=0), "the train split has 0 reviews of label 1 (positive), but training on the "
                                        "rest needs at least one; use a data folder with enough reviews of both labels"),
])
def test_a_size_error_names_the_split_and_the_flag(sizes, says):
    with pytest.raises(UserError) as error:
        make_splits(_one_label(300), eval_size=2, **sizes)
    assert str(error.value).startswith(says)


def test_a_test_size_error_names_the_test_split_and_its_flag():
    data = DatasetDict(train=_reviews([0, 1] * 150), test=_reviews([0] * 40, "test"))
    with pytest.raises(UserError, match=r"^the test split has 0 reviews of label 1 \(positive\), but --eval-size 64 "
                       r"takes 32; use a smaller --eval-size"):
        make_splits(data, train_size=64, eval_size=64, val_size=32)


@pytest.mark.integration
def test_a_train_size_on_a_folder_with_one_label_is_a_one_line_error(tmp_path, tiny_models, capsys):
    from peft_imdb.cli import main

    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps({"text": f"a fine film, {split} number {i}",
                                                                     "label": 1}) + "\n" for i in range(300)))
    assert main(["run", "--method", "lora", "--model", str(tiny_models["bert"]), "--profile", "smoke", "--train-size",
                 "64", "--data-dir", str(tmp_path), "--results-dir", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: the train split has 0 reviews of label 0 (negative), but --train-size 64 takes 32 "
                           "and --val-size 32 takes 16; use a smaller --train-size or --val-size")
    assert not list((tmp_path / "out").glob("runs/*"))


@pytest.mark.integration
def test_tokenize_truncates_and_does_not_pad(imdb, tiny_models):
    tokenizer = load_tokenizer(str(tiny_models["bert"]))
    splits = make_splits(imdb, train_size=200, eval_size=20, val_size=0)
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
