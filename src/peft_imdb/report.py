"""The report: results/summary.md (two-level intervals, verdicts against Full FT by a stated margin) and the figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .comparison import ALPHA, MARGIN, POWER, SETTING, AblationTable, add_statistics, correctness, summarize
from .curves import loss_curves_chart
from .learning import RULE
from .matrix_log import log_lines
from .methods import METHODS
from .plots import ablation_chart, pareto_chart, summary_charts
from .results import atomic_write_text, results_dir
from .stats import LEVEL, TOST_LEVEL, two_level_difference, verdict
from .sweep import write_sweep_chart
from .table import load_results


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
        f"(across the methods of one family compared with Full FT: the study's four with QLoRA's twin, the added "
        f"methods, the further methods, each its own family) is below {ALPHA:g}; *inconclusive* otherwise. No "
        "significant difference is not equivalence.",
        "Which method when: among the methods *equivalent* to Full FT, the one with the least model-state memory "
        "and the one with the shortest training time; with none equivalent, the verdicts and the smallest "
        f"difference the design detects at {POWER:.0%} power are all the advice there is.",
    ]


RULES = rules()


def advice(table: pd.DataFrame) -> list[str]:
    """Which method when, derived from the verdicts alone (RULES)."""
    lines: list[str] = []
    if table.empty:
        return lines
    groups = [(setting, versus, others) for setting, rows in table.groupby(SETTING, dropna=False)
              for versus, others in rows[rows["verdict"] != ""].groupby("versus", sort=False)]
    for setting, versus, others in groups:
        rows = table[(table[SETTING].astype(str) == pd.Series(setting, index=SETTING).astype(str)).all(axis=1)]
        ref = rows[rows["label"] + " (" + rows["precision_mode"].astype(str) + ")" == versus].iloc[0]
        against = f" against Full FT in {ref['precision_mode']}" if table["precision_mode"].nunique() > 1 else ""
        head = (f"**{setting[0]}, {setting[1]} train / {setting[2]} test reviews, max length {setting[4]}"
                f"{against}:**")
        lines.append(f"- {head} " + "; ".join(f"{row['label']} is *{row['verdict']}* ({_points(row)})"
                                             for _, row in others.iterrows()) + ".")
        equivalent = others[others["verdict"] == "equivalent"]
        if not equivalent.empty:
            measured = equivalent.dropna(subset=["model_state_mb_mean"])  # (records that predate the figure lack it)
            if not measured.empty:
                light = measured.loc[measured["model_state_mb_mean"].idxmin()]
                lines.append(f"  - Least model-state memory at Full FT's accuracy: **{light['label']}**, "
                             f"{light['model_state_mb_mean']:.0f} MB vs {ref['model_state_mb_mean']:.0f} MB, "
                             f"{light['trainable_params_mean'] / ref['trainable_params_mean']:.2%} of its trainable "
                             "parameters.")
            timed = equivalent.dropna(subset=["train_time_s_mean"])
            if not timed.empty:
                fast = timed.loc[timed["train_time_s_mean"].idxmin()]
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
        if row.get("predictions_note") or other.get("predictions_note"):
            continue
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


def number_or_dash(value, fmt: str) -> str:
    """A value formatted, or '–' where a record lacks it."""
    return "–" if value is None or pd.isna(value) else format(value, fmt)


def _interval(row) -> str:
    if row.get("predictions_note"):
        return row["predictions_note"]
    return "–" if pd.isna(row["acc_low"]) else f"[{row['acc_low']:.4f}, {row['acc_high']:.4f}]"


def _accuracy(row) -> str:
    """Mean ± std over seeds, and how many of its runs did not learn (learning.RULE) when any."""
    flagged = int(row.get("not_learned", 0) or 0)
    note = f" (includes {flagged} run{'s' if flagged > 1 else ''} that did not learn)" if flagged else ""
    return _mean_std(row, "accuracy", ".4f") + note


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
        other = str(row.get("versus", "")).rsplit("(", 1)[-1].rstrip(")")  # the reference's precision
        versus = "–" if pd.isna(row["diff"]) else (
            f"{100 * row['diff']:+.1f} [{100 * row['diff_low']:+.1f}, {100 * row['diff_high']:+.1f}]"
            + (f" vs {other}" if other and other != row["precision_mode"] else ""))
        tost = "–" if pd.isna(row["diff90_low"]) else f"[{100 * row['diff90_low']:+.1f}, {100 * row['diff90_high']:+.1f}]"
        parts = "–" if pd.isna(row["seed_sd"]) else f"{100 * row['seed_sd']:.2f} / {100 * row['review_sd']:.2f}"
        detectable = "–" if pd.isna(row["detectable"]) else f"{100 * row['detectable']:.1f}"
        prefix = f"| {row[varied]} " if varied else ""
        lines.append(
            f"{prefix}| {row['model']} | {row['label']} | {row['n']} | {row['lr']:.2g} | {row['precision_mode']} "
            f"| {_accuracy(row)} | {_interval(row)} | {parts} | {versus} | {tost} "
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
            f"| {number_or_dash(row['base_weight_bits'], '.0f')} | {_mean_std(row, 'f1', '.4f')} "
            f"| {_mean_std(row, 'precision', '.4f')} | {_mean_std(row, 'recall', '.4f')} | {row.get('confusion', '–')} |")
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


def summary_markdown(table: pd.DataFrame, frame: pd.DataFrame, ablations: list[AblationTable] | None = None,
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
                  f"training began ({', '.join(sorted(set(table['memory_kind'].dropna())))}; docs/results.md, \"How to "
                  "read the memory figures\"); – where the run predates that measurement.", ""]
        lines += cost_table(table)
        lines += ["", "## Memory per phase", ""] + memory_table(table)
        wall = log_lines(root)
        if wall:
            lines += ["", "## Wall time", "", "The matrix commands that trained the runs above (`matrix_log.json`):",
                      ""] + wall
    for ablation in ablations or []:
        lines += ["", f"## Ablation: {ablation.name}", "", f"From `ablations/{ablation.name}/` (`python -m peft_imdb "
                  f"experiment {ablation.name}`). {ablation.question} Verdicts by the rules above, Holm across this "
                  "ablation's "
                  "comparisons.", ""]
        lines += ablation_rows(ablation)
    if figures:
        lines += ["", "## Figures", ""] + [f"- `{Path(p).name}`" for p in figures]
    lines += not_learned_rows(frame)
    others = frame[frame["status"] != "ok"]
    if not others.empty:
        lines += ["", "## Runs that did not finish", "", "| model | method | seed | status | reason |",
                  "|---|---|---|---|---|"]
        for _, row in others.iterrows():
            lines.append(f"| {row['model']} | {row['method']} | {row['seed']} | {row['status']} | {row['reason']} |")
    return "\n".join(lines) + "\n"


def not_learned_rows(frame: pd.DataFrame) -> list[str]:
    """The finished runs the learning rule flags, apart: each with its accuracy and why (none: no lines)."""
    flagged = frame[(frame["status"] == "ok") & frame["learned"].eq(False)] if "learned" in frame else frame.iloc[:0]
    if flagged.empty:
        return []
    lines = ["", "## Runs that did not learn", "", f"Stored as finished and counted in their row's mean (marked there); "
             f"by the rule stated in `learning.py`: {RULE}.", "", "| model | method | seed | accuracy | why |",
             "|---|---|---|---|---|"]
    for _, row in flagged.iterrows():
        accuracy = "–" if pd.isna(row["accuracy"]) else f"{row['accuracy']:.4f}"
        lines.append(f"| {row['model']} | {row['label']} | {row['seed']} | {accuracy} | {row['not_learned_reason']} |")
    return lines


def ablation_rows(ablation: AblationTable) -> list[str]:
    """An ablation's markdown table: its varied column first, each row against its reference."""
    return method_table(ablation.table, varied=ablation.column, versus="vs reference")


