"""Bar charts of the summary: accuracy, trainable parameters, training time, peak memory."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; notebooks show the saved PNGs
import matplotlib.pyplot as plt
import pandas as pd

from .config import METHODS

# One colour per method in every figure.
METHOD_COLORS = {"full": "#4C72B0", "lora": "#DD8452", "qlora": "#55A868", "ia3": "#C44E52"}

# (column, y-axis label, file name, log scale)
CHARTS = [
    ("accuracy", "test accuracy", "accuracy.png", False),
    ("trainable_params", "trainable parameters (log scale)", "trainable_params.png", True),
    ("train_time_s", "training time (s)", "train_time.png", False),
    ("peak_memory_mb", "peak memory during training (MB)", "peak_memory.png", False),
]


def _memory_label(summary: pd.DataFrame) -> str:
    kinds = sorted(set(summary["memory_kind"].dropna()))
    names = {"cuda_allocated": "CUDA allocated", "cpu_rss": "process RSS, CPU"}
    return ", ".join(names.get(k, k) for k in kinds)


def bar_chart(summary: pd.DataFrame, column: str, ylabel: str, path: Path, log: bool = False) -> Path:
    """One bar per model x method (mean over seeds, std as error bar), coloured by method."""
    order = {m: i for i, m in enumerate(METHODS)}
    rows = summary.sort_values(["model", "method"], key=lambda s: s.map(order) if s.name == "method" else s)
    multi_model = rows["model"].nunique() > 1
    labels = [f"{r.method}\n{r.model}" if multi_model else r.method for r in rows.itertuples()]
    means = rows[f"{column}_mean"]
    errors = rows[f"{column}_std"].fillna(0)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(rows) + 1.5), 3.6))
    bars = ax.bar(labels, means, yerr=errors, capsize=4,
                  color=[METHOD_COLORS.get(m, "grey") for m in rows["method"]])
    for bar, value in zip(bars, means):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    if log:
        ax.set_yscale("log")
    if column == "accuracy":
        low = max(0.0, float((means - errors).min()) - 0.05)
        ax.set_ylim(low, 1.0)
    if column == "peak_memory_mb":
        ylabel = f"{ylabel} [{_memory_label(rows)}]"
    ax.set_ylabel(ylabel)
    ax.set_xlabel("method")
    seeds = rows["n"].max()
    ax.set_title(f"{ylabel.split(' (')[0]} by method (mean of up to {seeds} seed(s), error bar = std)",
                 fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary_charts(summary: pd.DataFrame, figures_dir: str | Path = "figures") -> list[Path]:
    """Write the four bar charts to figures_dir; return their paths."""
    folder = Path(figures_dir)
    return [bar_chart(summary, col, label, folder / name, log) for col, label, name, log in CHARTS]
