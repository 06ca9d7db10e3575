"""Reliability: corrupt records, shards and merge, bad input, a failing run, a killed matrix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import peft_imdb.runner as runner
from peft_imdb.cli import main
from peft_imdb.results import RunResult, read_results, save_result
from peft_imdb.table import load_results
from peft_imdb.resolved import resolve

REVIEWS = ["a fine film, well acted", "dull and far too long", "loved it", "hated every minute"]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _small_data(folder: Path, rows: int = 40) -> Path:
    """A valid IMDb-shaped folder of a few balanced reviews (fast to read)."""
    reviews = [{"text": REVIEWS[i % 4], "label": (i % 4) % 2} for i in range(rows)]
    _write_jsonl(folder / "train.jsonl", reviews)
    _write_jsonl(folder / "test.jsonl", [{**review, "text": review["text"] + "!"} for review in reviews])
    return folder


MODEL = "set by the fake_runs fixture"


@pytest.fixture
def fake_runs(fake_runs, monkeypatch, tiny_models) -> list[str]:
    """conftest's fake training (an `ok` row stored at once; the keys it ran, in order), with MODEL a tiny BERT."""
    monkeypatch.setitem(globals(), "MODEL", str(tiny_models["bert"]))
    return fake_runs


# What _matrix_args plans: 4 methods and QLoRA's control arm (LoRA at QLoRA's learning rate), x 2 seeds.
PLANNED = 10


def _matrix_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["matrix", "--model", MODEL, "--methods", "full", "lora", "ia3", "qlora", "--seeds", "0", "1",
            "--profile", "smoke", "--train-size", "8", "--eval-size", "8", "--val-size", "0",
            "--data-dir", str(data), "--results-dir", str(out), "--in-process", *extra]


def _keys(folder: Path) -> list[str]:
    return sorted(p.stem for p in (folder / "runs").glob("*.json"))


# --- corrupt records -------------------------------------------------------------------------------

