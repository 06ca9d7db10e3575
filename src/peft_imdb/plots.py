"""Figures of the summary: bar charts, Pareto plots of accuracy against cost, and the ablations."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; notebooks show the saved PNGs
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .methods import METHODS, method_family


def colour(method: str) -> str:
    """The method's colour from the registry (grey for a method that is not registered)."""
    return METHODS[method].colour if method in METHODS else "grey"


def is_core(method: str) -> bool:
    """Whether a method is one of the study's four, which every chart highlights."""
    return method in METHODS and METHODS[method].core


def marker(method: str, variant: bool = False) -> dict:
    """Point style: the study's four filled circles, every other method a hollow square in its colour; a row that is
    not the method at its defaults (another arm of it) a diamond or triangle, so two arms never look alike."""
    if is_core(method):
        return {"fmt": "D" if variant else "o", "color": colour(method)}
    return {"fmt": "^" if variant else "s", "color": colour(method), "markerfacecolor": "white",
            "markeredgewidth": 1.8}


def _added_key(rows: pd.DataFrame, bars: bool = False) -> str:
    """What sets the methods beyond the study's four apart (hatched bars, hollow points), for a title; empty unless
    both kinds are shown."""
    if len({is_core(m) for m in rows["method"]}) < 2:
        return ""
    return "; hatched: beyond the study's four" if bars else "; filled: the study's four methods, hollow: the others"


def _hatch_added(bars, methods) -> None:
    """Bars of methods outside the study's four: hatched, so the four stand out."""
    for bar, method in zip(bars, methods):
        if not is_core(method):
            bar.set_hatch("///")
            bar.set_edgecolor("white")


# Bar charts of costs: (column, y-axis label, title, file name)
CHARTS = [
    ("train_time_s", "training time (s)", "Training wall time", "train_time.png"),
    ("model_state_mb", "model state (MB)", "Model-state memory: weights + gradients + AdamW moments",
     "model_state_memory.png"),
    ("working_memory_mb", "working memory in training (MB), above the start", "Working memory in training",
     "working_memory.png"),
]
MEMORY_KINDS = {"cuda_allocated": "CUDA allocator peak", "cpu_rss": "peak RSS of the process, CPU"}


def _save(fig, path: Path) -> Path:
    """Lay out, write as PNG (folders made as needed), close; return the path.

    Atomic (results.atomic_write: a temporary file in the same folder, then os.replace): a report killed
    halfway leaves the previous figure whole.
    """
    from .results import atomic_write

    if fig.get_layout_engine() is None:
        fig.tight_layout()
    try:
        atomic_write(Path(path), lambda handle: fig.savefig(handle, dpi=110, format=Path(path).suffix[1:] or "png"))
    finally:
        plt.close(fig)
    return path


