"""Training curves: the log history a run stores, and the loss-curve chart drawn from it."""

from __future__ import annotations

import math

import pytest

from conftest import tiny_config
from peft_imdb.curves import curve_frame, loss_curves_chart
from peft_imdb.results import RunResult, save_result
from peft_imdb.table import load_results
from peft_imdb.train import log_history
from peft_imdb.resolved import resolve


def synthetic_record(method: str, seed: int, history: bool = True) -> RunResult:
    """A finished run whose loss falls from ~0.7 with a little seed noise, logged every 5 steps, one epoch."""
    entries = [{"step": step, "epoch": step / 50, "loss": 0.7 * math.exp(-step / 40) + 0.01 * seed,
                "learning_rate": 1e-3 * (1 - step / 50)} for step in range(5, 55, 5)]
    entries.append({"step": 50, "epoch": 1.0, "eval_loss": 0.4, "eval_accuracy": 0.8})
    return RunResult(key=f"m__{method}__seed{seed}__g", model="m", method=method, seed=seed, status="ok",
                     accuracy=0.8, log_history=entries if history else [])


def test_chart_from_two_methods_by_two_seeds(tmp_path):
    records = [synthetic_record(method, seed) for method in ("full", "lora") for seed in (0, 1)]
    points = curve_frame(records)
    assert len(points) == 4 * 10  # runs x logging steps; the evaluation entry has no training loss
    assert set(points["method"]) == {"full", "lora"}
    path = loss_curves_chart(records, tmp_path / "figures" / "loss_curves.png")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(path.parent.glob(".*.tmp"))  # written atomically: no temporary file left


@pytest.mark.integration
def test_chart_from_the_store_frame(tmp_path):
    for method in ("full", "lora"):
        for seed in (0, 1):
            save_result(synthetic_record(method, seed), tmp_path / "results")
    frame = load_results(tmp_path / "results")
    assert len(curve_frame(frame)) == 40
    assert loss_curves_chart(frame, tmp_path / "loss_curves.png").is_file()


def test_no_history_no_chart(tmp_path):
    records = [synthetic_record("full", 0, history=False), synthetic_record("lora", 0, history=False)]
    assert loss_curves_chart(records, tmp_path / "loss_curves.png") is None
    assert not (tmp_path / "loss_curves.png").exists()
    assert loss_curves_chart(load_results(tmp_path / "empty"), tmp_path / "loss_curves.png") is None


def test_old_records_load_without_history():
    data = synthetic_record("full", 0).to_dict()
    del data["log_history"]
    assert RunResult.from_dict(data).log_history == []


def test_log_history_keeps_plain_numbers():
    entries = [{"loss": 0.69, "grad_norm": 1.5, "learning_rate": 1e-3, "epoch": 0.5, "step": 2},
               {"eval_loss": 0.6, "eval_accuracy": 0.75, "eval_runtime": 0.1, "epoch": 1.0, "step": 4},
               {"train_runtime": 3.0, "train_loss": 0.65, "epoch": 1.0, "step": 4}]
    assert log_history(entries) == [
        {"step": 2, "epoch": 0.5, "loss": 0.69, "learning_rate": 1e-3, "grad_norm": 1.5},
        {"step": 4, "epoch": 1.0, "eval_loss": 0.6, "eval_accuracy": 0.75},
    ]


@pytest.mark.integration
def test_a_run_stores_its_history(tiny_models, imdb):
    from peft_imdb.train import train_and_evaluate

    config = tiny_config(tiny_models["bert"], "full", train_size=128, val_size=16, epochs=3, lr=2e-3)
    result, _ = train_and_evaluate(resolve(config), imdb)
    losses = [entry["loss"] for entry in result.log_history if "loss" in entry]
    evals = [entry for entry in result.log_history if "eval_accuracy" in entry]
    assert len(losses) >= 10  # short runs log more often than every 25 steps
    assert len(evals) == 3 and [e["epoch"] for e in evals] == [1.0, 2.0, 3.0]
    assert [e["eval_accuracy"] for e in evals] == result.val_accuracy_per_epoch
    third = len(losses) // 3
    assert sum(losses[-third:]) / third < sum(losses[:third]) / third  # decreasing-ish


@pytest.mark.unit
def test_one_runs_chart_draws_its_stored_losses_and_validation(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from peft_imdb import curves

    drawn = []
    monkeypatch.setattr(curves, "_save", lambda fig, path: drawn.append(fig) or path)
    record = synthetic_record("lora", 0)
    assert curves.run_curve_chart(record, tmp_path / "run.png") == tmp_path / "run.png"
    loss_axes, validation_axes = drawn[0].axes
    losses = [e["loss"] for e in record.log_history if "loss" in e]
    assert list(loss_axes.lines[0].get_ydata()) == pytest.approx(losses)
    assert list(validation_axes.lines[0].get_ydata()) == [0.8]
    assert curves.run_curve_chart(synthetic_record("lora", 0, history=False), tmp_path / "none.png") is None
    plt.close("all")
