"""The headline of the committed study: one row per method against Full FT, and the sentences the README states."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .comparison import ALPHA, MARGIN, REFERENCE, SETTING, add_statistics, summarize
from .methods import METHODS, method_names
from .results import results_dir
from .stats import LEVEL, TOST_LEVEL
from .table import load_results

COLUMNS = ["method", "seeds", "accuracy", "vs_full", "vs_full_90", "verdict", "trainable_percent",
           "train_time_s", "model_state_mb"]


def study_statistics(root: str | Path | None = None) -> pd.DataFrame:
    """The report's statistics table of the study setting (the one whose Full FT row has the most seeds)."""
    frame = load_results(results_dir(root))
    table = add_statistics(summarize(frame), results_dir(root)) if not frame.empty else pd.DataFrame()
    if table.empty:
        return table
    table = table.merge(_trainable_percent(frame), on="group", how="left")
    references = table[table["label"] == REFERENCE]
    if references.empty:
        return table.iloc[0:0]
    setting = references.loc[references["n"].idxmax(), SETTING]
    same = (table[SETTING].astype(str) == setting.astype(str)).all(axis=1)
    return table[same].reset_index(drop=True)


def _trainable_percent(frame: pd.DataFrame) -> pd.DataFrame:
    """Each group's stored trainable share of all parameters (percent), mean over its `ok` runs."""
    ok = frame[frame["status"] == "ok"]
    return (ok.assign(trainable_percent=pd.to_numeric(ok["trainable_percent"], errors="coerce"))
            .groupby("group", sort=False)["trainable_percent"].mean().reset_index())


def _label(method: str) -> str:
    """How the registry names a method."""
    return METHODS[method].label if method in METHODS else method


def _arm_label(row) -> str:
    """A row's label with the registry's method name: `lora (lr=0.002)` -> `LoRA (lr=0.002)`."""
    return _label(row["method"]) + str(row["label"])[len(str(row["method"])):]


def _defaults(table: pd.DataFrame) -> pd.DataFrame:
    """One row per method, its default settings, in the registry's order."""
    if table.empty:
        return table
    rows = [table[(table["method"] == m) & (table["label"] == m)] for m in method_names()]
    rows = [r for r in rows if len(r) == 1]
    return pd.concat(rows).reset_index(drop=True) if rows else table.iloc[0:0]


def _pct(value: float) -> str:
    """A share as a percentage with one decimal: 0.8564 -> 85.6."""
    return f"{100 * value:.1f}"


def _accuracy(row) -> str:
    """Accuracy in % with its two-level interval: 85.6 [84.2, 87.0]."""
    return f"{_pct(row['accuracy_mean'])} [{_pct(row['acc_low'])}, {_pct(row['acc_high'])}]"


def _difference(row, low: str = "diff_low", high: str = "diff_high") -> str:
    """An interval of the difference, in points: [-2.9, -0.8]."""
    return f"[{100 * row[low]:+.1f}, {100 * row[high]:+.1f}]"


def _points(row) -> str:
    """The difference to Full FT in points with its 95% and 90% intervals, as the summary writes them."""
    return (f"{100 * row['diff']:+.1f} points, {LEVEL:.0%} CI {_difference(row)}, "
            f"{TOST_LEVEL:.0%} CI {_difference(row, 'diff90_low', 'diff90_high')}")