def _legend(ax, **kwargs) -> None:
    """A legend with one entry per label (methods plotted point by point appear once)."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8, **kwargs)


# What a row's label adds where the rows of one chart differ in it: (column, how a value reads).
DISTINGUISHING = (("precision_mode", str), ("model", str), ("train_size", lambda v: f"train={v}"),
                  ("eval_size", lambda v: f"test={v}"), ("epochs", lambda v: f"epochs={v:g}"),
                  ("max_length", lambda v: f"L={v}"), ("recipe", lambda v: v or "today's recipe"))


def chart_labels(rows: pd.DataFrame) -> list[str]:
    """One label per row, never two alike: the row's label, plus each setting in which the chart's rows differ
    (precision, model, data sizes, epochs, length, recipe) where the row is not at the value most rows have."""
    labels = []
    for _, row in rows.iterrows():
        extra = []
        for column, shown in DISTINGUISHING:
            if column in rows and rows[column].astype(str).nunique() > 1:
                common = rows[column].astype(str).mode().iloc[0]
                if str(row[column]) != common:
                    extra.append(shown(row[column]))
        label = str(row["label"])
        if extra:
            label = label[:-1] + ", " + ", ".join(extra) + ")" if label.endswith(")") else f"{label} ({', '.join(extra)})"
        labels.append(label)
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):  # rows alike in every shown setting still get a place of their own
        seen[label] = seen.get(label, 0) + 1
        labels[i] = label if seen[label] == 1 else f"{label} #{seen[label]}"
    return labels


def _bar_labels(rows: pd.DataFrame) -> list[str]:
    """Chart labels broken for a narrow bar: what sets a row apart on its own line."""
    return [label.replace(" (", "\n(") for label in chart_labels(rows)]


def _setting(rows: pd.DataFrame, column: str, text) -> str:
    """A setting as the subtitle reads it: its value where every row shares it, else where the labels say."""
    values = rows[column].astype(str).unique() if column in rows else []
    return text(rows[column].iloc[0]) if len(values) == 1 else f"{column} differs (see labels)"


def _subtitle(rows: pd.DataFrame, column: str) -> str:
    low, high = rows["n"].min(), rows["n"].max()
    seeds = f"{low} seed" if low == high == 1 else f"mean of {low if low == high else f'{low}-{high}'} seeds"
    precisions = sorted(rows["precision_mode"].dropna().unique()) if "precision_mode" in rows else []
    setting = (f"{_setting(rows, 'model', str)}: {_setting(rows, 'train_size', lambda v: f'{v} train')} / "
               f"{_setting(rows, 'eval_size', lambda v: f'{v} test')} reviews, "
               f"{_setting(rows, 'epochs', lambda v: f'{v:g} epoch(s)')}, "
               f"{_setting(rows, 'max_length', lambda v: f'max length {v}')}; "
               f"{'/'.join(precisions) or '–'}" + (" (each row's precision in its label)" if len(precisions) > 1
                                                   else "") + f"\n{seeds}")
    if column in ("train_time_s", "eval_time_s") and "device" in rows:  # a time means little without its machine
        setting += "; " + ", ".join(sorted(rows["device"].dropna().astype(str).unique()))
    if column == "working_memory_mb":
        setting += "\n" + ", ".join(MEMORY_KINDS.get(k, k) for k in sorted(set(rows["memory_kind"].dropna())))
    return setting


def _errors(rows: pd.DataFrame, column: str):
    """Std over seeds as error bars, or None where a row has one seed (a single run shows none)."""
    errors = rows[f"{column}_std"].where(rows["n"] > 1)
    return None if errors.isna().all() else errors.fillna(0)


def bar_chart(summary: pd.DataFrame, column: str, ylabel: str, title: str, path: Path) -> Path | None:
    """One bar per summary row (mean over seeds, std over seeds as error bar), coloured by method, from zero."""
    rows = summary[summary[f"{column}_mean"].notna()].reset_index(drop=True)
    if rows.empty:
        return None
    means, errors = rows[f"{column}_mean"], _errors(rows, column)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(rows) + 2.0), 3.8))
    bars = ax.bar(range(len(rows)), means, yerr=errors, capsize=4, color=[colour(m) for m in rows["method"]])
    ax.set_xticks(range(len(rows)), _bar_labels(rows))  # by position: rows with one label stay apart
    _hatch_added(bars, rows["method"])
    for bar, value, error in zip(bars, means, errors if errors is not None else [0] * len(rows)):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height() + error),  # above the error bar
                    ha="center", va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")
    ax.set_ylim(bottom=0)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("method")
    bars_say = "error bars: std over seeds" if errors is not None else "one seed: no error bars"
    ax.set_title(f"{title}\n{_subtitle(rows, column)}; {bars_say}{_added_key(rows, bars=True)}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def accuracy_chart(summary: pd.DataFrame, path: Path) -> Path:
    """Accuracy per row as a point (mean over seeds) with its 95% interval over seeds and reviews."""
    rows = summary.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(rows) + 2.0), 3.8))
    labels = _bar_labels(rows)
    for i, row in rows.iterrows():
        low, high = row["acc_low"], row["acc_high"]
        yerr = None if pd.isna(low) else [[row["accuracy_mean"] - low], [high - row["accuracy_mean"]]]
        ax.errorbar([i], [row["accuracy_mean"]], yerr=yerr, ms=8, capsize=5, **marker(row["method"]))
        ax.annotate(f"{row['accuracy_mean']:.3f}", (i, row["accuracy_mean"]), xytext=(10, -3),
                    textcoords="offset points", fontsize=8)
    ax.set_xticks(range(len(rows)), labels)  # by position: rows with one label stay apart
    ax.set_ylabel("test accuracy")
    ax.set_xlabel("method")
    ax.set_title(f"Test accuracy\n{_subtitle(rows, 'accuracy')}\npoints: mean over seeds; "
                 f"bars: 95% CI (two-level bootstrap over seeds and reviews){_added_key(rows)}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def parameters_chart(summary: pd.DataFrame, path: Path) -> Path:
    """Trainable parameters per row, split into the adapter and the classification head (log scale)."""
    rows = summary.reset_index(drop=True)
    labels = _bar_labels(rows)
    adapter = rows["adapter_params_mean"].fillna(0)
    every = rows["trainable_params_mean"].where(adapter == 0, 0)  # full FT: every weight, the head among them
    head = rows["head_params_mean"].fillna(0).where(adapter > 0, 0)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(rows) + 2.0), 3.8))
    width, x = 0.38, range(len(rows))
    bars = ax.bar([i - width / 2 for i in x], adapter + every, width, color=[colour(m) for m in rows["method"]],
                  label="adapter (every weight for Full FT)")
    _hatch_added(bars, rows["method"])
    ax.bar([i + width / 2 for i in x], head, width, color="lightgrey", edgecolor="grey", label="head (trained in full)")
    full = rows.loc[rows["label"] == "full", "trainable_params_mean"]
    for i in x:  # the count in all and, beside Full FT, its share of Full FT's
        share = f"\n{rows['trainable_params_mean'][i] / full.iloc[0]:.2%} of Full FT" if len(full) == 1 and \
            rows["label"][i] != "full" else ""
        ax.annotate(f"{rows['trainable_params_mean'][i]:,.0f} in all{share}", (i, max(adapter[i] + every[i], head[i])),
                    ha="center", va="bottom", fontsize=7, xytext=(0, 3), textcoords="offset points")
    ax.set_xticks(list(x), labels)
    ax.set_yscale("log")
    heights = pd.concat([adapter + every, head])
    floor = 10 ** np.floor(np.log10(float(heights[heights > 0].min())))  # the decade below the smallest bar
    ax.set_ylim(floor, float(heights.max()) * 20)
    ax.set_ylabel(f"trainable parameters (log scale, from {floor:,.0f})")
    ax.set_xlabel("method")
    ax.set_title(f"Trainable parameters: adapter and head\n{_subtitle(rows, 'trainable_params')}"
                 f"{_added_key(rows, bars=True)}", fontsize=9)
    _legend(ax, loc="upper right", ncols=2)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


# How a chart names each family of methods (methods.FAMILIES).
FAMILY_TITLES = {"core": "the study's four methods", "added": "added methods", "further": "further methods"}


def _core_defaults(summary: pd.DataFrame, family: str = "core") -> pd.DataFrame:
    """The methods of one family at their defaults (with Full FT beside any other family), in registry order."""
    at_defaults = summary["label"] == summary["method"]
    chosen = summary["method"].map(method_family) == family
    if family != "core":
        chosen |= summary["method"] == "full"
    return summary[at_defaults & chosen].reset_index(drop=True)


def headline_chart(summary: pd.DataFrame, path: Path, family: str = "core") -> Path | None:
    """The reference reports' four charts in one figure, for the study's four methods (or another family's methods
    beside Full FT): accuracy with its 95% interval, training time, trainable parameters and model-state memory;
    None without those rows."""
    core = family == "core"
    rows = _core_defaults(summary, family)
    if rows.empty or (not core and len(rows) < 2):
        return None
    names = [METHODS[m].label.replace(" ", "\n") for m in rows["method"]]
    names = [f"{n}\n({p})" if p != rows["precision_mode"].mode().iloc[0] else n
             for n, p in zip(names, rows["precision_mode"])]
    x, colours = range(len(rows)), [colour(m) for m in rows["method"]]
    fig, axes = plt.subplots(2, 2, figsize=(10.0 if core else 12.0, 7.6))
    ax = axes[0, 0]
    for i, row in rows.iterrows():
        yerr = None if pd.isna(row["acc_low"]) else [[100 * (row["accuracy_mean"] - row["acc_low"])],
                                                    [100 * (row["acc_high"] - row["accuracy_mean"])]]
        ax.errorbar([i], [100 * row["accuracy_mean"]], yerr=yerr, fmt="o", ms=9, capsize=6, color=colours[i])
        ax.annotate(f"{100 * row['accuracy_mean']:.1f}", (i, 100 * row["accuracy_mean"]), xytext=(10, -3),
                    textcoords="offset points", fontsize=9)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy: mean, 95% CI over seeds and reviews", fontsize=10)
    panels = [(axes[0, 1], rows["train_time_s_mean"], "training time (s)",
               f"Training time on {', '.join(sorted(rows['device'].dropna().astype(str).unique())) or '–'}", False),
              (axes[1, 0], rows["trainable_params_mean"], "trainable parameters (log scale)",
               "Trainable parameters (adapter + head)", True),
              (axes[1, 1], rows["model_state_mb_mean"], "model state (MB)",
               "Model-state memory: weights + gradients + AdamW", False)]
    for ax, values, ylabel, title, log in panels:
        if not (values > 0).any():  # not measured for these runs (records made before it was)
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(title, fontsize=10)
            continue
        values = values.fillna(0)
        bars = ax.bar(x, values, color=colours)
        for bar, value in zip(bars, values):
            ax.annotate(f"{value:,.0f}" if value >= 10 else f"{value:.2g}", (bar.get_x() + bar.get_width() / 2, value),
                        ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
        if log:
            ax.set_yscale("log")
            ax.set_ylim(values[values > 0].min() / 3, values.max() * 5)
            reference = values[rows["method"] == "full"]
            if len(reference) == 1:  # each bar's share of Full FT's, under its value
                for bar, value, method in zip(bars, values, rows["method"]):
                    if method != "full":
                        ax.annotate(f"{value / reference.iloc[0]:.2%}", (bar.get_x() + bar.get_width() / 2, value),
                                    ha="center", va="top", fontsize=8, xytext=(0, -4), textcoords="offset points")
                title += " (% of Full FT's in the bars)"
        else:
            ax.set_ylim(0, values.max() * 1.15)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
    for ax in axes.flat:
        ax.set_xticks(list(x), names)
        ax.grid(axis="y", alpha=0.3)
    title = "The four methods at their defaults" if core else \
        f"The {FAMILY_TITLES[family]} at their defaults, beside Full FT"
    fig.suptitle(f"{title}\n{_subtitle(rows, 'accuracy')}", fontsize=10)
    return _save(fig, path)


def confusion_chart(summary: pd.DataFrame, path: Path) -> Path | None:
    """One confusion-matrix heatmap per method of the study's four (test reviews, mean over seeds); None without."""
    import ast

    import seaborn as sns

    rows = _core_defaults(summary)
    rows = rows[rows.get("confusion", pd.Series("–", index=rows.index)).astype(str).str.startswith("[")]
    if rows.empty:
        return None
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 4.0), squeeze=False, layout="constrained")
    for ax, (_, row) in zip(axes[0], rows.iterrows()):
        matrix = np.asarray(ast.literal_eval(row["confusion"]))
        sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax, square=True,
                    xticklabels=["negative", "positive"], yticklabels=["negative", "positive"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true label")
        ax.set_title(f"{METHODS[row['method']].label} ({row['n']} seeds, {row['precision_mode']})", fontsize=10,
                     color=colour(row["method"]))
    fig.suptitle(f"Confusion on the test reviews, mean over seeds\n{_subtitle(rows, 'accuracy')}", fontsize=9)
    return _save(fig, path)


def summary_charts(summary: pd.DataFrame, figures_dir: str | Path = "figures") -> list[Path]:
    """Write the headline, accuracy, parameter, confusion and cost charts to figures_dir; return their paths."""
    folder = Path(figures_dir)
    paths = [headline_chart(summary, folder / "headline.png"),
             headline_chart(summary, folder / "added_methods.png", "added"),
             headline_chart(summary, folder / "further_methods.png", "further"), accuracy_chart(summary, folder / "accuracy.png"),
             parameters_chart(summary, folder / "trainable_params.png"), confusion_chart(summary, folder / "confusion.png")]
    paths += [bar_chart(summary, col, label, title, folder / name) for col, label, title, name in CHARTS]
    return [p for p in paths if p is not None]


PARETO_AXES = {
    "model_state_mb": "model-state memory (MB)",
    "trainable_params": "trainable parameters (log scale)",
    "train_time_s": "training wall time (s)",
}


def pareto_front(costs: pd.Series, accuracies: pd.Series) -> list:
    """Index labels of the points no other point beats on both cost (lower) and accuracy (higher)."""
    order = sorted(costs.index, key=lambda i: (costs[i], -accuracies[i]))
    front, best = [], -float("inf")
    for i in order:
        if accuracies[i] > best:
            front.append(i)
            best = accuracies[i]
    return front


def pareto_chart(summary: pd.DataFrame, column: str, path: Path, log: bool = False) -> Path:
    """Accuracy against one cost, one labelled point per summary row, the Pareto frontier drawn."""
    rows = summary.reset_index(drop=True)
    x, y = rows[f"{column}_mean"], rows["accuracy_mean"]
    fig, ax = plt.subplots(figsize=(8.0, 4.4) if len(rows) <= 6 else (10.0, 5.6))
    labels = chart_labels(rows)
    for i, row in rows.iterrows():
        yerr = None if pd.isna(row["acc_low"]) else [[y[i] - row["acc_low"]], [row["acc_high"] - y[i]]]
        # No text beside the points (clustered points would overprint it): the legend names each one.
        ax.errorbar(x[i], y[i], yerr=yerr,
                    xerr=None if log or row["n"] < 2 or pd.isna(row[f"{column}_std"]) else row[f"{column}_std"],
                    ms=8, capsize=3, label=labels[i], **marker(row["method"], row["label"] != row["method"]))
    front = pareto_front(x, y)
    ax.step(x[front], y[front], where="post", color="black", alpha=0.5, linestyle="--", label="Pareto frontier")
    if log:
        ax.set_xscale("log")
    else:
        ax.set_xlim(left=0)  # a cost axis starts at zero
    ax.set_xlabel(PARETO_AXES.get(column, column))
    ax.set_ylabel("test accuracy (mean, 95% CI over seeds and reviews)")
    ax.set_title(f"Accuracy vs {PARETO_AXES.get(column, column).split(' (')[0]}\n{_subtitle(rows, column)}"
                 f"{_added_key(rows)}", fontsize=9)
    _legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # outside: it covers no point
    ax.grid(alpha=0.3)
    return _save(fig, path)


ABLATION_AXES = {"rank": ("lora_r", "LoRA rank r (alpha = 2r, log scale)"),
                 "targets": ("placement", "adapter placement"),
                 "precision": ("precision_mode", "training precision")}
CATEGORICAL = {"placement", "precision_mode"}  # varied settings shown as one point per method and value


def _interval_errors(rows: pd.DataFrame):
    """The rows' 95% intervals (seeds + reviews) as asymmetric error bars, or None where none was computed."""
    if rows["acc_low"].isna().all():
        return None
    return np.vstack([(rows["accuracy_mean"] - rows["acc_low"]).fillna(0).to_numpy(),
                      (rows["acc_high"] - rows["accuracy_mean"]).fillna(0).to_numpy()])


def ablation_chart(name: str, table: pd.DataFrame, path: Path) -> Path:
    """Accuracy (mean over seeds, 95% interval over seeds and reviews) against the ablation's varied setting."""
    column, xlabel = ABLATION_AXES[name]
    positions_count = len(table) if column in CATEGORICAL else 0
    fig, ax = plt.subplots(figsize=(max(6.4, 1.6 * positions_count + 1.5), 4.6))
    for method, rows in table.groupby("method", sort=False):
        rows = rows.sort_values(column) if column not in CATEGORICAL else rows
        color = colour(method)
        if column in CATEGORICAL:
            positions = [f"{method}\n{value}" for value in rows[column]]
            ax.errorbar(positions, rows["accuracy_mean"], yerr=_interval_errors(rows), fmt="o", ms=7, capsize=4,
                        color=color, label=method)
            for position, (_, row) in zip(positions, rows.iterrows()):  # above its interval: no two notes meet
                versus = "reference" if pd.isna(row["diff"]) else f"{100 * row['diff']:+.1f} pts\n{row['verdict']}"
                params = "" if rows["trainable_params_mean"].nunique() == 1 else \
                    f"\n{row['trainable_params_mean']:,.0f} params"
                top = row["acc_high"] if not pd.isna(row["acc_high"]) else row["accuracy_mean"]
                ax.annotate(f"{versus}{params}", (position, top), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 4), textcoords="offset points")
        else:
            ax.errorbar(rows[column], rows["accuracy_mean"], yerr=_interval_errors(rows), marker="o",
                        capsize=3, color=color, label=method)
            if name == "rank":
                for _, row in rows.iterrows():
                    ax.annotate(f"{row['trainable_params_mean']:,.0f}", (row[column], row["accuracy_mean"]),
                                xytext=(6, 0), textcoords="offset points", ha="left", va="center", fontsize=7)
                ax.margins(x=0.15)  # room for the rightmost count
    if column in CATEGORICAL:
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.12 * (high - low))  # room for the notes above the highest interval
        ax.margins(x=0.12)  # and beside the outer points
    if column not in CATEGORICAL:
        ax.set_xscale("log", base=2)
        if name == "rank":
            ax.set_xticks(sorted(table[column].unique()), [str(int(v)) for v in sorted(table[column].unique())])
    seeds = f"{table['n'].min()}-{table['n'].max()}" if table["n"].min() != table["n"].max() else f"{table['n'].min()}"
    first = table.iloc[0]
    bars = "error bars: 95% CI (seeds + reviews)" if table["n"].min() > 1 else "error bars: 95% CI over reviews (one seed)"
    ax.set_title(f"Ablation: {name}\n{first['model']}: {first['train_size']} train / {first['eval_size']} test "
                 f"reviews, max length {first['max_length']}\n{seeds} seed(s); {bars}",
                 fontsize=9)
    ax.set_xlabel(xlabel + (" (numbers: trainable parameters)" if name == "rank" else ""))
    ax.set_ylabel("test accuracy")
    _legend(ax)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def sweep_chart(table: pd.DataFrame, picked: dict[str, float], path: Path, picked_for: str) -> Path:
    """Validation accuracy against learning rate per method (each seed, their mean), the pick dotted (`picked_for`:
    what the pick sets); each family of methods (the study's four, the added, the further) in a panel of its own."""
    groups = [(title, [m for m in table["method"].unique() if method_family(m) == family])
              for family, title in FAMILY_TITLES.items()]
    groups = [(name, methods) for name, methods in groups if methods]
    fig, axes = plt.subplots(1, len(groups), figsize=(6.4 * len(groups), 4.4), sharey=True, squeeze=False)
    for ax, (name, methods) in zip(axes[0], groups):
        for method in methods:
            rows = table[table["method"] == method].sort_values("lr")
            color = colour(method)
            ax.plot(rows["lr"], rows["val_mean"], marker="o", color=color, label=method)
            for lr, seeds in zip(rows["lr"], rows["per_seed"]):
                ax.scatter([lr] * len(seeds), seeds, s=12, color=color, alpha=0.5)
            if method in picked:
                ax.axvline(picked[method], color=color, linestyle=":", alpha=0.9)
        ax.set_xscale("log")
        ax.set_ylim(0.45, 1.0)
        ax.set_xlabel("learning rate (log scale)")
        ax.set_title(name if len(groups) > 1 else "", fontsize=9)
        _legend(ax)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation accuracy")
    low, high = int(table["seeds"].min()), int(table["seeds"].max())
    seeds = f"{high} seeds" if low == high else f"{low}–{high} seeds per rate"
    marks = f"dotted: the pick, {picked_for}" if picked else "no pick marked: the sweep is not complete"
    fig.suptitle(f"Learning-rate sweep on validation reviews (no test review drawn)\nline: mean of {seeds}; "
                 f"dots: each seed\n{marks}", fontsize=9)
    return _save(fig, path)


