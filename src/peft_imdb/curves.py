"""Training curves: the training loss of each method against the optimizer step, mean over seeds with a band."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .plots import _save, colour, plt
from .resolved import stored_label
from .results import RunResult

CURVE_COLUMNS = ["key", "method", "label", "seed", "step", "epoch", "loss"]


def _label(record: RunResult) -> str:
    return record.label or stored_label(record.config or {}, record.method)


def curve_frame(frame_or_records: pd.DataFrame | Iterable[RunResult]) -> pd.DataFrame:
    """Tidy training-loss points, one row per run x logging step: key, method, label, seed, step, epoch, loss.

    Takes the store as `table.load_results` gives it (a `log_history` column) or a list of RunResult;
    runs without a log history (records made before it was stored) add no rows.
    """
    if isinstance(frame_or_records, pd.DataFrame):
        frame = frame_or_records
        if "log_history" not in frame.columns:
            return pd.DataFrame(columns=CURVE_COLUMNS)
        if "status" in frame.columns:
            frame = frame[frame["status"] == "ok"]
        runs = [(row["key"], row["method"], row.get("label", row["method"]), row["seed"], row["log_history"])
                for _, row in frame.iterrows()]
    else:
        runs = [(r.key, r.method, _label(r), r.seed, r.log_history) for r in frame_or_records if r.status == "ok"]
    rows = [{"key": key, "method": method, "label": label, "seed": seed, "step": entry["step"],
             "epoch": entry.get("epoch"), "loss": entry["loss"]}
            for key, method, label, seed, history in runs
            for entry in (history if isinstance(history, list) else []) if "loss" in entry and "step" in entry]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


PANELS_PER_ROW = 5  # ten methods make two rows of panels, not one strip


def loss_curves_chart(frame_or_records: pd.DataFrame | Iterable[RunResult], path: str | Path) -> Path | None:
    """The methods' training-loss curves side by side, one panel per method; None when no run has a history.

    Each line is one summary row (its label), the mean over its seeds at each logging step; the band is
    ± one standard deviation over seeds (seaborn errorbar="sd"), absent for a single seed.
    """
    import seaborn as sns

    points = curve_frame(frame_or_records)
    if points.empty:
        return None
    methods = list(dict.fromkeys(points["method"]))
    # A method's own row in its colour, any other row of it (another setting) in black: two arms never look alike.
    palette = {label: colour(method) if label == method else "black"
               for label, method in points.groupby("label", sort=False)["method"].first().items()}
    columns = min(len(methods), PANELS_PER_ROW)
    lines = -(-len(methods) // columns)
    # Each panel on its own loss range: a method that starts high squeezes no other method's curve.
    fig, axes = plt.subplots(lines, columns, figsize=(3.4 * columns + 0.6, 3.2 * lines + 0.6), squeeze=False)
    for ax in axes.flat[len(methods):]:
        ax.set_visible(False)
    for ax, method in zip(axes.flat, methods):
        rows = points[points["method"] == method]
        several = rows["label"].nunique() > 1
        sns.lineplot(data=rows, x="step", y="loss", hue="label", palette=palette, style="label" if several else None,
                     errorbar="sd", estimator="mean", marker="o", markersize=3, ax=ax, legend=several)
        if several:
            ax.legend(fontsize=7, title=None)
        seeds = rows.groupby("label")["seed"].nunique()
        ax.set_title(f"{method} ({_seeds(seeds)})", fontsize=9, color=colour(method))
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    for column, ax in enumerate(axes.T):
        for panel in ax:
            panel.set_ylabel("training loss (cross-entropy)" if column == 0 else "")
    fig.suptitle("Training loss (mean over each logging interval) per optimizer step; each panel its own y range\n"
                 "line: mean over seeds; band: ± 1 std over seeds (seaborn errorbar='sd')", fontsize=9)
    return _save(fig, Path(path))


def run_curve_chart(record: RunResult, path: str | Path) -> Path | None:
    """One run's stored log history: training loss per logging step, and validation accuracy after each epoch;
    None when the record holds no history."""
    history = record.log_history or []
    losses = [(e["step"], e["loss"]) for e in history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_accuracy"]) for e in history if "eval_accuracy" in e and "step" in e]
    if not losses:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(*zip(*losses), marker="o", ms=3, color=colour(record.method), label="training loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.grid(alpha=0.3)
    if evals:
        right = ax.twinx()
        right.plot(*zip(*evals), "s--", color="black", label="validation accuracy (end of epoch)")
        right.set_ylabel("validation accuracy")
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper right")
    label = record.label or _label(record)
    ax.set_title(f"{label}, seed {record.seed}: {record.train_steps or len(losses)} steps, "
                 f"{record.precision_mode}, {record.env.get('device', '')}", fontsize=9)
    return _save(fig, Path(path))


def _seeds(counts: pd.Series) -> str:
    low, high = int(counts.min()), int(counts.max())
    number = f"{low}" if low == high else f"{low}-{high}"
    return f"{number} seed{'s' if high > 1 else ''}"
