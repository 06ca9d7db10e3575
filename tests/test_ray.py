"""`--executor ray`: a matrix's runs as tasks on a local Ray cluster, stored here as the local executor stores them.

The matrices run in this process (`cli.main`): a Ray worker is a process of its own either way, and one driver for
the module lets the cluster keep its workers (their imports) from one matrix to the next."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from peft_imdb.results import load_predictions, read_results

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")

SMOKE = ["--profile", "smoke", "--model", "minilm"]


def _matrix(capsys, out: Path, *args: str, data_dir: Path, stream: str = "out") -> tuple[int, str]:
    """`python -m peft_imdb matrix` on the smoke profile into `out`, in this process: its exit code and what it
    printed on `stream` (out or err)."""
    from peft_imdb.cli import main

    capsys.readouterr()
    code = main(["matrix", *SMOKE, "--results-dir", str(out), "--data-dir", str(data_dir), *args])
    return code, getattr(capsys.readouterr(), stream)


@pytest.fixture()
def one_thread():
    """torch on one thread, as in a Ray worker asking for one CPU: runs compared across the two train alike."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_matrix_on_ray_trains_each_run_once_and_equals_the_local_run(tmp_path, data_dir, capsys, one_thread):
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    flags = ["--methods", "full", "lora", "ia3", "--seeds", "0", "1", "--executor", "ray"]
    assert not ray.is_initialized()
    code, printed = _matrix(capsys, ray_out, *flags, data_dir=data_dir)  # no address: a cluster of its own
    assert code == 0, printed[-3000:]
    rows = read_results(ray_out)
    assert len(rows) == 6 and all(r.status == "ok" for r in rows)
    assert "6/6 done" in printed and not ray.is_initialized()  # the command's cluster is gone with it
    code, printed = _matrix(capsys, ray_out, *flags, data_dir=data_dir)
    assert code == 0 and "skipping 6 finished run(s)" in printed
    assert len(read_results(ray_out)) == 6
    code, printed = _matrix(capsys, local_out, "--methods", "lora", "--seeds", "1", "--in-process",
                            data_dir=data_dir)
    assert code == 0, printed[-3000:]
    (row,) = read_results(local_out)
    assert row.key in {r.key for r in rows}  # the same run: one name
    ours, theirs = load_predictions(row.key, ray_out), load_predictions(row.key, local_out)
    assert np.array_equal(ours["review_id"], theirs["review_id"])
    assert np.array_equal(ours["predicted"], theirs["predicted"])


@pytest.fixture(scope="module")
def cluster() -> str:
    """One local Ray cluster that the later matrices join (`--ray-address`), and this process is their driver."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_a_failing_run_is_stored_failed_and_the_rest_go_on(tmp_path, data_dir, capsys, cluster):
    out = tmp_path / "out"
    code, printed = _matrix(capsys, out, "--methods", "full", "lora", "--seeds", "0", "--lr", "1e4", "--executor",
                            "ray", "--ray-address", cluster, data_dir=data_dir)  # a rate at which the loss blows up
    rows = read_results(out)
    assert code == 1 and len(rows) == 2, printed[-3000:]  # the first failure did not stop the second run
    assert all(r.status == "failed" and r.reason for r in rows)


def _kill_a_task_worker(killed: list[int], stop: threading.Event) -> None:
    """Kill the first Ray worker seen running a run, a second into it."""
    while not stop.is_set():
        for process in psutil.process_iter(["cmdline"]):
            if any("ray::_train_task" in part for part in process.info["cmdline"] or []):
                time.sleep(1)
                process.kill()
                killed.append(process.pid)
                return
        time.sleep(0.1)


def test_a_worker_killed_mid_run_is_retried_and_the_run_stored(tmp_path, data_dir, capsys, cluster):
    out, killed, stop = tmp_path / "out", [], threading.Event()
    killer = threading.Thread(target=_kill_a_task_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        code, printed = _matrix(capsys, out, "--methods", "lora", "--seeds", "0", "--epochs", "3", "--executor",
                                "ray", "--ray-address", cluster, data_dir=data_dir)
    finally:
        stop.set()
        killer.join()
    assert killed, printed[-3000:]
    assert code == 0, printed[-3000:]
    (row,) = read_results(out)
    assert row.status == "ok"


def test_without_ray_the_executor_is_a_one_line_error(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where Ray is not installed
    code, err = _matrix(capsys, tmp_path / "out", "--methods", "lora", "--executor", "ray", data_dir=data_dir,
                        stream="err")
    assert code == 2
    assert err.strip().splitlines() == [
        'error: --executor ray needs Ray, which is not installed here: pip install -e ".[ray]"']
    assert not read_results(tmp_path / "out")
