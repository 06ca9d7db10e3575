"""The report: results/summary.md (two-level intervals, verdicts against Full FT by a stated margin) and the figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .ablations import ABLATIONS
from .config import PROFILES
from .methods import METHODS, method_names
from .curves import loss_curves_chart
from .plots import ablation_chart, pareto_chart, summary_charts
from .results import atomic_write_text, load_predictions, load_results, results_dir
from .sweep import sweep_folder, write_sweep_chart
from .stats import (LEVEL, TOST_LEVEL, detectable_difference_from, holm, two_level_difference, two_level_interval,
                    variance_components, verdict)

AGGREGATED = ["accuracy", "f1", "precision", "recall", "trainable_params", "adapter_params", "head_params",
              "model_state_mb", "working_memory_mb", "train_time_s", "eval_time_s", "peak_memory_mb",
              "eval_peak_memory_mb", "load_peak_memory_mb", "frozen_weights_mb", "trainable_weights_mb", "saved_mb",
              "train_samples_per_s", "eval_samples_per_s"]
SETTING = ["model", "train_size", "eval_size", "epochs", "max_length"]
REFERENCE = "full"
MARGIN = 0.01  # the equivalence margin, declared before the data: one accuracy point
ALPHA = 0.05
POWER = 0.8


def rules(margin: float = MARGIN) -> list[str]:
    """The verdict and advice rules, stated once (with the margin) and applied to the measured table."""
    return [
        "Tuning never sees the test set: each learning rate is the pick of the validation-only sweep "
        "(`sweeps/lr_<profile>_validation/summary.md`, its pick rule stated there), the truncation was chosen "
        "on validation too (`sweeps/truncation_<profile>_validation/summary.md`) and dropout compared there "
        "(`sweeps/dropout_<profile>_validation/summary.md`); tuning reviews and test reviews "
        "are disjoint, and tuning runs score no test review (tests/test_protocol.py).",
        "Like with like: gradient checkpointing is one study-wide setting; QLoRA's LoRA twin differs from it by the "
        "4-bit base alone; each row's precision is in the table (on a CPU with native bf16, `auto` keeps fp32 for a "
        "method whose bf16 the precision ablation did not find equivalent to fp32).",
        f"Intervals include both sources of variance: a two-level bootstrap resamples seeds within a method, then "
        f"test reviews (paired between methods). The margin δ = {100 * margin:g} accuracy point(s) is declared "
        "before the data (`report --margin`).",
        f"*equivalent* to Full FT: the {TOST_LEVEL:.0%} interval of the difference lies within ±δ (two one-sided "
        f"tests at {ALPHA:g}); *worse* / *better*: the {LEVEL:.0%} interval excludes 0 and the Holm-adjusted p "
        f"(across the methods compared with Full FT) is below {ALPHA:g}; *inconclusive* otherwise. No "
        "significant difference is not equivalence.",
        "Which method when: among the methods *equivalent* to Full FT, the one with the least model-state memory "
        "and the one with the shortest training time; with none equivalent, the verdicts and the smallest "
        f"difference the design detects at {POWER:.0%} power are all the advice there is.",
    ]


RULES = rules()


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
        if column not in keys:
            summary[column] = grouped[column].first()
    if "confusion_matrix" in ok:
        summary["confusion"] = grouped["confusion_matrix"].agg(_mean_confusion)
    summary = summary.reset_index()
    order = {m: i for i, m in enumerate(method_names())}
    return summary.sort_values(["model", "method", *extra, "lr", "label"],
                               key=lambda s: s.map(order) if s.name == "method" else s).reset_index(drop=True)


def _mean_confusion(matrices: pd.Series) -> str:
    """The seeds' confusion matrices, averaged and rounded, as text ('–' when none was stored)."""
    stored = [np.asarray(m) for m in matrices if m is not None]
    return str(np.rint(np.mean(stored, axis=0)).astype(int).tolist()) if stored else "–"