def _whole(value) -> str:
    """A setting as written in a run's config: 1.0 -> 1, 'full' stays 'full'."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _share(percent: float) -> str:
    """The trainable share in %: two decimals below 10, none above."""
    return "–" if pd.isna(percent) else (f"{percent:.2f}" if percent < 10 else f"{percent:.0f}")


def _reference_row(table: pd.DataFrame):
    """The Full FT row at its defaults."""
    return table[table["label"] == REFERENCE].iloc[0]


def headline_table(root: str | Path | None = None, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per method of the study (registry order): accuracy, difference to Full FT, verdict and costs."""
    table = study_statistics(root) if table is None else table
    rows = []
    for _, row in _defaults(table).iterrows():
        compared = not pd.isna(row["diff"])
        rows.append({
            "method": _label(row["method"]), "seeds": int(row["n"]),
            "accuracy": _accuracy(row) if not pd.isna(row["acc_low"]) else _pct(row["accuracy_mean"]),
            "vs_full": f"{100 * row['diff']:+.1f} {_difference(row)}" if compared else "–",
            "vs_full_90": _difference(row, "diff90_low", "diff90_high") if compared else "–",
            "verdict": row["verdict"] or "–", "trainable_percent": _share(row.get("trainable_percent")),
            "train_time_s": f"{row['train_time_s_mean']:.0f}", "model_state_mb": f"{row['model_state_mb_mean']:.0f}",
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def headline_markdown(root: str | Path | None = None, table: pd.DataFrame | None = None) -> str:
    """The headline table as markdown, with the setting, the reference's precision and the verdict rule under it."""
    table = study_statistics(root) if table is None else table
    headline = headline_table(table=table)
    if headline.empty:
        return "*No finished study runs with a Full FT reference yet.*"
    reference = _reference_row(table)
    lines = [f"| method | seeds | accuracy, % ({LEVEL:.0%} CI) | vs Full FT ({reference['precision_mode']}), points "
             f"({LEVEL:.0%} CI) | {TOST_LEVEL:.0%} CI | verdict | trainable % | train time (s) | model state (MB) |",
             "|---" * len(COLUMNS) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in headline.itertuples(index=False)]
    others = [f"{_label(m)} {p}" for m, p in zip(_defaults(table)["method"], _defaults(table)["precision_mode"])
              if p != reference["precision_mode"]]
    size = {k: _whole(reference[k]) for k in ("train_size", "eval_size", "epochs", "max_length")}
    lines += ["", f"{reference['model']} on {size['train_size']} train / {size['eval_size']} test reviews, "
              f"{size['epochs']} epoch(s), max length {size['max_length']}; Full FT, the reference, trained in "
              f"{reference['precision_mode']}" + (f" (other precisions: {', '.join(others)})" if others else "")
              + ". Intervals resample seeds and test reviews (two-level bootstrap). *equivalent*: the "
              f"{TOST_LEVEL:.0%} CI lies within {_margin()}; *worse* / *better*: the {LEVEL:.0%} CI "
              f"excludes 0 at Holm p < {ALPHA:g}; *inconclusive*: neither. Runs: `results/runs/`; every statistic: "
              "[`results/summary.md`](results/summary.md)."]
    return "\n".join(lines)


def _listed(rows: pd.DataFrame, text) -> str:
    """Methods with a parenthesis each, joined as a list: `A (..), B (..) and C (..)`."""
    names = [f"{_label(r['method'])} ({text(r)})" for _, r in rows.iterrows()]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _margin() -> str:
    """The equivalence margin in words: `±1 point`."""
    return f"±{100 * MARGIN:g} point" + ("" if 100 * MARGIN == 1 else "s")


def _ratio(value: float, reference: float) -> str:
    """A cost as a multiple of Full FT's: 0.26×."""
    return f"{value / reference:.2f}×"


def findings(root: str | Path | None = None, table: pd.DataFrame | None = None) -> list[str]:
    """The study's findings as sentences, every number read from the stored runs."""
    table = study_statistics(root) if table is None else table
    methods = _defaults(table)
    if methods.empty or (methods["label"] == REFERENCE).sum() != 1:
        return ["No finished study runs with a Full FT reference yet."]
    ref = _reference_row(table)
    others = methods[methods["verdict"] != ""]
    margin = _margin()
    sentences = []
    equivalent = others[others["verdict"] == "equivalent"]
    intro = (f"Against Full FT ({_pct(ref['accuracy_mean'])}% accuracy, {LEVEL:.0%} CI "
             f"[{_pct(ref['acc_low'])}, {_pct(ref['acc_high'])}], {ref['n']} seeds, {ref['precision_mode']}), ")
    if equivalent.empty:
        sentences.append(intro + f"no method at its default settings is shown equivalent within {margin}.")
    else:
        verb = "is" if len(equivalent) == 1 else "are"
        sentences.append(intro + _listed(equivalent, lambda r: f"{_points(r)}, {r['n']} seeds")
                         + f" {verb} equivalent to it within {margin}.")
        light = equivalent.loc[equivalent["model_state_mb_mean"].idxmin()]
        sentences.append(
            f"The cheapest equivalent method is {_label(light['method'])}: {light['model_state_mb_mean']:.0f} MB of "
            f"model state against Full FT's {ref['model_state_mb_mean']:.0f} MB "
            f"({_ratio(light['model_state_mb_mean'], ref['model_state_mb_mean'])}), "
            f"{_share(light['trainable_percent'])}% of its parameters trained, and {light['train_time_s_mean']:.0f} s "
            f"of training against {ref['train_time_s_mean']:.0f} s "
            f"({_ratio(light['train_time_s_mean'], ref['train_time_s_mean'])}).")
    for verdict, words in (("better", f"Better than Full FT ({LEVEL:.0%} CI above 0, Holm p < {ALPHA:g})"),
                           ("worse", f"Worse than Full FT ({LEVEL:.0%} CI below 0, Holm p < {ALPHA:g})"),
                           ("inconclusive", "Neither shown equivalent nor shown different (*inconclusive*)")):
        rows = others[others["verdict"] == verdict]
        if not rows.empty:
            sentences.append(f"{words}: " + _listed(rows, lambda r: f"{100 * r['diff']:+.1f} points, {LEVEL:.0%} CI "
                                                               f"{_difference(r)}") + ".")
    arms = table[(table["label"] != table["method"]) & (table["verdict"] != "")]
    if not arms.empty:
        names = [f"{_arm_label(r)}, *{r['verdict']}* ({_points(r)}, {r['n']} seeds; "
                 f"{r['model_state_mb_mean']:.0f} MB, {r['train_time_s_mean']:.0f} s)" for _, r in arms.iterrows()]
        sentences.append("Beside the methods at their defaults, the study holds " + "; ".join(names) + ".")
    return sentences


def findings_markdown(root: str | Path | None = None, table: pd.DataFrame | None = None) -> str:
    """The findings as a markdown list."""
    return "\n".join(f"- {sentence}" for sentence in findings(root, table))


def method_finding(method: str, root: str | Path | None = None, table: pd.DataFrame | None = None) -> str:
    """One sentence on a method's stored study runs: accuracy with its interval, difference to Full FT, verdict."""
    table = study_statistics(root) if table is None else table
    rows = _defaults(table) if not table.empty else table
    rows = rows[rows["method"] == method] if not rows.empty else rows
    if rows.empty:
        return f"No finished study run of {_label(method)} in `{results_dir(root)}` yet."
    row = rows.iloc[0]
    accuracy = (f"{_label(method)}: {_pct(row['accuracy_mean'])}% accuracy ({LEVEL:.0%} CI "
                f"[{_pct(row['acc_low'])}, {_pct(row['acc_high'])}], {row['n']} seeds, {row['precision_mode']})")
    if method == REFERENCE:
        return accuracy + ", the reference every other method is compared with."
    if pd.isna(row["diff"]):
        return accuracy + "; no paired comparison with Full FT (its predictions or Full FT's are missing)."
    other = str(row.get("versus", "")).rsplit("(", 1)[-1].rstrip(")")  # the precision of the Full FT compared with
    against = f"Full FT in {other}" if other and other != row["precision_mode"] else "Full FT"
    return accuracy + f", {_points(row)} against {against}: *{row['verdict']}* at a margin of {_margin()}."
