"""`reproduce`: re-train a store's runs into a scratch folder and compare them run by run; --report-to tensorboard."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from peft_imdb.cli import main
from peft_imdb.errors import UserError
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


# --- the choice of runs, precision and rule on CPUs with and without native bf16 ----------------------------

def _fake_cpu(monkeypatch, flags: set[str]) -> None:
    import peft_imdb.hardware as hardware

    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: frozenset(flags))


@pytest.mark.parametrize("flags", [{"avx512f", "avx512_bf16"}, {"avx2"}], ids=["native-bf16", "avx2-only"])
def test_the_choice_for_bf16_and_fp32_records_on_both_kinds_of_cpu(flags, tiny_models, tmp_path, monkeypatch):
    from conftest import store_ok_row, tiny_config

    from peft_imdb.reproduce import plan_rechecks
    from peft_imdb.resolved import resolve

    _fake_cpu(monkeypatch, flags)
    native = "avx512_bf16" in flags
    model, root = tiny_models["bert"], tmp_path / "results"
    bf16 = store_ok_row(resolve(tiny_config(model, "full", precision="bf16")), root)  # as the study stores it
    fp32 = store_ok_row(resolve(tiny_config(model, "lora", precision="fp32")), root / "ablations" / "precision")

    everything = plan_rechecks(root)
    chosen = {r.record.key: (r.run.key, r.run.precision.name, r.rule, r.ran_in) for r in everything.rechecks}
    if native:  # each in its own precision; same machine and stack: identical predictions expected
        assert chosen == {bf16.key: (bf16.key, "bf16", "identical", "bf16"),
                          fp32.key: (fp32.key, "fp32", "identical", "fp32")} and everything.left_out == []
    else:  # the bf16 run is left out, not re-trained ~100x slower
        assert chosen == {fp32.key: (fp32.key, "fp32", "identical", "fp32")}
        assert [r.key for r in everything.left_out] == [bf16.key]
    # --sample draws from the runs this machine re-trains natively (seed 0 of Full FT first where it can).
    assert [r.record.key for r in plan_rechecks(root, sample=1).rechecks] == [bf16.key if native else fp32.key]

    # A run named explicitly: in its own precision where native, else in fp32, judged by the interval rule.
    (named,) = plan_rechecks(root, keys=[bf16.key]).rechecks
    if native:
        assert (named.run.key, named.run.precision.name, named.rule, named.ran_in) == (bf16.key, "bf16", "identical",
                                                                                        "bf16")
    else:
        twin = resolve(tiny_config(model, "full", precision="fp32")).key
        assert (named.run.key, named.run.precision.name, named.rule, named.ran_in) == (twin, "fp32", "interval",
                                                                                        "fp32 (recorded bf16)")
        assert twin != bf16.key and "re-trained in fp32" in named.run.precision.reason
    with pytest.raises(UserError, match="no finished run nope"):
        plan_rechecks(root, keys=["nope"])


def test_without_native_bf16_a_named_bf16_run_retrains_in_fp32_and_each_line_says_so(
        tiny_store, tiny_models, data_dir, tmp_path, capsys, monkeypatch):
    import shutil

    root = tmp_path / "results"
    shutil.copytree(tiny_store, root)
    # Full FT as in the tiny store, but trained in bf16 (as the committed study was, on a CPU with native bf16).
    assert main(["run", "--model", str(tiny_models["bert"]), "--method", "full", "--train-size", "32", "--eval-size",
                 "16", "--val-size", "8", "--epochs", "1", "--max-length", "32", "--batch-size", "8", "--lr", "1e-3",
                 "--precision", "bf16", "--results-dir", str(root), "--data-dir", str(data_dir)]) == 0
    (bf16,) = [r for r in read_results(root) if r.precision_mode == "bf16"]
    (fp32_twin,) = [r for r in read_results(root) if r.method == "full" and r.precision_mode == "fp32"]
    capsys.readouterr()
    _fake_cpu(monkeypatch, {"avx2"})

    scratch = tmp_path / "scratch"
    assert reproduce(root, scratch, data_dir, "--sample", "2", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "left out: 1 committed run(s) in bf16" in out and "Name one with --keys" in out
    assert "plan (" in out and ": 2 to re-train" in out and "estimated wall time" in out
    assert out.rstrip().endswith("dry run: nothing trained") and not scratch.exists()

    assert reproduce(root, scratch, data_dir, "--keys", bf16.key) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(bf16.key) and "ok:" in line)
    assert "fp32 (recorded bf16)" in line and "interval" in line and "ok: within interval" in line
    assert f"{bf16.key}: ran in fp32 (recorded bf16), judged by the interval rule" in out
    assert [p.stem for p in (scratch / "runs").glob("*.json")] == [fp32_twin.key]  # the fp32 run, its own key