VERDICT_MARKERS = {"equivalent": "o", "better": "^", "worse": "v", "inconclusive": "s"}


def _interval_bars(ax, x, mean: pd.Series, low: pd.Series, high: pd.Series, color: str) -> None:
    """Vertical 95% interval bars, in accuracy points, at x."""
    ax.errorbar(x, 100 * mean, yerr=[100 * (mean - low), 100 * (high - mean)], fmt="none", ecolor=color, capsize=3)


def _budget_chart(fig, ax, table: pd.DataFrame, ylabel: str, title: str, path: Path) -> Path:
    """A budget chart finished alike: training reviews on a log axis ticked at the table's budgets, the labels, the
    legend outside; saved."""
    ticks = sorted(table["reviews"].unique())
    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{t / 1000:.3g}k" for t in ticks], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("training reviews (log scale)")
    ax.grid(alpha=0.3)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    _legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def budget_accuracy_chart(table: pd.DataFrame, path: Path) -> Path:
    """Test accuracy against training reviews, one line per method with its 95% band; the all-reviews point
    (a square) and the reference setting (a star: 3 epochs, 256 tokens) marked apart from the 1-epoch curve."""
    fig, ax = plt.subplots(figsize=(8.4, 4.6))
    for method, rows in table.groupby("method", sort=False):
        color = colour(method)
        curve = rows[rows["kind"].isin(["size", "all"])].sort_values("reviews")
        ax.plot(curve["reviews"], 100 * curve["accuracy_mean"], marker="o", color=color, label=method)
        ax.fill_between(curve["reviews"], 100 * curve["acc_low"], 100 * curve["acc_high"], color=color, alpha=0.15)
        for kind, marker, size in (("all", "s", 60), ("reference", "*", 140)):
            point = rows[rows["kind"] == kind]
            ax.scatter(point["reviews"], 100 * point["accuracy_mean"], marker=marker, s=size, color=color,
                       edgecolor="black", linewidth=0.5, zorder=3)
        reference = rows[rows["kind"] == "reference"]  # off the curve: its interval as a bar
        _interval_bars(ax, reference["reviews"], reference["accuracy_mean"], reference["acc_low"],
                       reference["acc_high"], color)
    for kind, marker, words in (("all", "s", "all training reviews, 1 epoch"),
                                ("reference", "*", "reference setting: 3 epochs, 256 tokens")):
        if (table["kind"] == kind).any():
            ax.scatter([], [], marker=marker, color="white", edgecolor="black", label=words)
    return _budget_chart(fig, ax, table, "test accuracy (%)", "Test accuracy against the training budget: 1 epoch, "
                         "128 tokens unless marked\nline: mean over seeds; band: 95% interval over seeds and reviews",
                         path)


