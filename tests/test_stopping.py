"""A stop by signal: SIGTERM (Colab's interrupt, Slurm's preemption, docker stop) ends a matrix like Ctrl-C does."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from peft_imdb.errors import Stopped
from peft_imdb.results import read_results
from peft_imdb.stopping import on_signals, storing

from test_reliability import _small_data, _wait_for

SRC = Path(__file__).resolve().parents[1] / "src"


# --- a stop waits for a run being stored ------------------------------------------------------------

@pytest.mark.unit
def test_a_stop_during_storing_comes_once_the_block_has_run_to_its_end():
    steps = []
    with on_signals():
        with pytest.raises(Stopped) as stopped:
            with storing():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.1)  # the handler has run by now: the block goes on
                steps.append("stored")
            steps.append("after")  # never reached: the stop comes as the block ends
    assert steps == ["stored"]
    assert stopped.value.signum == signal.SIGTERM and stopped.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the previous handler is back


@pytest.mark.unit
def test_a_stop_outside_storing_is_raised_at_once_and_a_second_signal_waits_for_its_cleanup():
    cleaned = []
    with on_signals():
        with pytest.raises(Stopped) as stopped:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # interrupted by the stop
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # a second stop while cleaning up: ignored
                time.sleep(0.1)
                cleaned.append(True)
    assert stopped.value.signum == signal.SIGINT and stopped.value.exit_code == 130 and cleaned == [True]


# --- SIGTERM to a real matrix mid-run ----------------------------------------------------------------

EPOCHS = 40  # of 5 steps each: a tiny model runs ~90 steps a second, so the run is still going when it is stopped


def _matrix(data: Path, out: Path, model: Path) -> list[str]:
    """A matrix of one run in its own process, saving a checkpoint each epoch."""
    return [sys.executable, "-m", "peft_imdb", "matrix", "--model", str(model), "--methods", "full", "--seeds", "0",
            "--profile", "smoke", "--train-size", "40", "--eval-size", "8", "--val-size", "0", "--max-length", "32",
            "--epochs", str(EPOCHS), "--resume", "--data-dir", str(data), "--results-dir", str(out)]


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoints/*/checkpoint-*/trainer_state.json"))


def test_sigterm_stops_a_matrix_within_seconds_and_resume_goes_on_from_a_whole_checkpoint(tmp_path, tiny_models):
    data, out = _small_data(tmp_path / "data", rows=80), tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = _matrix(data, out, tiny_models["bert"])
    matrix = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert _wait_for(lambda: _checkpoints(out), 240), "no checkpoint was written"
        time.sleep(0.5)  # mid-run: more epochs, and checkpoints, are being written
        assert matrix.poll() is None, "the run ended before it could be stopped"
        processes = _descendants(matrix.pid)
        assert processes, "the run's process never started"
        sent = time.monotonic()
        matrix.send_signal(signal.SIGTERM)  # to the matrix alone, as docker stop does
        stdout, stderr = matrix.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if matrix.poll() is None:
            matrix.kill()
    assert matrix.returncode == 143, stderr[-3000:]
    assert took < 10, f"the matrix took {took:.1f} s to stop"
    assert "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM during run ") and "re-run the same command" in last, last
    assert f"(it goes on from its last whole checkpoint, {out / 'checkpoints'}" in last
    assert _wait_for(lambda: all(_gone(p) for p in processes), 10), "a process outlived the stopped matrix"
    assert not list(out.glob("claims/*")), "the run's claim was left behind"
    assert not read_results(out) and not list(out.glob("predictions/*")), "the stopped run stored something"
    assert not list(out.rglob("*.tmp"))
    named = Path(re.search(r"last whole checkpoint, (\S+)\)", last).group(1))
    assert (named / "trainer_state.json").is_file() and list(named.glob("*.safetensors"))
    folder = named.parent

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    (row,) = read_results(out)
    assert row.status == "ok" and row.resumed_from_step == int(named.name.split("-")[1]) > 0
    assert row.train_steps == EPOCHS * 5  # the rest of the run, on top of the checkpoint's
    assert not folder.exists()  # deleted once the run is stored
