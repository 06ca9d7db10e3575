"""Bar charts of the summary: accuracy, trainable parameters, training time, peak memory."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; notebooks show the saved PNGs
import matplotlib.pyplot as plt
import pandas as pd

# One colour per method in every figure.
METHOD_COLORS = {"full": "#4C72B0", "lora": "#DD8452", "qlora": "#55A868", "ia3": "#C44E52"}

# (column, y-axis label, title, file name, log scale)
CHARTS = [
    ("accuracy", "test accuracy", "Test accuracy", "accuracy.png", False),
    ("trainable_params", "trainable parameters (log scale)", "Trainable parameters", "trainable_params.png", True),
    ("train_time_s", "training time (s)", "Training wall time", "train_time.png", False),
    ("peak_memory_mb", "peak memory in training (MB)", "Peak memory during training", "peak_memory.png", False),
]
MEMORY_KINDS = {"cuda_allocated": "CUDA allocator peak", "cpu_rss": "peak RSS of the process, CPU"}


def _bar_labels(rows: pd.DataFrame) -> list[str]:
    """Method names, plus the model and the lr where those differ between bars."""
    multi_model = rows["model"].nunique() > 1
    repeated = rows.duplicated(["model", "method"], keep=False)
    labels = []
    for row, again in zip(rows.itertuples(), repeated):
        parts = [row.method] + ([row.model] if multi_model else []) + ([f"lr {row.lr:g}"] if again else [])
        labels.append("\n".join(parts))
    return labels


def _subtitle(rows: pd.DataFrame, column: str) -> str:
    first = rows.iloc[0]
    low, high = rows["n"].min(), rows["n"].max()
    seeds = f"{low} seed" if low == high == 1 else f"mean ± std of {low if low == high else f'{low}-{high}'} seeds"
    setting = (f"{', '.join(rows['model'].unique())}: {first['train_size']} train / {first['eval_size']} test "
               f"reviews, {first['epochs']:g} epoch(s), max length {first['max_length']}\n{seeds}")
    if column == "peak_memory_mb":
        setting += "\n" + ", ".join(MEMORY_KINDS.get(k, k) for k in sorted(set(rows["memory_kind"].dropna())))
    return setting


def bar_chart(summary: pd.DataFrame, column: str, ylabel: str, title: str, path: Path, log: bool = False) -> Path:
    """One bar per summary row (mean over seeds, std as error bar), coloured by method."""
    rows = summary.reset_index(drop=True)
    means = rows[f"{column}_mean"]
    errors = rows[f"{column}_std"].fillna(0)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(rows) + 2.0), 3.8))
    bars = ax.bar(_bar_labels(rows), means, yerr=errors, capsize=4,
                  color=[METHOD_COLORS.get(m, "grey") for m in rows["method"]])
    for bar, value in zip(bars, means):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")
    if log:
        ax.set_yscale("log")
        ax.set_ylim(float(means.min()) / 4, float(means.max()) * 3)
    if column == "accuracy":
        ax.set_ylim(max(0.0, float((means - errors).min()) - 0.05), 1.0)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("method")
    ax.set_title(f"{title}\n{_subtitle(rows, column)}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary_charts(summary: pd.DataFrame, figures_dir: str | Path = "figures") -> list[Path]:
    """Write the four bar charts to figures_dir; return their paths."""
    folder = Path(figures_dir)
    return [bar_chart(summary, col, label, title, folder / name, log) for col, label, title, name, log in CHARTS]