def budget_gap_chart(table: pd.DataFrame, path: Path, margin: float) -> Path:
    """Each method's difference to the Full FT of its budget with its 95% interval against training reviews; the
    ±margin band of equivalence drawn, the marker naming the verdict."""
    fig, ax = plt.subplots(figsize=(8.4, 4.6))
    compared = table[table["diff"].notna()]
    methods = list(dict.fromkeys(compared["method"]))
    for offset, method in zip(np.linspace(-0.04, 0.04, max(len(methods), 1)), methods):
        rows = compared[compared["method"] == method].sort_values("reviews")
        x = rows["reviews"] * 10 ** offset  # side by side at one budget, on the log axis
        color = colour(method)
        curve = rows["kind"].isin(["size", "all"])
        ax.plot(x[curve], 100 * rows["diff"][curve], color=color, alpha=0.6, label=method)
        _interval_bars(ax, x, rows["diff"], rows["diff_low"], rows["diff_high"], color)
        for verdict, marker in VERDICT_MARKERS.items():
            for kind_is_reference in (False, True):  # the reference setting hollow: off the 1-epoch curve
                chosen = (rows["verdict"] == verdict) & ((rows["kind"] == "reference") == kind_is_reference)
                ax.scatter(x[chosen], 100 * rows["diff"][chosen], marker=marker, s=45, zorder=3, edgecolor=color,
                           facecolor="white" if kind_is_reference else color)
    for verdict, marker in VERDICT_MARKERS.items():
        if (compared["verdict"] == verdict).any():
            ax.scatter([], [], marker=marker, color="grey", label=verdict)
    if (compared["kind"] == "reference").any():
        ax.scatter([], [], marker="o", facecolor="white", edgecolor="grey", label="hollow: reference setting\n"
                   "(3 epochs, 256 tokens)")
    ax.axhspan(-100 * margin, 100 * margin, color="grey", alpha=0.15, label=f"±{100 * margin:g} point: equivalence")
    ax.axhline(0, color="black", linewidth=0.8)
    return _budget_chart(fig, ax, table, "difference to Full FT (accuracy points)", "Each method's difference to "
                         "the Full FT of the same budget\nbars: 95% interval over seeds and reviews; marker: the "
                         "verdict", path)
