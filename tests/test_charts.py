"""Charts and verdicts that never mislabel: a value is drawn beside its own row's label, a row that differs in a
setting says so in its label, and each method is compared with Full FT of its own precision."""

import matplotlib.pyplot as plt
import pytest

from peft_imdb import plots
from peft_imdb.comparison import add_statistics, summarize
from peft_imdb.table import load_results
from test_report import fake_run


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures the charts draw, kept open instead of saved."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    yield figures
    plt.close("all")


def _table(root):
    return add_statistics(summarize(load_results(root)), root)


def _drawn_points(ax) -> dict[str, float]:
    """Tick label -> the y of the point drawn at that tick, read back from the axes."""
    ticks = {round(x): label.get_text().replace("\n", " ") for x, label in zip(ax.get_xticks(), ax.get_xticklabels())}
    points = {}
    for container in ax.containers:  # one errorbar per row: its data line is the point
        line = container.lines[0]
        for x, y in zip(line.get_xdata(), line.get_ydata()):
            points[ticks[round(float(x))]] = float(y)
    return points


def _annotations(ax) -> dict[str, str]:
    """Tick label -> the text written beside the point at that tick."""
    ticks = {round(x): label.get_text().replace("\n", " ") for x, label in zip(ax.get_xticks(), ax.get_xticklabels())}
    return {ticks[round(float(text.xy[0]))]: text.get_text() for text in ax.texts}


def test_a_run_with_another_setting_is_its_own_labelled_point_and_every_value_sits_beside_its_own(tmp_path, drawn):
    root = tmp_path / "results"
    for method in ("full", "lora", "qlora", "ia3"):
        for seed in range(3):
            fake_run(root, method, seed, reviews=400)
    fake_run(root, "lora", 0, reviews=400, epochs=2)  # a student's edit: same method, another setting
    table = _table(root)
    plots.accuracy_chart(table, tmp_path / "accuracy.png")
    ax = drawn[0].axes[0]
    points, notes = _drawn_points(ax), _annotations(ax)
    assert len(points) == len(table) == 5  # no two rows merged into one place
    expected = dict(zip(plots.chart_labels(table), table["accuracy_mean"]))
    assert "lora (epochs=2)" in expected and "lora" in expected
    for label, value in expected.items():
        assert points[label] == pytest.approx(value)
        assert notes[label] == f"{value:.3f}"  # the value written beside its own point
    assert "epochs differs (see labels)" in ax.get_title()


def test_bars_of_two_precisions_say_which_and_stay_apart(tmp_path, drawn):
    root = tmp_path / "results"
    for seed in range(3):
        fake_run(root, "full", seed, reviews=400, precision="bf16")
        fake_run(root, "full", seed, reviews=400, precision="fp32")
        fake_run(root, "lora", seed, reviews=400, precision="bf16")
    table = _table(root)
    plots.bar_chart(table, "train_time_s", "training time (s)", "Training wall time", tmp_path / "t.png")
    ax = drawn[0].axes[0]
    labels = [t.get_text().replace("\n", " ") for t in ax.get_xticklabels()]
    heights = {label: bar.get_height() for label, bar in zip(labels, ax.patches)}
    assert len(set(labels)) == 3 and any("fp32" in label for label in labels)
    for label, value in zip(plots.chart_labels(table), table["train_time_s_mean"]):
        assert heights[label] == pytest.approx(value)
    assert "bf16/fp32" in ax.get_title()


def test_each_method_is_compared_with_full_ft_of_its_own_precision(tmp_path):
    root = tmp_path / "results"
    for seed in range(3):
        for precision in ("bf16", "fp32"):
            fake_run(root, "full", seed, reviews=2000, precision=precision)
        fake_run(root, "lora", seed, reviews=2000, precision="bf16")
        fake_run(root, "ia3", seed, reviews=2000, precision="fp32")
    table = _table(root).set_index(["method", "precision_mode"])
    assert table.loc[("lora", "bf16"), "versus"] == "full (bf16)"
    assert table.loc[("ia3", "fp32"), "versus"] == "full (fp32)"
    assert table.loc[("lora", "bf16"), "verdict"] and table.loc[("ia3", "fp32"), "verdict"]  # no verdict lost
    assert table.loc[("full", "fp32"), "verdict"] == ""  # a reference is not compared with the other reference
