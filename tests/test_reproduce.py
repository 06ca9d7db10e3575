"""`reproduce`: re-train a store's runs into a scratch folder and compare them run by run; --report-to tensorboard."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from peft_imdb.cli import main
from peft_imdb.reproduce import choose_records, compare, same_stack
from peft_imdb.results import load_predictions, predictions_path, read_result, read_results


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory, tiny_models, data_dir):
    """Two tiny runs (full and lora, seed 0) trained by the CLI into a fresh store."""
    root = tmp_path_factory.mktemp("store") / "results"
    code = main(["matrix", "--model", str(tiny_models["bert"]), "--methods", "full", "lora", "--seeds", "0",
                 "--train-size", "32", "--eval-size", "16", "--val-size", "8", "--epochs", "1", "--max-length", "32",
                 "--batch-size", "8", "--lr", "1e-3", "--precision", "fp32", "--results-dir", str(root),
                 "--data-dir", str(data_dir), "--in-process"])
    assert code == 0 and len(read_results(root)) == 2
    return root


def reproduce(root, scratch, data_dir, *more):
    return main(["reproduce", "--results-dir", str(root), "--scratch", str(scratch), "--data-dir", str(data_dir),
                 "--in-process", *more])


def test_reproduces_then_catches_tampering(tiny_store, tmp_path, data_dir, capsys):
    scratch = tmp_path / "scratch"
    assert reproduce(tiny_store, scratch, data_dir) == 0
    out = capsys.readouterr().out
    assert out.count("ok: identical") == 2 and "2 of 2 run(s) reproduced" in out
    assert sorted(p.name for p in (scratch / "runs").glob("*.json")) == sorted(
        p.name for p in (tiny_store / "runs").glob("*.json"))

    # One stored prediction flipped: the re-runs (kept in scratch, not trained again) no longer match.
    key = sorted(r.key for r in read_results(tiny_store))[0]
    path = predictions_path(key, tiny_store)
    original = path.read_bytes()
    with np.load(path) as data:
        arrays = {name: data[name].copy() for name in data.files}
    arrays["predicted"][0] = 1 - arrays["predicted"][0]
    np.savez_compressed(path, **arrays)
    assert reproduce(tiny_store, scratch, data_dir) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "1 of 2 run(s) reproduced" in out and "already re-run" in out
    path.write_bytes(original)

    # A hand-edited accuracy is caught too.
    record_path = tiny_store / "runs" / f"{key}.json"
    record = json.loads(record_path.read_text())
    record["accuracy"] += 0.25
    record_path.write_text(json.dumps(record))
    assert reproduce(tiny_store, scratch, data_dir) == 1
    assert "MISMATCH: stored accuracy" in capsys.readouterr().out
    record["accuracy"] -= 0.25
    record_path.write_text(json.dumps(record))


def test_other_machine_compares_intervals(tiny_store, tmp_path, data_dir):
    scratch = tmp_path / "scratch"
    assert reproduce(tiny_store, scratch, data_dir, "--sample", "1") == 0
    stored = choose_records(read_results(tiny_store), 1)[0]
    comparison = compare(stored, read_result(stored.key, scratch), tiny_store, scratch, False, "another CPU")
    assert comparison.ok and comparison.verdict.startswith("ok: within interval")
    assert len(list((scratch / "runs").glob("*.json"))) == 1 and load_predictions(stored.key, scratch) is not None


@pytest.mark.unit
def test_same_stack_reads_device_cpu_and_versions():
    here = {"device": "cpu (x86_64, 2 threads)", "versions": {"torch": "2.13.0+cpu"},
            "cpu": {"cpu_model": "AMD EPYC", "bf16_flags": ["avx512_bf16"], "avx512f": True}}
    assert same_stack(here, here)[0]
    old = {k: v for k, v in here.items() if k != "cpu"}  # records made before the CPU was recorded
    assert same_stack(old, here) == (True, "same device and versions (the CPU model and flags were not recorded "
                                           "with the stored run)")
    avx2 = {**here, "cpu": {"cpu_model": "AMD EPYC", "bf16_flags": [], "avx512f": False}}
    assert not same_stack(avx2, here)[0] and "bf16_flags" in same_stack(avx2, here)[1]
    assert not same_stack({**here, "versions": {"torch": "2.12.0"}}, here)[0]


def test_nothing_to_reproduce(tmp_path, capsys):
    assert main(["reproduce", "--results-dir", str(tmp_path / "none"), "--scratch", str(tmp_path / "s")]) == 2
    assert "no finished run to reproduce" in capsys.readouterr().err


def test_report_to_tensorboard(tiny_models, data_dir, tmp_path, capsys, monkeypatch):
    from peft_imdb.train import TENSORBOARD_ENV

    monkeypatch.delenv(TENSORBOARD_ENV, raising=False)
    root = tmp_path / "results"
    code = main(["run", "--model", str(tiny_models["bert"]), "--method", "full", "--train-size", "32",
                 "--eval-size", "16", "--val-size", "8", "--max-length", "32", "--precision", "fp32",
                 "--results-dir", str(root), "--data-dir", str(data_dir), "--report-to", "tensorboard"])
    monkeypatch.delenv(TENSORBOARD_ENV, raising=False)  # main set it for this process's runs
    if importlib.util.find_spec("tensorboard") is None:
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and err == ["error: --report-to tensorboard needs the tensorboard package: "
                                     "pip install tensorboard"]
        assert not root.exists()  # stopped before any training
        return
    assert code == 0
    (key,) = [r.key for r in read_results(root)]
    assert list((root / "tensorboard" / key).glob("events.out.tfevents.*"))
