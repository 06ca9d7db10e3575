"""`--executor ray`: a matrix's runs as tasks on a local Ray cluster, stored here as the local executor stores them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from peft_imdb.results import load_predictions, read_results

pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")

SRC = Path(__file__).resolve().parents[1] / "src"
SMOKE = ["--profile", "smoke", "--model", "minilm"]


def _matrix(out: Path, *args: str, data_dir: Path, wait: bool = True, **env: str):
    """`python -m peft_imdb matrix` on the smoke profile (one torch thread: a Ray worker's), into `out`."""
    command = [sys.executable, "-m", "peft_imdb", "matrix", *SMOKE, "--results-dir", str(out), "--data-dir",
               str(data_dir), *args]
    environment = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **env}
    if not wait:
        return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def cluster() -> str:
    """One local Ray cluster for the module's matrices to join (`--ray-address`): started once, not per matrix."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_a_matrix_on_ray_trains_each_run_once_and_equals_the_local_run(tmp_path, data_dir, cluster):
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    flags = ["--methods", "lora", "ia3", "--seeds", "0", "1", "--executor", "ray"]
    first = _matrix(ray_out, *flags, data_dir=data_dir)  # a cluster of its own, started by the command
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    rows = read_results(ray_out)
    assert len(rows) == 4 and all(r.status == "ok" for r in rows)
    assert "4/4 done" in first.stdout
    again = _matrix(ray_out, *flags, "--ray-address", cluster, data_dir=data_dir)
    assert again.returncode == 0 and "skipping 4 finished run(s)" in again.stdout
    assert len(read_results(ray_out)) == 4
    local = _matrix(local_out, "--methods", "lora", "--seeds", "1", data_dir=data_dir)
    assert local.returncode == 0, local.stderr[-3000:]
    (row,) = read_results(local_out)
    assert row.key in {r.key for r in rows}  # the same run: one name
    ours, theirs = load_predictions(row.key, ray_out), load_predictions(row.key, local_out)
    assert np.array_equal(ours["review_id"], theirs["review_id"])
    assert np.array_equal(ours["predicted"], theirs["predicted"])


def test_a_failing_run_is_stored_failed_and_the_rest_go_on(tmp_path, data_dir, cluster):
    out = tmp_path / "out"
    done = _matrix(out, "--methods", "full", "lora", "--seeds", "0", "--lr", "1e4", "--executor", "ray",
                   "--ray-address", cluster, data_dir=data_dir)  # a rate that makes the loss blow up: all diverge
    rows = read_results(out)
    assert done.returncode == 1 and len(rows) == 2
    assert all(r.status == "failed" and r.reason for r in rows)


def _ray_task_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any("ray::_train_task" in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def test_a_worker_killed_mid_run_is_retried_and_the_run_stored(tmp_path, data_dir, cluster):
    out = tmp_path / "out"
    # Killed 3 s into its task (still in its imports or model load, which take longer), the task is retried.
    matrix = _matrix(out, "--methods", "lora", "--seeds", "0", "--epochs", "4", "--executor", "ray",
                     "--ray-address", cluster, data_dir=data_dir, wait=False)
    deadline, killed = time.monotonic() + 120, None
    while killed is None and time.monotonic() < deadline and matrix.poll() is None:
        workers = _ray_task_processes()
        if workers:
            time.sleep(3)  # well into the run
            workers[0].kill()
            killed = workers[0].pid
        time.sleep(0.2)
    output = matrix.communicate(timeout=600)[0]
    assert killed is not None, output[-3000:]
    assert matrix.returncode == 0, output[-3000:]
    (row,) = read_results(out)
    assert row.status == "ok"


def test_without_ray_the_executor_is_a_one_line_error(tmp_path, data_dir):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('no ray here')\n")
    done = _matrix(tmp_path / "out", "--methods", "lora", "--executor", "ray", data_dir=data_dir,
                   PYTHONPATH=f"{blocker}{os.pathsep}{SRC}")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        'error: --executor ray needs Ray, which is not installed here: pip install -e ".[ray]"']
