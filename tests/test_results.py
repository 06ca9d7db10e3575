"""Results store: round trip, replace-not-duplicate, atomic writes, the DataFrame's columns."""

from __future__ import annotations

import pytest

from peft_imdb.errors import UserError
from peft_imdb.results import COLUMNS, RunResult, has_ok_result, load_results, read_results, save_result


def _row(key="m__lora__seed0__abc", accuracy=0.8, status="ok", **extra) -> RunResult:
    return RunResult(key=key, model="m", method="lora", seed=0, status=status, accuracy=accuracy,
                     trainable_params=10, total_params=1000, confusion_matrix=[[4, 1], [1, 4]],
                     config={"train_size": 10, "eval_size": 10, "epochs": 1, "max_length": 32},
                     env={"device": "cpu"}, **extra)


def test_round_trip(tmp_path):
    row = _row(base_weight_bits=4, memory_kind="cpu_rss", peak_memory_mb=123.5)
    save_result(row, tmp_path)
    [back] = read_results(tmp_path)
    assert back == row


def test_same_key_replaces_instead_of_adding(tmp_path):
    save_result(_row(accuracy=0.6), tmp_path)
    save_result(_row(accuracy=0.7), tmp_path)
    save_result(_row(key="m__lora__seed1__abc"), tmp_path)
    frame = load_results(tmp_path)
    assert len(frame) == 2
    assert frame.set_index("key").loc["m__lora__seed0__abc", "accuracy"] == 0.7
    assert not list((tmp_path / "runs").glob(".*tmp"))  # no temporary files left behind


def test_dataframe_has_the_documented_columns(tmp_path):
    save_result(_row(), tmp_path)
    frame = load_results(tmp_path)
    assert list(frame.columns[: len(COLUMNS)]) == COLUMNS
    assert frame.loc[0, "trainable_percent"] == pytest.approx(1.0)
    assert frame.loc[0, "device"] == "cpu" and frame.loc[0, "max_length"] == 32
    assert list(load_results(tmp_path / "empty").columns) == COLUMNS


def test_only_ok_rows_count_as_done(tmp_path):
    save_result(_row(status="failed", accuracy=None), tmp_path)
    assert not has_ok_result("m__lora__seed0__abc", tmp_path)
    save_result(_row(), tmp_path)
    assert has_ok_result("m__lora__seed0__abc", tmp_path)


def test_a_bad_status_is_refused():
    with pytest.raises(ValueError):
        _row(status="done")


def test_a_corrupt_record_is_reported(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "x.json").write_text("{not json")
    with pytest.raises(UserError, match="x.json"):
        load_results(tmp_path)
