"""Workers sharing a results folder: claims, heartbeats, take-over of abandoned claims, two real matrices."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import peft_imdb.runner as runner
from peft_imdb.parallel import claims
from peft_imdb.cli import main
from peft_imdb.config import RunConfig
from peft_imdb.results import RunResult, read_results, save_result
from peft_imdb.resolved import resolve

import test_reliability
from test_reliability import PLANNED, _matrix_args, _small_data, _wait_for

SRC = Path(__file__).resolve().parents[1] / "src"


def _dead_pid() -> int:
    """A pid that no process on this host has (a finished, reaped child's)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write_claim(root: Path, key: str, *, host: str | None = None, pid: int | None = None,
                 heartbeat_age_s: float = 0.0) -> Path:
    """A claim file as another worker would have left it."""
    path = claims.claim_path(key, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    moment = time.time() - heartbeat_age_s
    path.write_text(json.dumps({"key": key, "host": host or socket.gethostname(), "pid": pid or os.getpid(),
                                "token": "theirs", "started": moment, "heartbeat": moment}))
    os.utime(path, (moment, moment))
    return path


# --- the claim itself -------------------------------------------------------------------------------

def test_a_claim_names_its_owner_is_exclusive_and_is_released(tmp_path):
    claim = claims.acquire("k1", tmp_path)
    assert isinstance(claim, claims.Claim)
    data = json.loads((tmp_path / "claims" / "k1.json").read_text())
    assert data["host"] == socket.gethostname() and data["pid"] == os.getpid()
    assert data["started"] <= data["heartbeat"] <= time.time() and data["started_at"] and data["heartbeat_at"]
    other = claims.acquire("k1", tmp_path)  # held by a live process: not ours to take
    assert isinstance(other, claims.Holder) and other.owner == f"{socket.gethostname()}:{os.getpid()}"
    assert "claimed by " + other.owner in other.describe()
    claim.release()
    assert not (tmp_path / "claims" / "k1.json").exists()
    assert not list((tmp_path / "claims").iterdir())  # no temporary file either


def test_the_heartbeat_keeps_a_claim_alive(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.HEARTBEAT_ENV, "0.2")
    claim = claims.acquire("k1", tmp_path)
    first = json.loads(claim.path.read_text())["heartbeat"]
    assert _wait_for(lambda: json.loads(claim.path.read_text())["heartbeat"] > first, 10)
    claim.release()


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    path = _write_claim(tmp_path, "k1", pid=_dead_pid())
    lines: list[str] = []
    claim = claims.acquire("k1", tmp_path, log=lines.append)
    assert isinstance(claim, claims.Claim)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert len(lines) == 1 and "taking over" in lines[0] and "is gone" in lines[0]
    claim.release()


def test_a_claim_from_another_host_is_taken_over_only_after_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.TIMEOUT_ENV, "60")
    _write_claim(tmp_path, "fresh", host="other-host", pid=1234, heartbeat_age_s=5)
    _write_claim(tmp_path, "old", host="other-host", pid=1234, heartbeat_age_s=120)
    assert isinstance(claims.acquire("fresh", tmp_path), claims.Holder)
    lines: list[str] = []
    taken = claims.acquire("old", tmp_path, log=lines.append)
    assert isinstance(taken, claims.Claim) and "no heartbeat for" in lines[0]
    taken.release()


@pytest.mark.unit
def test_a_bad_timeout_setting_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(claims.TIMEOUT_ENV, "soon")
    with pytest.raises(claims.UserError, match="PEFT_IMDB_CLAIM_TIMEOUT_S must be a positive number"):
        claims.claim_timeout_s()


@pytest.mark.system
def test_only_one_of_many_takers_gets_a_stale_claim(tmp_path):
    _write_claim(tmp_path, "k1", host="other-host", pid=1, heartbeat_age_s=10_000)
    barrier, got = threading.Barrier(8), []

    def take():
        barrier.wait()
        got.append(claims.acquire("k1", tmp_path, log=lambda line: None))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [c for c in got if isinstance(c, claims.Claim)]
    assert len(winners) == 1 and len(got) == 8
    assert json.loads(winners[0].path.read_text())["token"] == winners[0].holder.token
    winners[0].release()
    assert not list((tmp_path / "claims").iterdir())  # nothing left: no stale copies, no temporaries


