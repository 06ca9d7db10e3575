"""The student's environment: a results path that is a file, a read-only or full folder, a report killed halfway.

Tests run as root here, where chmod does not stop writes. Read-only and full folders are real tmpfs mounts
(`mount -t tmpfs -o ro` / `-o size=...`) where mounting is allowed; the writability probe is also mocked, so
the read-only case is tested either way. Where tmpfs cannot be mounted, the full disk is simulated by a
sitecustomize that makes results.atomic_write fail with ENOSPC halfway through a record in the subprocess.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from peft_imdb import results as results_module
from peft_imdb.parallel import claims
from peft_imdb.results import STORE_ERROR_EXIT
from peft_imdb.cli import main

from test_claims import _env, _trained
from test_reliability import _matrix_args, _small_data, _wait_for

SRC = Path(__file__).resolve().parents[1] / "src"

# Loaded by every Python process of a test (PYTHONPATH), spawned run processes included.
FAULTS = textwrap.dedent('''
    import os

    fault = os.environ.get("PEFT_IMDB_TEST_FAULT", "")
    if fault.startswith("enospc:"):  # records and predictions under this folder hit a full disk halfway
        import errno
        import peft_imdb.results as results

        folder, original = fault.split(":", 1)[1], results.atomic_write

        def atomic_write(path, write):
            if not str(path).startswith(folder) or path.parent.name not in ("runs", "predictions"):
                return original(path, write)

            def half(handle):
                handle.write(b'{"half": ')
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            return original(path, half)

        results.atomic_write = atomic_write
    elif fault.startswith("kill-savefig:"):  # the process is SIGKILLed while writing the n-th figure
        import signal
        from matplotlib.figure import Figure

        count, original = [0], Figure.savefig

        def savefig(self, target, *args, **kwargs):
            count[0] += 1
            if count[0] == int(fault.split(":")[1]):
                target.write(b"\\x89PNG half a figure")
                target.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, target, *args, **kwargs)

        Figure.savefig = savefig
''')


@pytest.fixture
def fault_env(tmp_path):
    """Environment for a subprocess with the fault hooks on its path; set PEFT_IMDB_TEST_FAULT to use one."""
    folder = tmp_path / "faults"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(FAULTS)
    env = _env()
    env["PYTHONPATH"] = f"{folder}{os.pathsep}{env['PYTHONPATH']}"
    return env


def _mount_tmpfs(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def _fill(folder: Path) -> None:
    """Write to folder until the disk is full."""
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


COMMANDS = {
    "matrix": lambda data, out: _matrix_args(data, out),
    "run": lambda data, out: ["run", "--method", "lora", "--model", "m", "--profile", "smoke", "--data-dir", str(data),
                              "--results-dir", str(out)],
    "ablation": lambda data, out: ["ablation", "rank", "--model", "m", "--profile", "smoke", "--data-dir", str(data),
                                   "--results-dir", str(out), "--figures-dir", str(out.parent / "figs")],
    "merge": lambda data, out: ["merge", str(data), "--results-dir", str(out)],
    "report": lambda data, out: ["report", "--results-dir", str(out), "--figures-dir", str(out.parent / "figs")],
}


# --- a results path that cannot hold the store: exit 2 before anything trains -----------------------

@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_file_as_results_folder_is_a_one_line_error(tmp_path, command, fake_runs, capsys):
    data = _small_data(tmp_path / "data")
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    for out, says in ((blocker, f"{blocker} is a file"), (blocker / "sub", f"{blocker} is a file, not a folder")):
        assert main(COMMANDS[command](data, out)) == 2
        line = _one_line_error(capsys.readouterr().err)
        assert says in line and "--results-dir" in line
    assert not fake_runs and blocker.read_text() == "not a folder"


def test_a_file_as_figures_folder_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "figs").write_text("")
    assert main(["report", "--results-dir", str(tmp_path / "out"), "--figures-dir", str(tmp_path / "figs")]) == 2
    assert "--figures-dir" in _one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_read_only_results_folder_is_a_one_line_error(tmp_path, command, fake_runs, monkeypatch, capsys):
    """The writability probe is mocked: as root, chmod a-w does not stop writes."""
    data, out = _small_data(tmp_path / "data"), tmp_path / "out"
    out.mkdir()

    def refused(folder):
        if Path(folder) == out:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return probe(folder)

    probe = results_module._probe
    monkeypatch.setattr(results_module, "_probe", refused)
    target = out / "ablations" / "rank" if command == "ablation" else out
    assert main(COMMANDS[command](data, out)) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert f"{target}" in line and "is not writable (Permission denied)" in line and "--results-dir" in line
    assert not fake_runs and not list(out.iterdir())


@pytest.mark.system
def test_a_read_only_mount_is_a_one_line_error(tmp_path, fake_runs, capsys):
    """A real read-only file system (a tmpfs mounted ro), which stops root too."""
    out = tmp_path / "ro"
    if not _mount_tmpfs(out, "ro,size=64k"):
        pytest.skip("cannot mount a tmpfs here (not root?); the mocked probe test covers this case")
    try:
        data = _small_data(tmp_path / "data")
        assert main(_matrix_args(data, out)) == 2
        line = _one_line_error(capsys.readouterr().err)
        assert f"results folder {out} is not writable (Read-only file system)" in line
        assert not fake_runs
    finally:
        _umount(out)


@pytest.mark.system
def test_a_folder_on_a_disk_already_full_is_a_one_line_error(tmp_path, fake_runs, capsys):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=16k"):
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        _fill(disk)
        assert main(_matrix_args(_small_data(tmp_path / "data"), disk / "results")) == 2
        line = _one_line_error(capsys.readouterr().err)
        assert "No space left on device" in line and "free some space" in line and not fake_runs
    finally:
        _umount(disk)


# --- a disk that fills up while a run trains ---------------------------------------------------------

@pytest.mark.system
@pytest.mark.parametrize("full", ["tmpfs", "hook"])
@pytest.mark.parametrize("mode", ["in-process", "isolated"])
def test_a_full_disk_after_training_prints_the_record_and_leaves_no_partial_file(tmp_path, tiny_models, mode, full,
                                                                                 fault_env):
    """tmpfs: a real 256k disk, filled while the run trains; hook: the record's write fails halfway (ENOSPC)."""
    data, disk = _small_data(tmp_path / "data", rows=80), tmp_path / "disk"
    mounted = full == "tmpfs" and _mount_tmpfs(disk, "size=256k")
    if full == "tmpfs" and not mounted:
        pytest.skip("cannot mount a tmpfs here (not root?); the hook variant covers this case")
    out = disk / "results"
    command = [sys.executable, "-m", "peft_imdb", "matrix", "--model", str(tiny_models["bert"]), "--methods", "lora",
               "--seeds", "0", "--profile", "smoke", "--train-size", "40", "--eval-size", "8", "--val-size", "0",
               "--max-length", "32", "--epochs", "10", "--data-dir", str(data), "--results-dir", str(out)]
    command += ["--in-process"] if mode == "in-process" else []
    if not mounted:  # no tmpfs: the record's write fails with ENOSPC halfway, through the fault hook
        fault_env["PEFT_IMDB_TEST_FAULT"] = f"enospc:{out}"
    try:
        matrix = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fault_env)
        if mounted:  # the disk fills up once the run is claimed, i.e. while it trains
            claimed = _wait_for(lambda: list(out.glob("claims/*.json")), 120)
            assert claimed, "the run was never claimed"
            _fill(disk)
        stdout, stderr = matrix.communicate(timeout=600)
        assert matrix.returncode == STORE_ERROR_EXIT == 3, stderr[-3000:]
        assert "Traceback" not in stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error")]
        assert len(errors) == 1, stderr[-3000:]
        assert re.match(r"error: could not write the record of run \S+ to .*\(No space left on device\); its metrics "
                        r"are printed above as JSON; free some space or choose another --results-dir", errors[0])
        # The whole record, as JSON, on stdout: the numbers survive.
        text = stdout.split("could not be stored; here it is in full:\n", 1)[1]
        record = json.JSONDecoder().raw_decode(text)[0]
        assert record["status"] == "ok" and 0 <= record["accuracy"] <= 1 and record["confusion_matrix"]
        assert record["trainable_params"] > 0 and record["config"]["method"] == "lora"
        assert record["key"] in errors[0] and not _trained(stdout)
        # No record, no predictions without their record, no temporary file, no claim left.
        leftovers = [p for p in out.rglob("*") if p.is_file()]
        assert leftovers == [], leftovers
    finally:
        if mounted:
            _umount(disk)


