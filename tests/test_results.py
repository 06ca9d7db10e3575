"""Results store: round trip, replace-not-duplicate, atomic writes, the DataFrame's columns."""

from __future__ import annotations

import pytest

from peft_imdb.results import RunResult, has_ok_result, read_results, save_result
from peft_imdb.table import COLUMNS, load_results


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


@pytest.mark.unit
def test_a_bad_status_is_refused():
    with pytest.raises(ValueError):
        _row(status="done")


def test_a_corrupt_record_is_kept_aside_and_reported(tmp_path, capsys):
    save_result(_row(), tmp_path)
    runs = tmp_path / "runs"
    (runs / "x.json").write_text("{not json")
    (runs / "y.json").write_text('{"key": "y", "status": "done"}')  # parses, but is not a valid record
    (runs / "z.json").write_text("[1, 2]")
    frame = load_results(tmp_path)
    assert frame["key"].tolist() == ["m__lora__seed0__abc"]  # the good row is still read
    err = capsys.readouterr().err
    for name in ("x", "y", "z"):
        assert not (runs / f"{name}.json").exists()
        assert f"{name}.json.corrupt" in err and f"{name}.json" in err
    assert (runs / "x.json.corrupt").read_text() == "{not json"  # kept, byte for byte, never dropped
    # A second corrupt file of the same name does not overwrite the first one kept aside.
    (runs / "x.json").write_text("truncated {")
    assert len(read_results(tmp_path)) == 1
    assert (runs / "x.json.corrupt.1").read_text() == "truncated {"
    assert (runs / "x.json.corrupt").read_text() == "{not json"


def test_a_corrupt_record_counts_as_not_done(tmp_path, capsys):
    save_result(_row(), tmp_path)
    path = tmp_path / "runs" / "m__lora__seed0__abc.json"
    path.write_text(path.read_text()[:40])  # a truncated file, as a crash in a non-atomic write would leave
    assert not has_ok_result("m__lora__seed0__abc", tmp_path)
    assert (tmp_path / "runs" / "m__lora__seed0__abc.json.corrupt").is_file()
    assert "m__lora__seed0__abc.json.corrupt" in capsys.readouterr().err