def test_matrix_reruns_a_run_whose_record_is_corrupt(tmp_path, fake_runs, capsys):
    data, out = _small_data(tmp_path / "data"), tmp_path / "out"
    args = _matrix_args(data, out)
    assert main(args) == 0 and len(fake_runs) == PLANNED
    broken = out / "runs" / f"{fake_runs[3]}.json"
    original = broken.read_text()
    broken.write_text(original[: len(original) // 2])  # truncated
    fake_runs.clear()
    capsys.readouterr()
    assert main(args) == 0
    assert fake_runs == [broken.stem]  # only that run again; the others are skipped
    err = capsys.readouterr().err
    assert f"{broken.name}.corrupt" in err
    assert (out / "runs" / f"{broken.name}.corrupt").read_text() == original[: len(original) // 2]
    assert len(load_results(out)) == PLANNED and set(load_results(out)["status"]) == {"ok"}


def test_each_matrix_that_trains_is_logged_with_its_wall_time_and_the_summary_says_so(tmp_path, fake_runs, capsys):
    from peft_imdb.matrix_log import read_log

    data, out = _small_data(tmp_path / "data"), tmp_path / "out"
    assert main(_matrix_args(data, out, "--seeds", "0")) == 0
    assert main(_matrix_args(data, out)) == 0  # seed 1 trains now, seed 0 is stored
    assert main(_matrix_args(data, out)) == 0  # nothing to train: nothing logged
    first, second = read_log(out)
    assert (first.runs, second.runs) == (PLANNED // 2, PLANNED // 2) and first.wall_s > 0
    assert f"matrix: {PLANNED // 2} run(s) in" in capsys.readouterr().out
    assert main(["report", "--results-dir", str(out), "--figures-dir", str(tmp_path / "figures")]) == 0
    summary = (out / "summary.md").read_text()
    assert f"2 matrix command(s) trained {PLANNED} run(s) here" in summary


@pytest.mark.unit
def test_the_matrix_commands_that_trained_some_runs_are_found_by_when_the_runs_finished():
    from peft_imdb.matrix_log import MatrixEntry, entries_that_trained

    log = [MatrixEntry(f"2026-12-07T1{h}:00:00+00:00", 2, 60.0, 50.0, "cpu") for h in (1, 2, 3)]
    # Runs finished during the second matrix command (after the first one ended, by the time the second did).
    assert entries_that_trained(log, ["2026-12-07T11:30:00+00:00", "2026-12-07T12:00:00+00:00"]) == [log[1]]
    assert entries_that_trained(log, ["2026-12-07T10:59:00+00:00", "2026-12-07T12:59:00+00:00"]) == [log[0], log[2]]
    assert entries_that_trained(log, ["2026-12-07T13:00:01+00:00"]) == []  # after every command: none


@pytest.fixture
def fake_runs_with_predictions(fake_runs, monkeypatch) -> list[str]:
    """fake_runs whose stub also stores the run's predictions: half of its test reviews right (accuracy 0.5)."""
    import numpy as np

    from peft_imdb.results import save_predictions

    from conftest import store_ok_row

    def train_and_store(run, results_dir=None, imdb=None):
        fake_runs.append(run.key)
        reviews = run.config.eval_size
        labels = np.tile([0, 1], reviews // 2)
        predicted = np.where(np.arange(reviews) % 4 < 2, labels, 1 - labels)
        save_predictions(run.key, np.arange(reviews), labels, predicted, predicted * 1.0, results_dir)
        return store_ok_row(run, results_dir)

    monkeypatch.setattr(runner, "train_and_store", train_and_store)
    return fake_runs


def test_a_damaged_predictions_file_is_named_kept_aside_and_trained_again(tmp_path, fake_runs_with_predictions,
                                                                         capsys):
    data, out, figures = _small_data(tmp_path / "data"), tmp_path / "out", tmp_path / "figures"
    args = _matrix_args(data, out)
    assert main(args) == 0 and len(fake_runs_with_predictions) == PLANNED
    truncated, missing = (out / "predictions" / f"{key}.npz" for key in fake_runs_with_predictions[3:5])
    truncated.write_bytes(truncated.read_bytes()[:100])  # an interrupted copy, a Drive sync
    missing.unlink()
    capsys.readouterr()

    assert main(["report", "--results-dir", str(out), "--figures-dir", str(figures)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, err
    (on_truncated,) = [line for line in warnings if str(truncated) in line]
    (on_missing,) = [line for line in warnings if str(missing) in line]
    assert f"kept aside as {truncated.name}.corrupt" in on_truncated and "counts as not done" in on_truncated
    assert "predictions missing: interval not computed" in on_missing
    summary = (out / "summary.md").read_text()
    assert "predictions unreadable (seed " in summary and "predictions missing (seed " in summary
    assert summary.count("interval not computed") == 2  # the two rows of those runs, each marked
    assert (truncated.parent / f"{truncated.name}.corrupt").is_file() and not truncated.exists()

    fake_runs_with_predictions.clear()
    assert main(args) == 0
    assert fake_runs_with_predictions == [truncated.stem]  # trained again; the run without predictions is not
    assert truncated.is_file() and not missing.exists()


# --- shards and merge ------------------------------------------------------------------------------

def test_shards_split_the_runs_without_overlap_and_merge_folds_them(tmp_path, fake_runs, capsys):
    data = _small_data(tmp_path / "data")
    shards = [tmp_path / f"shard{k}" for k in (1, 2, 3)]
    for k, folder in enumerate(shards, start=1):
        assert main(_matrix_args(data, folder, "--shard", f"{k}/3")) == 0
    everything = sorted(fake_runs)
    assert len(everything) == len(set(everything)) == PLANNED  # every run once, on exactly one shard
    # Documented rule: position i in the list sorted by run key, i % N == K - 1.
    for k, folder in enumerate(shards, start=1):
        assert _keys(folder) == everything[k - 1::3]
    # The same share whatever the order of the flags (the list is sorted by key first).
    fake_runs.clear()
    reordered = _matrix_args(data, tmp_path / "again", "--shard", "2/3")
    reordered[4:8] = ["qlora", "ia3", "lora", "full"]
    assert main(reordered) == 0 and sorted(fake_runs) == everything[1::3]

    merged = tmp_path / "merged"
    capsys.readouterr()
    assert main(["merge", *map(str, shards), "--results-dir", str(merged)]) == 0
    assert _keys(merged) == everything and f"{PLANNED} added" in capsys.readouterr().out
    assert not list((merged / "runs").glob(".*"))  # no temporary file left behind
    # Merging again changes nothing.
    assert main(["merge", *map(str, shards), "--results-dir", str(merged)]) == 0
    assert "0 added, 0 replaced" in capsys.readouterr().out


def _record(key: str, finished_at: str, accuracy: float) -> RunResult:
    return RunResult(key=key, model="m", method="lora", seed=0, status="ok", accuracy=accuracy,
                     finished_at=finished_at)


def test_merge_keeps_the_newer_row_and_says_so(tmp_path, capsys):
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    save_result(_record("k1", "2026-01-01T10:00:00+00:00", 0.6), a)
    save_result(_record("k1", "2026-01-02T10:00:00+00:00", 0.7), b)  # newer: wins
    save_result(_record("k2", "2026-01-03T10:00:00+00:00", 0.8), a)  # newer: stays
    save_result(_record("k2", "2026-01-01T10:00:00+00:00", 0.1), b)
    save_result(_record("k3", "2026-01-01T10:00:00+00:00", 0.5), out)  # already in the target, older
    save_result(_record("k3", "2026-02-01T10:00:00+00:00", 0.9), b)
    assert main(["merge", str(a), str(b), "--results-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = {r.key: r.accuracy for r in read_results(out)}
    assert rows == {"k1": 0.7, "k2": 0.8, "k3": 0.9}
    assert "replaced k1" in printed and "replaced k3" in printed and "kept k2" in printed
    assert "2 added, 1 replaced" in printed
    assert _keys(a) == ["k1", "k2"] and _keys(b) == ["k1", "k2", "k3"]  # sources are left as they were


def test_merge_of_a_folder_without_runs_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["merge", str(tmp_path / "empty"), "--results-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "runs/" in err[0]
    assert not (tmp_path / "out").exists()


# --- bad input: one line on stderr, exit code 2, nothing written ------------------------------------

@pytest.mark.parametrize("shard", ["0/3", "4/3", "1/0", "a/b", "2", "1/2/3"])
def test_a_bad_shard_is_a_one_line_error(tmp_path, shard, fake_runs, capsys):
    data, out = _small_data(tmp_path / "data"), tmp_path / "out"
    assert main(_matrix_args(data, out, "--shard", shard)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --shard must be K/N")
    assert not fake_runs and not out.exists()


BAD_DATA = {
    "empty text": ([{"text": "good", "label": 1}, {"text": "  ", "label": 0}], "empty text"),
    "label 2": ([{"text": "good", "label": 1}, {"text": "bad", "label": 2}], "labels must be 0 (neg) or 1 (pos)"),
    "missing label": ([{"text": "good"}, {"text": "bad"}], "missing column(s) label"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_is_a_one_line_error(tmp_path, case, fake_runs, capsys):
    rows, message = BAD_DATA[case]
    data, out = _small_data(tmp_path / "data"), tmp_path / "out"
    _write_jsonl(data / "train.jsonl", rows)
    for command in (_matrix_args(data, out), ["run", "--method", "lora", "--model", MODEL, "--data-dir", str(data),
                                              "--results-dir", str(out)]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and message in err[0] and "train.jsonl" in err[0]
    assert not fake_runs and not out.exists()


@pytest.mark.parametrize("length", ["0", "-5"])
def test_a_non_positive_max_length_is_a_one_line_error(tmp_path, length, fake_runs, capsys):
    data, out = _small_data(tmp_path / "data"), tmp_path / "out"
    assert main(_matrix_args(data, out) + [f"--max-length={length}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --max-length must be positive, got {length}"]
    assert not fake_runs and not out.exists()


# --- failure isolation: one run fails, the others finish, exit code 1 -------------------------------

def test_one_failing_run_is_recorded_and_the_matrix_goes_on(tmp_path, data_dir, tiny_models, capsys):
    args = ["matrix", "--model", str(tiny_models["bert"]), "--methods", "lora", "full", "--seeds", "0", "--data-dir", str(data_dir),
            "--results-dir", str(tmp_path), "--profile", "smoke", "--train-size", "16", "--eval-size", "16",
            "--val-size", "0", "--max-length", "32", "--target-modules", "no_such_layer", "--in-process"]
    assert main(args) == 1  # something failed
    rows = load_results(tmp_path).set_index("method")
    reason = rows.loc["lora", "reason"]  # peft's own error: "...Error: No modules were targeted..."
    assert rows.loc["lora", "status"] == "failed" and "Error: " in reason and "target" in reason
    assert rows.loc["full", "status"] == "ok" and rows.loc["full", "accuracy"] >= 0  # ran after the failure
    assert "failed" in capsys.readouterr().out
    # A re-run retries only the failed run (a failed row does not count as done).
    assert main(args) == 1
    assert load_results(tmp_path).set_index("method").loc["full", "finished_at"] == rows.loc["full", "finished_at"]


# --- interruption: SIGKILL mid-matrix, the store stays valid, a re-run finishes the rest -----------

def _record_files(runs: Path) -> list[Path]:
    return sorted(runs.glob("*.json")) if runs.is_dir() else []


@pytest.mark.system
def test_a_killed_matrix_leaves_a_valid_store_and_a_rerun_finishes(tmp_path, data_dir, tiny_models, capsys):
    out, runs = tmp_path / "out", tmp_path / "out" / "runs"
    args = ["matrix", "--model", str(tiny_models["bert"]), "--methods", "full", "lora", "ia3", "--seeds", "0",
            "--data-dir", str(data_dir), "--results-dir", str(out), "--profile", "smoke", "--train-size", "16",
            "--eval-size", "16", "--val-size", "0", "--max-length", "32", "--in-process"]
    proc = subprocess.Popen([sys.executable, "-m", "peft_imdb", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _record_files(runs) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # as a dying Colab session: no handler, no cleanup
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the matrix ended before it could be killed"

    finished = _record_files(runs)
    assert 1 <= len(finished) < 3
    for path in finished:  # every record is whole: it parses and is a complete row
        row = RunResult.from_dict(json.loads(path.read_text()))
        assert row.status == "ok" and row.accuracy is not None and row.key == path.stem
    others = [p for p in runs.iterdir() if p.suffix != ".json"]
    assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in others)  # at most a temp file
    before = {r.key: r.finished_at for r in read_results(out)}
    assert len(before) == len(finished) and "warning" not in capsys.readouterr().err

    assert main(args) == 0  # the same command again
    assert f"skipping {len(finished)} finished run(s)" in capsys.readouterr().out
    after = {r.key: r for r in read_results(out)}
    assert len(after) == 3 and {r.status for r in after.values()} == {"ok"}
    assert all(after[key].finished_at == stamp for key, stamp in before.items())  # not re-trained


# --- resume: a run interrupted after an epoch's checkpoint goes on from it --------------------------

def test_resume_goes_on_from_the_last_epoch_checkpoint(tmp_path, imdb, tiny_models, monkeypatch):
    from dataclasses import replace

    from peft_imdb import tracking
    from peft_imdb.results import checkpoint_dir
    from peft_imdb.train import train_and_evaluate

    from conftest import tiny_config

    config = tiny_config(tiny_models["bert"], "full", epochs=2, val_size=0, resume=True)  # 4 steps an epoch
    original = tracking.Tracker.callback

    def interrupting(self):
        callback = original(self)

        def on_save(args, state, control, **kwargs):  # the session dies right after the first checkpoint
            raise RuntimeError("interrupted after the first checkpoint")

        callback.on_save = on_save
        return callback

    monkeypatch.setattr(tracking.Tracker, "callback", interrupting)
    first = runner.train_and_store(resolve(config), tmp_path, imdb)
    assert first.status == "failed" and "interrupted" in first.reason
    folder = checkpoint_dir(resolve(config).key, tmp_path)
    assert [p.name for p in folder.glob("checkpoint-*")] == ["checkpoint-4"]
    assert list(folder.glob("checkpoint-4/*.safetensors"))  # safetensors only
    monkeypatch.undo()

    steps: list[int] = []

    def counting(self):
        callback = original(self)
        callback.on_step_end = lambda args, state, control, **kwargs: steps.append(state.global_step)
        return callback

    monkeypatch.setattr(tracking.Tracker, "callback", counting)
    second = runner.train_and_store(resolve(config), tmp_path, imdb)
    assert second.status == "ok" and second.resumed_from_step == 4
    assert steps == [5, 6, 7, 8]  # only the second epoch was trained again
    assert not folder.exists()  # deleted once the run is stored
    uninterrupted = train_and_evaluate(resolve(replace(config, resume=False)), imdb)[0]
    assert uninterrupted.resumed_from_step is None
    assert second.confusion_matrix == uninterrupted.confusion_matrix


def test_resume_removes_a_checkpoint_cut_short_and_goes_on_from_the_whole_one(tmp_path, imdb, tiny_models,
                                                                             monkeypatch, capsys):
    import shutil

    from peft_imdb import tracking
    from peft_imdb.results import checkpoint_dir

    from conftest import tiny_config

    config = tiny_config(tiny_models["bert"], "full", epochs=3, val_size=0, resume=True)  # 4 steps an epoch
    original = tracking.Tracker.callback

    def interrupting(self):
        callback = original(self)

        def on_save(args, state, control, **kwargs):
            raise RuntimeError("interrupted after the first checkpoint")

        callback.on_save = on_save
        return callback

    monkeypatch.setattr(tracking.Tracker, "callback", interrupting)
    assert runner.train_and_store(resolve(config), tmp_path, imdb).status == "failed"
    monkeypatch.undo()
    folder = checkpoint_dir(resolve(config).key, tmp_path)
    # The next epoch's checkpoint, cut short by a stop mid-save: its files half there, no trainer_state.json last.
    cut = folder / "checkpoint-8"
    shutil.copytree(folder / "checkpoint-4", cut)
    (cut / "trainer_state.json").unlink()
    model = next(cut.glob("*.safetensors"))
    model.write_bytes(model.read_bytes()[:100])
    # And one whose trainer_state.json itself was being written.
    torn = folder / "checkpoint-12"
    shutil.copytree(folder / "checkpoint-4", torn)
    (torn / "trainer_state.json").write_text('{"global_step": 12, "log_hi')
    capsys.readouterr()

    second = runner.train_and_store(resolve(config), tmp_path, imdb)
    assert second.status == "ok" and second.resumed_from_step == 4 and second.train_steps == 12
    printed = capsys.readouterr().out
    assert f"removed the checkpoint {cut}: it was cut short while it was written" in printed
    assert f"removed the checkpoint {torn}" in printed


def _python_children(pid: int) -> list:
    """The run processes of matrix pid: the children of its fork server (not the server, not its resource tracker)."""
    import psutil

    try:
        servers = [p for p in psutil.Process(pid).children() if "forkserver" in " ".join(p.cmdline())]
        return [run for server in servers for run in server.children()]
    except psutil.NoSuchProcess:
        return []


def _wait_for(condition, timeout_s: float):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return None


def _isolated_matrix(data: Path, out: Path) -> subprocess.Popen:
    """A real matrix (one run, its own process) in a subprocess, on the offline model.

    1000 epochs of 40 short reviews: minutes of training (20 epochs took 3 s), so a test can kill it mid-run.
    """
    command = [sys.executable, "-m", "peft_imdb", "matrix", "--methods", "lora", "--seeds", "0",
               "--profile", "smoke", "--train-size", "40", "--eval-size", "8", "--val-size", "0",
               "--epochs", "1000", "--data-dir", str(data), "--results-dir", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.system
def test_a_killed_run_process_is_recorded_as_failed_and_the_matrix_says_so(tmp_path):
    data, out = _small_data(tmp_path / "data", rows=80), tmp_path / "out"
    matrix = _isolated_matrix(data, out)
    child = _wait_for(lambda: _python_children(matrix.pid), 60)
    assert child, "the run's process never started"
    time.sleep(8)  # into training, which would go on for minutes
    child[0].send_signal(signal.SIGKILL)
    output, _ = matrix.communicate(timeout=60)
    assert matrix.returncode == 1, output
    (row,) = read_results(out)
    assert row.status == "failed" and "killed by signal 9" in row.reason


@pytest.mark.system
def test_killing_the_matrix_kills_its_run_process_too(tmp_path):
    data, out = _small_data(tmp_path / "data", rows=80), tmp_path / "out"
    matrix = _isolated_matrix(data, out)
    child = _wait_for(lambda: _python_children(matrix.pid), 60)
    assert child, "the run's process never started"
    matrix.send_signal(signal.SIGKILL)
    matrix.wait(timeout=10)
    assert _wait_for(lambda: not child[0].is_running() or child[0].status() == "zombie", 15), \
        "the run's process outlived the killed matrix"


@pytest.mark.system
def test_a_record_says_which_process_trained_it(tmp_path, data_dir, tiny_models):
    """Memory peaks differ between a forked run process and the command's own: the record tells them apart."""
    args = ["matrix", "--model", str(tiny_models["bert"]), "--methods", "full", "--seeds", "0", "--profile", "smoke",
            "--train-size", "8", "--eval-size", "8", "--val-size", "0", "--max-length", "32",
            "--data-dir", str(data_dir)]
    assert main([*args, "--results-dir", str(tmp_path / "forked")]) == 0
    assert main([*args, "--results-dir", str(tmp_path / "here"), "--in-process"]) == 0
    (forked,), (here,) = read_results(tmp_path / "forked"), read_results(tmp_path / "here")
    assert forked.status == here.status == "ok"
    assert (forked.env["run_process"], here.env["run_process"]) == ("forked (matrix)", "command")


def _imported_stack(reply) -> None:
    reply.send(sorted(name for name in ("torch", "transformers", "peft", "peft_imdb.train") if name in sys.modules))


@pytest.mark.system
def test_a_run_process_starts_with_the_training_stack_already_imported():
    """No run pays the ~6 s import of torch, transformers and peft: its process is forked from a server that did."""
    from peft_imdb.parallel.process import run_context

    context = run_context()
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_imported_stack, args=(writer,))
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 0 and reader.poll(5)
    assert reader.recv() == ["peft", "peft_imdb.train", "torch", "transformers"]


@pytest.mark.system
def test_torchrun_trains_on_two_processes_and_rank_zero_writes_one_row(tmp_path, data_dir):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "peft_imdb", "run",
               "--method", "lora", "--profile", "smoke", "--train-size", "64", "--eval-size", "50",
               "--data-dir", str(data_dir), "--results-dir", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = read_results(out)
    assert row.status == "ok" and row.world_size == 2
    assert row.train_steps == 4  # 64 reviews, batch 8 per process, 2 processes: 4 steps, not 8
    from peft_imdb.results import load_predictions

    predictions = load_predictions(row.key, out)
    assert len(predictions) == 50 and predictions["review_id"].is_unique  # the whole test subset, not a shard
    assert row.accuracy == pytest.approx((predictions["label"] == predictions["predicted"]).mean())
    assert done.stdout.count(": ok") == 1  # one process reports
    assert not list(out.rglob("*.tmp"))