def test_a_write_refused_in_the_main_process_is_one_line_and_exit_3(tmp_path, monkeypatch, capsys):
    import peft_imdb.report as report

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out" / "summary.md"))

    monkeypatch.setattr(report, "write_report", full)
    assert main(["report", "--results-dir", str(tmp_path / "out"), "--figures-dir", str(tmp_path / "figs")]) == 3
    line = _one_line_error(capsys.readouterr().err)
    assert "summary.md (No space left on device)" in line and "free some space" in line


# --- a report killed halfway leaves the previous one intact ------------------------------------------

def _report_store(root: Path) -> None:
    from test_report import fake_run

    for method in ("full", "lora", "qlora", "ia3"):
        for seed in range(2):
            fake_run(root, method, seed)


def _snapshot(figures: Path, summary: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in figures.glob("*.png")}
    files["summary.md"] = summary.read_bytes()
    return files


def _assert_intact(old: dict[str, bytes], figures: Path, summary: Path) -> None:
    from PIL import Image

    for name in old:
        path = summary if name == "summary.md" else figures / name
        if name != "summary.md":
            with Image.open(path) as image:  # every figure still opens as a PNG
                image.verify()
    assert summary.read_bytes() == old["summary.md"]  # the summary is the previous one, whole


def test_a_report_interrupted_halfway_leaves_the_previous_report(tmp_path, monkeypatch, capsys):
    from matplotlib.figure import Figure

    root, figures = tmp_path / "results", tmp_path / "figures"
    _report_store(root)
    args = ["report", "--results-dir", str(root), "--figures-dir", str(figures)]
    assert main(args) == 0
    old = _snapshot(figures, root / "summary.md")
    assert len(old) >= 5

    from test_report import fake_run

    fake_run(root, "lora", 2)  # a new run: the next report differs
    count, original = [0], Figure.savefig

    def savefig(self, target, *a, **k):
        count[0] += 1
        if count[0] == 3:
            target.write(b"\x89PNG half")
            raise KeyboardInterrupt  # Ctrl-C halfway through the third figure
        return original(self, target, *a, **k)

    monkeypatch.setattr(Figure, "savefig", savefig)
    assert main(args) == 130
    _assert_intact(old, figures, root / "summary.md")
    assert sum(old[p.name] != p.read_bytes() for p in figures.glob("*.png")) == 2  # two new, the rest old
    assert not [p for p in figures.iterdir() if p.name.startswith(".")]  # the half figure was removed
    monkeypatch.undo()
    assert main(args) == 0 and (root / "summary.md").read_bytes() != old["summary.md"]


@pytest.mark.system
def test_a_report_killed_halfway_leaves_the_previous_report(tmp_path, fault_env):
    root, figures = tmp_path / "results", tmp_path / "figures"
    _report_store(root)
    command = [sys.executable, "-m", "peft_imdb", "report", "--results-dir", str(root), "--figures-dir", str(figures)]
    assert subprocess.run(command, env=fault_env, capture_output=True, timeout=300).returncode == 0
    old = _snapshot(figures, root / "summary.md")

    from test_report import fake_run

    fake_run(root, "lora", 2)
    killed = subprocess.run(command, env={**fault_env, "PEFT_IMDB_TEST_FAULT": "kill-savefig:2"},
                            capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    _assert_intact(old, figures, root / "summary.md")
    assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in figures.iterdir() if p.name not in old)