# --- matrix on a shared folder (training stubbed) ---------------------------------------------------

@pytest.fixture
def fake_runs(fake_runs, monkeypatch, tiny_models) -> list[str]:
    """conftest's fake training, which checks that each run is claimed while it trains."""
    monkeypatch.setattr(test_reliability, "MODEL", str(tiny_models["bert"]))  # what _matrix_args trains
    stub = runner.train_and_store

    def train_and_store(run, results_dir=None, imdb=None) -> RunResult:
        assert claims.claim_path(run.key, results_dir).is_file()  # claimed while it trains
        return stub(run, results_dir, imdb)

    monkeypatch.setattr(runner, "train_and_store", train_and_store)
    return fake_runs


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])


@pytest.mark.system
def test_matrix_skips_a_claimed_run_and_picks_it_up_at_the_end_when_its_worker_died(tmp_path, fake_runs,
                                                                                      monkeypatch, capsys):
    from peft_imdb.cli import _configs, build_parser
    from peft_imdb.plan import with_control_arms

    data, out = _small_data(tmp_path / "data"), tmp_path / "out"
    args = _matrix_args(data, out)
    planned = _configs(build_parser().parse_args(args), [test_reliability.MODEL], ["full", "lora", "ia3", "qlora"], [0, 1])
    keys = sorted(resolve(c).key for c in with_control_arms(planned))
    assert len(keys) == PLANNED
    busy, gone = keys[0], keys[1]
    alive, dying = _sleeper(), _sleeper()  # two other workers on this host
    try:
        _write_claim(out, busy, pid=alive.pid)
        _write_claim(out, gone, pid=dying.pid)
        stub = runner.train_and_store

        def train_and_store(run, results_dir=None, imdb=None):
            if dying.poll() is None:  # the second worker dies while we train: its claim is left behind
                dying.kill()
                dying.wait()
            return stub(run, results_dir, imdb)

        monkeypatch.setattr(runner, "train_and_store", train_and_store)
        assert main(args) == 0
        printed = capsys.readouterr().out
        host = socket.gethostname()
        assert f"{busy}: claimed by {host}:{alive.pid}" in printed
        assert f"{gone}: claimed by {host}:{dying.pid}" in printed
        assert f"1 run(s) still being trained by other workers: {busy} ({host}:{alive.pid})" in printed
        assert sorted(fake_runs) == keys[1:] and fake_runs[-1] == gone  # `gone` picked up at the end
        assert f"{gone}: taking over the claim of {host}:{dying.pid}: its process" in printed
        assert sorted(_trained(printed)) == sorted(fake_runs)  # one "trained <key>" line per run
        assert [p.name for p in (out / "claims").iterdir()] == [f"{busy}.json"]  # ours released, theirs kept
    finally:
        for worker in (alive, dying):
            worker.kill()
            worker.wait()


def test_a_run_finished_by_another_worker_meanwhile_is_not_trained_again(tmp_path, fake_runs, capsys):
    data, out = _small_data(tmp_path / "data"), tmp_path / "out"
    args = _matrix_args(data, out, "--force")
    assert main(args) == 0 and len(fake_runs) == PLANNED
    first = list(fake_runs)
    fake_runs.clear()
    stub = runner.train_and_store

    def train_and_store(run, results_dir=None, imdb=None):  # another worker finishes the last run meanwhile
        if not fake_runs:
            record = RunResult(key=first[-1], model="m", method="lora", seed=1, status="ok", accuracy=0.9)
            save_result(record, out)
        return stub(run, results_dir, imdb)

    runner.train_and_store, saved = train_and_store, runner.train_and_store
    try:
        assert main(args) == 0
    finally:
        runner.train_and_store = saved
    assert fake_runs == first[:-1]
    assert f"{first[-1]}: finished by another worker (ok), not trained here" in capsys.readouterr().out


def test_merge_never_copies_claims(tmp_path, capsys):
    save_result(RunResult(key="k1", model="m", method="lora", seed=0, status="ok", accuracy=0.5), tmp_path / "a")
    _write_claim(tmp_path / "a", "k2")
    assert main(["merge", str(tmp_path / "a"), "--results-dir", str(tmp_path / "out")]) == 0
    assert not (tmp_path / "out" / "claims").exists() and [r.key for r in read_results(tmp_path / "out")] == ["k1"]


