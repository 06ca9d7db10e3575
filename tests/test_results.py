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


# --- predictions are part of a finished run -----------------------------------------------------------

def _with_predictions(tmp_path, reviews: int = 10, correct: int = 8) -> RunResult:
    """An ok record and its predictions: `correct` of `reviews` test reviews right."""
    import numpy as np

    from peft_imdb.results import save_predictions

    labels = np.tile([0, 1], reviews // 2)
    predicted = np.where(np.arange(reviews) < correct, labels, 1 - labels)
    row = _row(accuracy=correct / reviews)  # its confusion matrix sums to 10 reviews
    save_predictions(row.key, np.arange(reviews), labels, predicted, predicted * 1.0, tmp_path)
    save_result(row, tmp_path)
    return row


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize("damage", ["truncated", "empty", "overwritten"])
def test_an_unreadable_predictions_file_is_kept_aside_and_its_run_counts_as_not_done(tmp_path, damage, capsys):
    from peft_imdb.results import load_predictions, predictions_path

    row = _with_predictions(tmp_path)
    path = predictions_path(row.key, tmp_path)
    data = path.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "empty": b"", "overwritten": b"synced halfway" * 9}[damage]
    path.write_bytes(damaged)
    assert not has_ok_result(row.key, tmp_path)  # the next matrix trains it again
    assert not path.exists() and path.with_name(path.name + ".corrupt").read_bytes() == damaged  # kept, never dropped
    (line,) = _warnings(capsys.readouterr().err)
    assert str(path) in line and f"{path.name}.corrupt" in line and "counts as not done" in line
    assert not has_ok_result(row.key, tmp_path) and load_predictions(row.key, tmp_path) is None  # still not done
    assert load_results(tmp_path).loc[0, "predictions"] == "predictions unreadable"
    assert read_results(tmp_path) == [row]  # the record itself is untouched


def test_missing_predictions_keep_the_run_done_and_are_named(tmp_path, capsys):
    from peft_imdb.results import predictions_path

    row = _with_predictions(tmp_path)
    predictions_path(row.key, tmp_path).unlink()
    assert has_ok_result(row.key, tmp_path) and not _warnings(capsys.readouterr().err)
    frame = load_results(tmp_path)
    assert frame.loc[0, "predictions"] == "predictions missing"
    (line,) = _warnings(capsys.readouterr().err)
    assert str(predictions_path(row.key, tmp_path)) in line and "interval not computed" in line


@pytest.mark.parametrize("change, says", [({"reviews": 12, "correct": 8}, "12 reviews, the record scored 10"),
                                          ({"correct": 6}, "accuracy 0.6000, the record's 0.8000")])
def test_predictions_that_do_not_belong_to_their_record_are_named_and_not_used(tmp_path, change, says, capsys):
    row = _with_predictions(tmp_path)
    _with_predictions(tmp_path, **change)  # another run's predictions under the same key
    save_result(row, tmp_path)  # the record of the first run, with the predictions of the second
    assert not has_ok_result(row.key, tmp_path)
    (line,) = _warnings(capsys.readouterr().err)
    assert "does not belong to the record" in line and says in line
    assert load_results(tmp_path).loc[0, "predictions"] == f"predictions do not match the record ({says})"
    assert len(_warnings(capsys.readouterr().err)) == 0  # said once


def test_a_run_with_whole_predictions_is_done_without_a_word(tmp_path, capsys):
    row = _with_predictions(tmp_path)
    assert has_ok_result(row.key, tmp_path) and load_results(tmp_path).loc[0, "predictions"] == ""
    assert capsys.readouterr().err == ""