def correctness(keys: list[str], root: str | Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(seeds x reviews) correctness of the runs `keys` and their review ids; None if a run lacks predictions."""
    frames = [load_predictions(key, root) for key in keys]
    if not frames or any(f is None for f in frames):
        return None
    ids = frames[0]["review_id"].to_numpy()
    if any(not np.array_equal(f["review_id"].to_numpy(), ids) for f in frames):
        return None
    return np.stack([(f["label"] == f["predicted"]).to_numpy() for f in frames]), ids


def _reference(rows: pd.DataFrame) -> pd.DataFrame:
    """The Full FT row the others are compared with: Full FT at its defaults, else the only Full FT row."""
    defaults = rows[rows["label"] == REFERENCE]
    return defaults if len(defaults) == 1 else rows[rows["method"] == REFERENCE]


def _pairs(setting: pd.DataFrame, reference=None) -> list[tuple[int, list[int]]]:
    """(reference row, rows compared with it): Full FT against every other row, or, with `reference` (rows of one
    method -> mask of its reference row), each method's other rows against that method's reference row."""
    if reference is None:
        ref = _reference(setting)
        return [(ref.index[0], [i for i in setting.index if i != ref.index[0]])] if len(ref) == 1 else []
    pairs = []
    for _, rows in setting.groupby("method", sort=False):
        ref = rows[reference(rows)]
        if len(ref) == 1:
            pairs.append((ref.index[0], [i for i in rows.index if i != ref.index[0]]))
    return pairs


def add_statistics(summary: pd.DataFrame, root: str | Path | None, compare: bool = True,
                   margin: float = MARGIN, reference=None) -> pd.DataFrame:
    """Add each row's two-level accuracy interval and variance components, and (with compare) its verdict
    against its reference (Full FT; with `reference`, each method's own reference row, as in an ablation):
    the paired two-level difference, its 95% and 90% intervals, Holm's p over the setting's comparisons, and
    the smallest difference the design detects at 80% power."""
    if summary.empty:
        return summary
    summary = summary.copy()
    columns = ["acc_low", "acc_high", "seed_sd", "review_sd", "diff", "diff_low", "diff_high", "diff90_low",
               "diff90_high", "p_value", "p_holm", "detectable"]
    for column in columns:
        summary[column] = np.nan
    summary["verdict"] = ""
    for _, setting in summary.groupby(SETTING, dropna=False):
        runs = {}
        for index, row in setting.iterrows():
            mine = correctness(row["keys"], root)
            if mine is None:
                continue
            runs[index] = mine
            interval = two_level_interval(mine[0])
            summary.loc[index, ["acc_low", "acc_high"]] = interval.low, interval.high
            if len(mine[0]) > 1:
                parts, reviews = variance_components(mine[0]), mine[0].shape[1]
                # On one run's accuracy: the spread from the seed, and the sampling spread from the reviews.
                summary.loc[index, ["seed_sd", "review_sd"]] = (np.sqrt(parts.seed_var),
                                                               np.sqrt((parts.review_var + parts.residual_var) / reviews))
        differences = {}
        for ref_index, indices in (_pairs(setting, reference) if compare else []):
            ref = runs.get(ref_index)
            for index in indices:
                mine = runs.get(index)
                if ref is None or mine is None or not np.array_equal(mine[1], ref[1]):
                    continue
                difference = two_level_difference(mine[0], ref[0])
                differences[index] = difference
                summary.loc[index, columns[4:10]] = (difference.value, difference.ci95.low, difference.ci95.high,
                                                     difference.ci90.low, difference.ci90.high, difference.p_value)
                if len(mine[0]) > 1 and len(ref[0]) > 1:
                    summary.loc[index, "detectable"] = detectable_difference_from(mine[0], ref[0], ALPHA, POWER)
        for (index, difference), adjusted in zip(differences.items(), holm([d.p_value for d in differences.values()])):
            summary.loc[index, "p_holm"] = adjusted
            summary.loc[index, "verdict"] = verdict(difference, margin, adjusted, ALPHA)
    return summary


def advice(table: pd.DataFrame) -> list[str]:
    """Which method when, derived from the verdicts alone (RULES)."""
    lines: list[str] = []
    if table.empty:
        return lines
    for setting, rows in table.groupby(SETTING, dropna=False):
        reference = _reference(rows)
        others = rows[rows["verdict"] != ""]
        if len(reference) != 1 or others.empty:
            continue
        ref = reference.iloc[0]
        head = f"**{setting[0]}, {setting[1]} train / {setting[2]} test reviews, max length {setting[4]}:**"
        lines.append(f"- {head} " + "; ".join(f"{row['label']} is *{row['verdict']}* ({_points(row)})"
                                             for _, row in others.iterrows()) + ".")
        equivalent = others[others["verdict"] == "equivalent"]
        if not equivalent.empty:
            light = equivalent.loc[equivalent["model_state_mb_mean"].idxmin()]
            fast = equivalent.loc[equivalent["train_time_s_mean"].idxmin()]
            lines.append(f"  - Least model-state memory at Full FT's accuracy: **{light['label']}**, "
                         f"{light['model_state_mb_mean']:.0f} MB vs {ref['model_state_mb_mean']:.0f} MB, "
                         f"{light['trainable_params_mean'] / ref['trainable_params_mean']:.2%} of its trainable "
                         "parameters.")
            lines.append(f"  - Fastest training at Full FT's accuracy: **{fast['label']}**, "
                         f"{fast['train_time_s_mean']:.0f} s vs {ref['train_time_s_mean']:.0f} s "
                         f"({fast['train_time_s_mean'] / ref['train_time_s_mean']:.0%} of Full FT).")
        else:
            lines.append("  - No method is shown equivalent to Full FT at this margin; a verdict of *inconclusive* "
                         "needs more seeds or reviews, not a conclusion.")
        detectable = others["detectable"].dropna()
        if not detectable.empty:
            lines.append(f"  - This design (seeds × {int(ref['eval_size']) if str(ref['eval_size']).isdigit() else ref['eval_size']} "
                         f"test reviews) detects a difference to Full FT of {100 * detectable.min():.1f}–"
                         f"{100 * detectable.max():.1f} points at {POWER:.0%} power (two-sided, α = {ALPHA:g}).")
    return lines


def twin_lines(table: pd.DataFrame, frame: pd.DataFrame, root: str | Path | None, margin: float = MARGIN) -> list[str]:
    """Each method on a 4-bit base against its unquantized twin (identical settings, full-precision base):
    the effect of the 4-bit base alone, as a paired two-level difference with its verdict and the costs."""
    identities = {group: {k: v for k, v in identity.items() if k not in ("method", "seed")}
                  for group, identity in zip(frame["group"], frame["identity"]) if isinstance(identity, dict)}
    lines = []
    for _, row in table.iterrows():
        twin = METHODS[row["method"]].unquantized_twin if row["method"] in METHODS else None
        if twin is None:
            continue
        identity = identities.get(row["group"])
        same = table[(table["method"] == twin) & table["group"].map(lambda group: identities.get(group) == identity)]
        if len(same) != 1:
            continue
        other = same.iloc[0]
        mine, theirs = correctness(row["keys"], root), correctness(other["keys"], root)
        if mine is None or theirs is None or not np.array_equal(mine[1], theirs[1]):
            continue
        difference = two_level_difference(mine[0], theirs[0])
        interval = _difference_text(difference.value, difference.ci95.low, difference.ci95.high,
                                    difference.ci90.low, difference.ci90.high)
        lines.append(
            f"- **{row['label']} − {other['label']}** (the 4-bit base alone, {row['n']} and {other['n']} seeds): "
            f"{interval}, p = {_p(difference.p_value)}: *{verdict(difference, margin)}*; "
            f"model state {row['model_state_mb_mean']:.1f} vs {other['model_state_mb_mean']:.1f} MB, training "
            f"{row['train_time_s_mean']:.0f} vs {other['train_time_s_mean']:.0f} s.")
    return lines


def _difference_text(value: float, low: float, high: float, low90: float, high90: float) -> str:
    """A difference in points with its 95% and 90% intervals."""
    return (f"{100 * value:+.1f} points, {LEVEL:.0%} CI [{100 * low:+.1f}, {100 * high:+.1f}], "
            f"{TOST_LEVEL:.0%} CI [{100 * low90:+.1f}, {100 * high90:+.1f}]")


def _points(row) -> str:
    p = _p(row["p_holm"])
    interval = _difference_text(row["diff"], row["diff_low"], row["diff_high"], row["diff90_low"], row["diff90_high"])
    return f"{interval}, Holm p {'' if p.startswith('<') else '= '}{p}"


def _p(value: float) -> str:
    return "–" if pd.isna(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def _mean_std(row, column: str, fmt: str) -> str:
    mean, std = row[f"{column}_mean"], row[f"{column}_std"]
    if pd.isna(mean):
        return "–"
    return format(mean, fmt) if pd.isna(std) else f"{format(mean, fmt)} ± {format(std, fmt)}"


def _interval(row) -> str:
    return "–" if pd.isna(row["acc_low"]) else f"[{row['acc_low']:.4f}, {row['acc_high']:.4f}]"


def method_table(table: pd.DataFrame, varied: str | None = None, versus: str = "vs Full FT") -> list[str]:
    """Markdown rows: accuracy with its two-level interval and variance components, and the verdict against
    Full FT with the paired difference's 95% and 90% intervals, Holm's p and the detectable difference.

    `varied` names a column shown first (an ablation's varied setting).
    """
    first = f"| {varied} " if varied else ""
    lines = [
        f"{first}| model | method | seeds | lr | precision | accuracy (mean ± std) | {LEVEL:.0%} CI (seeds + reviews) "
        f"| seed sd / review sd (points) | {versus} (points, {LEVEL:.0%} CI) | {TOST_LEVEL:.0%} CI | Holm p "
        f"| verdict | detectable at {POWER:.0%} power (points) |",
        "|---" * (13 + bool(varied)) + "|",
    ]
    for _, row in table.iterrows():
        versus = "–" if pd.isna(row["diff"]) else (
            f"{100 * row['diff']:+.1f} [{100 * row['diff_low']:+.1f}, {100 * row['diff_high']:+.1f}]")
        tost = "–" if pd.isna(row["diff90_low"]) else f"[{100 * row['diff90_low']:+.1f}, {100 * row['diff90_high']:+.1f}]"
        parts = "–" if pd.isna(row["seed_sd"]) else f"{100 * row['seed_sd']:.2f} / {100 * row['review_sd']:.2f}"
        detectable = "–" if pd.isna(row["detectable"]) else f"{100 * row['detectable']:.1f}"
        prefix = f"| {row[varied]} " if varied else ""
        lines.append(
            f"{prefix}| {row['model']} | {row['label']} | {row['n']} | {row['lr']:.2g} | {row['precision_mode']} "
            f"| {_mean_std(row, 'accuracy', '.4f')} | {_interval(row)} | {parts} | {versus} | {tost} "
            f"| {_p(row['p_holm'])} | {row['verdict'] or '–'} | {detectable} |"
        )
    return lines


def cost_table(table: pd.DataFrame) -> list[str]:
    """Markdown rows: trainable parameters (adapter + head), training time, memory and the other metrics."""
    lines = ["| model | method | trainable params (adapter + head) | train time (s) | model state (MB) "
             "| working memory in training (MB) | base bits | F1 | precision | recall "
             "| confusion [[TN, FP], [FN, TP]] (mean over seeds) |", "|---" * 11 + "|"]
    for _, row in table.iterrows():
        params = f"{row['trainable_params_mean']:,.0f}"
        if row.get("adapter_params_mean", 0) and not pd.isna(row.get("adapter_params_mean")):
            params += f" ({row['adapter_params_mean']:,.0f} + {row['head_params_mean']:,.0f})"
        lines.append(
            f"| {row['model']} | {row['label']} | {params} | {_mean_std(row, 'train_time_s', '.0f')} "
            f"| {_mean_std(row, 'model_state_mb', '.1f')} | {_mean_std(row, 'working_memory_mb', '.0f')} "
            f"| {row['base_weight_bits']:.0f} | {_mean_std(row, 'f1', '.4f')} | {_mean_std(row, 'precision', '.4f')} "
            f"| {_mean_std(row, 'recall', '.4f')} | {row.get('confusion', '–')} |")
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
                     figures: list[Path] | None = None, margin: float = MARGIN,
                     root: str | Path | None = None) -> str:
    """The summary as a markdown document, generated only from stored runs and their predictions."""
    lines = ["# Summary", "",
             "Generated by `python -m peft_imdb report` from the run records in `runs/` and the per-review "
             "predictions in `predictions/` beside this file; do not edit by hand.", ""]
    if table.empty:
        lines.append("No finished (`ok`) runs yet.")
    else:
        lines += [_settings_line(frame), "", "## How the comparison is kept honest", ""]
        lines += [f"{i}. {r}" for i, r in enumerate(rules(margin), 1)]
        lines += ["", "## Accuracy and verdicts against Full FT", "",
                  "Accuracy is the mean ± std over seeds; its interval and every difference resample seeds and "
                  "reviews (two-level bootstrap); seed sd / review sd split one run's accuracy spread into the part "
                  "from the training seed and the sampling part from the finite test reviews (a two-way "
                  "random-effects decomposition). *Detectable* is the smallest true difference "
                  f"to Full FT this design finds at {POWER:.0%} power.", ""]
        lines += method_table(table)
        twins = twin_lines(table, frame, root, margin)
        if twins:
            lines += ["", "## The 4-bit base alone", "",
                      "QLoRA against LoRA with exactly QLoRA's settings (learning rate included) on a full-precision "
                      "base, paired on the same test reviews; the verdict by the same margin.", ""] + twins
        lines += ["", "## Which method when", ""] + (advice(table) or ["Not enough runs with predictions to compare "
                                                                    "with Full FT."])
        lines += ["", "## Costs and other metrics", "",
                  "Model state: weights (4-bit packed for QLoRA) + gradients + AdamW's two moments of the trainable "
                  "weights, computed from the model. Working memory: the training peak above the memory held when "
                  f"training began ({', '.join(sorted(set(table['memory_kind'].dropna())))}; README, \"How to read the "
                  "memory figures\"); – where the run predates that measurement.", ""]
        lines += cost_table(table)
        lines += ["", "## Memory per phase", ""] + memory_table(table)
    for name, ablation in (ablations or {}).items():
        lines += ["", f"## Ablation: {name}", "", f"From `ablations/{name}/` (`python -m peft_imdb ablation {name}`). "
                  f"{ABLATIONS[name].question} Verdicts by the rules above, Holm across this ablation's "
                  "comparisons.", ""]
        lines += ablation_rows(name, ablation)
    if figures:
        lines += ["", "## Figures", ""] + [f"- `{Path(p).name}`" for p in figures]
    others = frame[frame["status"] != "ok"]
    if not others.empty:
        lines += ["", "## Runs that did not finish", "", "| model | method | seed | status | reason |",
                  "|---|---|---|---|---|"]
        for _, row in others.iterrows():
            lines.append(f"| {row['model']} | {row['method']} | {row['seed']} | {row['status']} | {row['reason']} |")
    return "\n".join(lines) + "\n"


def ablation_rows(name: str, table: pd.DataFrame) -> list[str]:
    """An ablation's markdown table: its varied column first, each row against its reference."""
    return method_table(table, varied=ABLATIONS[name].column, versus="vs reference")


def ablation_tables(root: str | Path | None = None, margin: float = MARGIN) -> dict[str, pd.DataFrame]:
    """The statistics table of every ablation with finished runs under <results>/ablations/, by name."""
    tables = {}
    for name in ABLATIONS:
        folder = results_dir(root) / "ablations" / name
        table = ablation_table(name, folder, margin) if (folder / "runs").is_dir() else pd.DataFrame()
        if not table.empty:
            tables[name] = table
    return tables


def ablation_table(name: str, folder: str | Path, margin: float = MARGIN) -> pd.DataFrame:
    """The summary of one ablation folder, with its varied column and statistics."""
    from .targets import placement

    frame = load_results(folder)
    if frame.empty or (frame["status"] == "ok").sum() == 0:
        return pd.DataFrame()
    if name == "targets":
        frame = frame.assign(placement=[placement(r.target_modules, r.model_type) for r in frame.itertuples()])
    ablation = ABLATIONS[name]
    return add_statistics(summarize(frame, (ablation.column,)), folder, margin=margin, reference=ablation.reference)


def write_ablation(name: str, folder: str | Path, figures_dir: str | Path = "figures") -> list[Path]:
    """The ablation's figure (figures/ablation_<name>.png); empty when it has no finished runs."""
    table = ablation_table(name, folder)
    if table.empty:
        return []
    return [ablation_chart(name, table, Path(figures_dir) / f"ablation_{name}.png")]


def write_report(results: str | Path | None = None, figures_dir: str | Path = "figures",
                 margin: float = MARGIN) -> list[Path]:
    """Write results/summary.md, the bar charts, the Pareto plots and the ablation figures; return the paths."""
    root = results_dir(results)
    frame = load_results(root)
    table = add_statistics(summarize(frame), root, margin=margin) if not frame.empty else pd.DataFrame()
    ablations = ablation_tables(root, margin)
    figures: list[Path] = []
    if not table.empty:
        figures += summary_charts(table, figures_dir)
        figures += [pareto_chart(table, x, Path(figures_dir) / f"pareto_{x_name}.png", log)
                    for x, x_name, log in (("model_state_mb", "memory", False),
                                           ("trainable_params", "params", True),
                                           ("train_time_s", "time", False))]
        curves = loss_curves_chart(frame, Path(figures_dir) / "loss_curves.png")  # None before any run logs them
        figures += [curves] if curves is not None else []
    figures += [ablation_chart(name, t, Path(figures_dir) / f"ablation_{name}.png") for name, t in ablations.items()]
    sweeps = sorted({folder for folder in (sweep_folder(p, root) for p in PROFILES.values()) if folder.is_dir()})
    for folder in sweeps:
        figures += write_sweep_chart(folder, figures_dir)
    path = Path(root) / "summary.md"
    atomic_write_text(path, summary_markdown(table, frame, ablations, figures, margin, root))
    return [path, *figures]