# --- real matrices on tiny models, in subprocesses --------------------------------------------------

def _tiny_matrix(model: Path, data: Path, out: Path, *extra: str, epochs: str = "20") -> list[str]:
    return [sys.executable, "-m", "peft_imdb", "matrix", "--model", str(model), "--methods", "full", "lora", "ia3",
            "--seeds", "0", "1", "--profile", "smoke", "--train-size", "40", "--eval-size", "8", "--val-size", "0",
            "--max-length", "32", "--epochs", epochs, "--data-dir", str(data), "--results-dir", str(out),
            "--in-process", *extra]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _trained(output: str) -> list[str]:
    return re.findall(r"^trained (\S+)$", output, re.M)


@pytest.mark.system
def test_two_matrices_on_one_folder_train_every_run_once_and_sooner(tmp_path, tiny_models):
    """Two workers on one folder against one worker alone on another, all three started together.

    Run side by side, the shared machine's load (other jobs come and go) falls on both alike; measured one
    after the other, it swamps the difference. Each worker has one thread (OMP_NUM_THREADS=1). The pair
    shares six runs (three each), the lone worker trains all six. (Without claims each of the pair would
    train all six too; what tells the two apart for sure is the "trained <key>" lines: each run once.)
    """
    data = _small_data(tmp_path / "data", rows=80)
    model, shared, alone = tiny_models["bert"], tmp_path / "shared", tmp_path / "alone"

    def start(out: Path) -> subprocess.Popen:
        return subprocess.Popen(_tiny_matrix(model, data, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=_env())

    began = time.monotonic()
    workers = [start(shared), start(shared), start(alone)]
    finished: dict[int, float] = {}
    while len(finished) < 3 and time.monotonic() - began < 900:
        for i, worker in enumerate(workers):
            if i not in finished and worker.poll() is not None:
                finished[i] = time.monotonic() - began
        time.sleep(0.1)
    outputs = [w.communicate(timeout=60) for w in workers]
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    trained = [_trained(stdout) for stdout, _ in outputs]
    assert len(trained[2]) == 6
    assert sorted(trained[0] + trained[1]) == sorted(trained[2])  # each of the six runs trained exactly once
    assert trained[0] and trained[1]  # both worked
    assert sorted(r.key for r in read_results(shared)) == sorted(trained[2])
    assert not list((shared / "claims").iterdir())  # all claims released
    pair_s, single_s = max(finished[0], finished[1]), finished[2]
    # The pair finishes no later than one worker doing all of it (the machine is shared: a wide margin).
    assert pair_s <= 1.2 * single_s, f"pair {pair_s:.1f}s vs one worker {single_s:.1f}s"
    print(f"pair {pair_s:.1f}s, one worker {single_s:.1f}s")


@pytest.mark.system
def test_the_claim_of_a_killed_matrix_is_taken_over(tmp_path, tiny_models):
    data, out = _small_data(tmp_path / "data", rows=80), tmp_path / "out"
    command = _tiny_matrix(tiny_models["bert"], data, out)  # killed as soon as it claims its run
    command[command.index("ia3") - 2: command.index("ia3") + 1] = ["lora"]
    command[command.index("--seeds") + 1: command.index("--seeds") + 3] = ["0"]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
                              start_new_session=True)
    try:
        claim = _wait_for(lambda: next((out / "claims").glob("*.json"), None) if (out / "claims").is_dir()
                          else None, 120)
        assert claim, "the worker never claimed its run"
        os.killpg(victim.pid, signal.SIGKILL)  # as a dying Colab session: no handler, no cleanup
        assert json.loads(claim.read_text())["pid"] == victim.pid
    finally:
        victim.wait(timeout=30)
    assert claim.is_file() and not read_results(out)  # killed while training: its claim is left behind
    rerun = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"taking over the claim of {socket.gethostname()}:{victim.pid}" in rerun.stdout
    assert _trained(rerun.stdout) == [claim.stem]
    assert not claim.exists() and [r.status for r in read_results(out)] == ["ok"]