def write_ablation(ablation: AblationTable, figures_dir: str | Path = "figures") -> Path:
    """The ablation's figure: figures/ablation_<name>.png."""
    return ablation_chart(ablation.name, ablation.table, Path(figures_dir) / f"ablation_{ablation.name}.png")


def write_report(results: str | Path | None = None, figures_dir: str | Path = "figures", margin: float = MARGIN,
                 ablations: list[AblationTable] | None = None,
                 sweeps: list[Path] | None = None) -> list[Path]:
    """Write results/summary.md, the bar charts, the Pareto plots, the loss curves, each ablation's figure and each
    validation sweep's chart (`sweeps`: their folders); return the paths."""
    root = results_dir(results)
    frame = load_results(root)
    table = add_statistics(summarize(frame), root, margin=margin) if not frame.empty else pd.DataFrame()
    figures: list[Path] = []
    if not table.empty:
        figures += summary_charts(table, figures_dir)
        figures += [pareto_chart(table, x, Path(figures_dir) / f"pareto_{x_name}.png", log)
                    for x, x_name, log in (("model_state_mb", "memory", False),
                                           ("trainable_params", "params", True),
                                           ("train_time_s", "time", False))]
        curves = loss_curves_chart(frame, Path(figures_dir) / "loss_curves.png")  # None before any run logs them
        figures += [curves] if curves is not None else []
    figures += [write_ablation(ablation, figures_dir) for ablation in ablations or []]
    for folder in sweeps or []:
        figures += write_sweep_chart(folder, figures_dir)
    path = Path(root) / "summary.md"
    atomic_write_text(path, summary_markdown(table, frame, ablations, figures, margin, root))
    return [path, *figures]
