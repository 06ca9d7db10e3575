"""The report: results/summary.md (means, intervals, paired tests, derived advice) and the figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .ablations import ABLATIONS
from .methods import method_names
from .plots import ablation_chart, pareto_chart, summary_charts
from .results import atomic_write_text, load_predictions, load_results, results_dir
from .stats import LEVEL, mean_interval, paired_difference

AGGREGATED = ["accuracy", "f1", "trainable_params", "train_time_s", "eval_time_s", "peak_memory_mb",
              "eval_peak_memory_mb", "load_peak_memory_mb", "frozen_weights_mb", "trainable_weights_mb", "saved_mb",
              "train_samples_per_s", "eval_samples_per_s"]
SETTING = ["model", "train_size", "eval_size", "epochs", "max_length"]
REFERENCE = "full"
# The advice rules, stated once and applied to the measured table.
RULES = [
    f"A method *matches* Full FT when the {LEVEL:.0%} interval of its accuracy difference to Full FT "
    "(paired over the same test reviews, seed-averaged) contains 0.",
    "Among the methods that match, the advice names the one with the lowest peak training memory and the "
    "one with the shortest training time; when none matches, it names the most accurate alternative and "
    "what it loses.",
]


def summarize(frame: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Mean and std over seeds of every `ok` run, one row per run identity without the seed (its group).

    Two runs that differ in anything but the seed are two rows; the label says how a row differs from the
    method's defaults (`lora (r=16)`).
    """
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    keys = ["model", "method", "train_size", "eval_size", "epochs", "max_length", "lr", "group", "label", *extra]
    ok = ok.assign(**{k: ok[k].fillna("full") for k in ("train_size", "eval_size")})
    aggregated = [c for c in AGGREGATED if c in ok.columns]
    ok = ok.assign(**{c: pd.to_numeric(ok[c], errors="coerce") for c in aggregated})
    grouped = ok.groupby(keys, sort=False, dropna=False)
    summary = grouped[aggregated].agg(["mean", "std"])
    summary.columns = [f"{col}_{stat}" for col, stat in summary.columns]
    summary["n"] = grouped.size()
    summary["keys"] = grouped["key"].agg(list)
    for column in ("memory_kind", "base_weight_bits", "device", "precision_mode"):
        summary[column] = grouped[column].first()
    summary = summary.reset_index()
    order = {m: i for i, m in enumerate(method_names())}
    return summary.sort_values(["model", "method", *extra, "lr", "label"],
                               key=lambda s: s.map(order) if s.name == "method" else s).reset_index(drop=True)


def correctness(keys: list[str], root: str | Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(seeds x reviews) correctness of the runs `keys` and their review ids; None if a run lacks predictions."""
    frames = [load_predictions(key, root) for key in keys]
    if not frames or any(f is None for f in frames):
        return None
    ids = frames[0]["review_id"].to_numpy()
    if any(not np.array_equal(f["review_id"].to_numpy(), ids) for f in frames):
        return None
    return np.stack([(f["label"] == f["predicted"]).to_numpy() for f in frames]), ids


def add_statistics(summary: pd.DataFrame, root: str | Path | None, compare: bool = True) -> pd.DataFrame:
    """Add each group's seed-averaged accuracy interval and (with compare) its paired comparison with Full FT."""
    if summary.empty:
        return summary
    summary = summary.copy()
    columns = ["acc_low", "acc_high", "diff", "diff_low", "diff_high", "p_value"]
    for column in columns:
        summary[column] = np.nan
    for _, setting in summary.groupby(SETTING, dropna=False):
        reference = setting[setting["label"] == REFERENCE]  # Full FT at its defaults
        ref = correctness(reference.iloc[0]["keys"], root) if compare and len(reference) == 1 else None
        for index, row in setting.iterrows():
            mine = correctness(row["keys"], root)
            if mine is None:
                continue
            interval = mean_interval(mine[0].mean(axis=0))
            summary.loc[index, ["acc_low", "acc_high"]] = interval.low, interval.high
            if ref is not None and row["label"] != REFERENCE and np.array_equal(mine[1], ref[1]):
                comparison = paired_difference(mine[0], ref[0])
                summary.loc[index, columns[2:]] = (comparison.difference.value, comparison.difference.low,
                                                   comparison.difference.high, comparison.p_value)
    return summary


def advice(table: pd.DataFrame) -> list[str]:
    """Which method when, derived from the measured table by RULES."""
    lines: list[str] = []
    if table.empty:
        return lines
    for setting, rows in table.groupby(SETTING, dropna=False):
        reference = rows[rows["label"] == REFERENCE]
        others = rows[(rows["label"] != REFERENCE) & rows["diff"].notna()]
        if len(reference) != 1 or others.empty:
            continue
        ref = reference.iloc[0]
        head = f"**{setting[0]}, {setting[1]} train / {setting[2]} test reviews, max length {setting[4]}:**"
        matches = others[(others["diff_low"] <= 0) & (others["diff_high"] >= 0)]
        parts = []
        for _, row in others.iterrows():
            verdict = "matches Full FT" if row.name in matches.index else (
                "is below Full FT" if row["diff_high"] < 0 else "is above Full FT")
            parts.append(f"{row['label']} {verdict} ({_points(row)})")
        lines.append(f"- {head} " + "; ".join(parts) + ".")
        if not matches.empty:
            light = matches.loc[matches["peak_memory_mb_mean"].idxmin()]
            fast = matches.loc[matches["train_time_s_mean"].idxmin()]
            lines.append(f"  - Least memory at Full FT's accuracy: **{light['label']}**, "
                         f"{light['peak_memory_mb_mean']:.0f} MB peak in training vs {ref['peak_memory_mb_mean']:.0f} MB "
                         f"({light['peak_memory_mb_mean'] / ref['peak_memory_mb_mean']:.0%} of Full FT), "
                         f"{light['trainable_params_mean'] / ref['trainable_params_mean']:.2%} of its trainable parameters.")
            lines.append(f"  - Fastest training at Full FT's accuracy: **{fast['label']}**, "
                         f"{fast['train_time_s_mean']:.0f} s vs {ref['train_time_s_mean']:.0f} s "
                         f"({fast['train_time_s_mean'] / ref['train_time_s_mean']:.0%} of Full FT).")
        else:
            best = others.loc[others["diff"].idxmax()]
            lines.append(f"  - No PEFT method matches Full FT here; the closest is **{best['label']}** "
                         f"({_points(best)}) at {best['peak_memory_mb_mean'] / ref['peak_memory_mb_mean']:.0%} of "
                         "Full FT's peak training memory.")
    return lines


def _points(row) -> str:
    return (f"{100 * row['diff']:+.1f} points, {LEVEL:.0%} CI [{100 * row['diff_low']:+.1f}, "
            f"{100 * row['diff_high']:+.1f}], p {'' if _p(row['p_value']).startswith('<') else '= '}{_p(row['p_value'])}")


def _p(value: float) -> str:
    return "–" if pd.isna(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def _mean_std(row, column: str, fmt: str) -> str:
    mean, std = row[f"{column}_mean"], row[f"{column}_std"]
    if pd.isna(mean):
        return "–"
    return format(mean, fmt) if pd.isna(std) else f"{format(mean, fmt)} ± {format(std, fmt)}"


def _interval(row) -> str:
    return "–" if pd.isna(row["acc_low"]) else f"[{row['acc_low']:.4f}, {row['acc_high']:.4f}]"


def method_table(table: pd.DataFrame, varied: str | None = None) -> list[str]:
    """Markdown rows: accuracy mean ± std, its interval, the paired comparison with Full FT, and the costs.

    `varied` names a column shown first (an ablation's varied setting).
    """
    first = f"| {varied} " if varied else ""
    lines = [
        f"{first}| model | method | seeds | lr | precision | accuracy (mean ± std) | {LEVEL:.0%} CI | F1 "
        f"| vs Full FT (points, {LEVEL:.0%} CI) | p | trainable params | train time (s) "
        "| peak memory, train (MB) | base bits | saved (MB) |",
        "|---" * (15 + bool(varied)) + "|",
    ]
    for _, row in table.iterrows():
        versus = "–" if pd.isna(row["diff"]) else (
            f"{100 * row['diff']:+.1f} [{100 * row['diff_low']:+.1f}, {100 * row['diff_high']:+.1f}]")
        prefix = f"| {row[varied]} " if varied else ""
        lines.append(
            f"{prefix}| {row['model']} | {row['label']} | {row['n']} | {row['lr']:.2g} | {row['precision_mode']} "
            f"| {_mean_std(row, 'accuracy', '.4f')} | {_interval(row)} | {_mean_std(row, 'f1', '.4f')} "
            f"| {versus} | {_p(row['p_value'])} | {row['trainable_params_mean']:,.0f} "
            f"| {_mean_std(row, 'train_time_s', '.0f')} | {_mean_std(row, 'peak_memory_mb', '.0f')} "
            f"| {row['base_weight_bits']:.0f} | {row['saved_mb_mean']:.2f} |"
        )
    return lines


def memory_table(table: pd.DataFrame) -> list[str]:
    """Markdown rows: peak memory per phase, and the bytes the model's weights take (4-bit packed for QLoRA)."""
    lines = ["| model | method | load (MB) | train (MB) | eval (MB) | weights in memory (MB) | of which trainable (MB) "
             "| memory kind |", "|---|---|---|---|---|---|---|---|"]
    for _, row in table.iterrows():
        weights = row["frozen_weights_mb_mean"] + row["trainable_weights_mb_mean"]
        lines.append(f"| {row['model']} | {row['label']} | {_mean_std(row, 'load_peak_memory_mb', '.0f')} "
                     f"| {_mean_std(row, 'peak_memory_mb', '.0f')} | {_mean_std(row, 'eval_peak_memory_mb', '.0f')} "
                     f"| {weights:.1f} | {row['trainable_weights_mb_mean']:.1f} | {row['memory_kind']} |")
    return lines


def _settings_line(frame: pd.DataFrame) -> str:
    ok = frame[frame["status"] == "ok"]
    devices = ", ".join(sorted(set(ok["device"].dropna())))
    versions = sorted({f"torch {v.get('torch')}, transformers {v.get('transformers')}, peft {v.get('peft')}, "
                       f"bitsandbytes {v.get('bitsandbytes')}" for v in ok["versions"].dropna()}) \
        if "versions" in ok else []
    return f"Device: {devices or '–'}. Versions: {'; '.join(versions) or '–'}."


def summary_markdown(table: pd.DataFrame, frame: pd.DataFrame, ablations: dict[str, pd.DataFrame] | None = None,
                     figures: list[Path] | None = None) -> str:
    """The summary as a markdown document, generated only from stored runs and their predictions."""
    lines = ["# Summary", "",
             "Generated by `python -m peft_imdb report` from the run records in `runs/` and the per-review "
             "predictions in `predictions/` beside this file; do not edit by hand.", ""]
    if table.empty:
        lines.append("No finished (`ok`) runs yet.")
    else:
        lines += [_settings_line(frame), "",
                  f"Accuracy is the mean ± std over seeds; the {LEVEL:.0%} CI is a bootstrap over test reviews of "
                  "the seed-averaged accuracy; *vs Full FT* is the paired difference on the same reviews with its "
                  "bootstrap CI, and p tests \"no difference\" (paired sign-flip permutation test over reviews; "
                  "McNemar's exact test when each side has one seed). Memory: "
                  f"{', '.join(sorted(set(table['memory_kind'].dropna())))} (see the README).", ""]
        lines += method_table(table)
        lines += ["", "## Which method when", "", "Rules:", ""] + [f"{i}. {r}" for i, r in enumerate(RULES, 1)]
        lines += [""] + (advice(table) or ["Not enough runs with predictions to compare with Full FT."])
        lines += ["", "## Memory per phase", ""] + memory_table(table)
    for name, ablation in (ablations or {}).items():
        lines += ["", f"## Ablation: {name}", "", f"From `ablations/{name}/` (`python -m peft_imdb ablation {name}`).", ""]
        lines += method_table(ablation, varied=None if name == "lr" else ABLATIONS[name])
    if figures:
        lines += ["", "## Figures", ""] + [f"- `{Path(p).name}`" for p in figures]
    others = frame[frame["status"] != "ok"]
    if not others.empty:
        lines += ["", "## Runs that did not finish", "", "| model | method | seed | status | reason |",
                  "|---|---|---|---|---|"]
        for _, row in others.iterrows():
            lines.append(f"| {row['model']} | {row['method']} | {row['seed']} | {row['status']} | {row['reason']} |")
    return "\n".join(lines) + "\n"


def ablation_table(name: str, folder: str | Path) -> pd.DataFrame:
    """The summary of one ablation folder, with its varied column and statistics."""
    from .config import model_type
    from .targets import placement

    frame = load_results(folder)
    if frame.empty or (frame["status"] == "ok").sum() == 0:
        return pd.DataFrame()
    if name == "targets":
        frame = frame.assign(placement=[placement(r.target_modules, model_type(r.model)) for r in frame.itertuples()])
    extra = () if name == "lr" else (ABLATIONS[name],)
    return add_statistics(summarize(frame, extra), folder, compare=False)  # an ablation varies one method


def write_ablation(name: str, folder: str | Path, figures_dir: str | Path = "figures") -> list[Path]:
    """The ablation's figure (figures/ablation_<name>.png); empty when it has no finished runs."""
    table = ablation_table(name, folder)
    if table.empty:
        return []
    return [ablation_chart(name, table, Path(figures_dir) / f"ablation_{name}.png")]


def write_report(results: str | Path | None = None, figures_dir: str | Path = "figures") -> list[Path]:
    """Write results/summary.md, the bar charts, the Pareto plots and the ablation figures; return the paths."""
    root = results_dir(results)
    frame = load_results(root)
    table = add_statistics(summarize(frame), root) if not frame.empty else pd.DataFrame()
    ablations = {}
    for name in ABLATIONS:
        folder = root / "ablations" / name
        if (folder / "runs").is_dir():
            ablations[name] = ablation_table(name, folder)
    ablations = {k: v for k, v in ablations.items() if not v.empty}
    figures: list[Path] = []
    if not table.empty:
        figures += summary_charts(table, figures_dir)
        figures += [pareto_chart(table, x, Path(figures_dir) / f"pareto_{x_name}.png", log)
                    for x, x_name, log in (("peak_memory_mb", "memory", False),
                                           ("trainable_params", "params", True),
                                           ("train_time_s", "time", False))]
    figures += [ablation_chart(name, t, Path(figures_dir) / f"ablation_{name}.png") for name, t in ablations.items()]
    path = Path(root) / "summary.md"
    atomic_write_text(path, summary_markdown(table, frame, ablations, figures))
    return [path, *figures]
