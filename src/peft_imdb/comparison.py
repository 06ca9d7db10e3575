"""Statistics tables of the store: one row per run group with its two-level interval, and each row against its
reference (Full FT, or an ablation's reference row) with the paired difference, Holm's p and a verdict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .methods import method_family, method_names
from .results import load_predictions
from .stats import (holm, detectable_difference_from, two_level_difference, two_level_interval,
                    variance_components, verdict)
from .table import load_results

AGGREGATED = ["accuracy", "f1", "precision", "recall", "trainable_params", "adapter_params", "head_params",
              "model_state_mb", "working_memory_mb", "train_time_s", "eval_time_s", "peak_memory_mb",
              "eval_peak_memory_mb", "load_peak_memory_mb", "frozen_weights_mb", "trainable_weights_mb", "saved_mb",
              "train_samples_per_s", "eval_samples_per_s"]
SETTING = ["model", "train_size", "eval_size", "epochs", "max_length"]
REFERENCE = "full"
MARGIN = 0.01  # the equivalence margin, declared before the data: one accuracy point
ALPHA = 0.05
POWER = 0.8


def summarize(frame: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Mean and std over seeds of every `ok` run, one row per run identity without the seed (its group).

    Two runs that differ in anything but the seed are two rows; the label says how a row differs from the
    method's defaults (`lora (r=16)`).
    """
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    keys = ["model", "method", "train_size", "eval_size", "epochs", "max_length", "lr", "group", "label",
            *[k for k in ("recipe",) if k in ok], *extra]
    ok = ok.assign(**{k: ok[k].fillna("full") for k in ("train_size", "eval_size")})
    aggregated = [c for c in AGGREGATED if c in ok.columns]
    ok = ok.assign(**{c: pd.to_numeric(ok[c], errors="coerce") for c in aggregated})
    ok = ok.assign(did_not_learn=ok["learned"].eq(False) if "learned" in ok else False,
                   predictions=ok["predictions"] if "predictions" in ok else "")
    grouped = ok.groupby(keys, sort=False, dropna=False)
    summary = grouped[aggregated].agg(["mean", "std"])
    summary.columns = [f"{col}_{stat}" for col, stat in summary.columns]
    summary["n"] = grouped.size()
    summary["keys"] = grouped["key"].agg(list)
    summary["not_learned"] = grouped["did_not_learn"].sum().astype(int)  # runs the learning rule flags
    # Why the row has no interval and no comparison: a run's predictions are missing, unreadable or not its own.
    summary["predictions_note"] = [_note(problems, seeds) for problems, seeds in
                                   zip(grouped["predictions"].agg(list), grouped["seed"].agg(list))]
    for column in ("memory_kind", "base_weight_bits", "device", "precision_mode"):
        if column not in keys:
            summary[column] = grouped[column].first()
    if "confusion_matrix" in ok:
        summary["confusion"] = grouped["confusion_matrix"].agg(_mean_confusion)
    summary = summary.reset_index()
    order = {m: i for i, m in enumerate(method_names())}
    return summary.sort_values(["model", "method", *extra, "lr", "label"],
                               key=lambda s: s.map(order) if s.name == "method" else s).reset_index(drop=True)


def _note(problems: list[str], seeds: list[int]) -> str:
    """A row's predictions problems (one per run, '' for none) as one note naming the seeds; '' when there is none."""
    found: dict[str, list[str]] = {}
    for problem, seed in zip(problems, seeds):
        if problem:
            found.setdefault(problem, []).append(str(seed))
    parts = [f"{problem} (seed{'s' if len(runs) > 1 else ''} {', '.join(runs)})" for problem, runs in found.items()]
    return f"{'; '.join(parts)}: interval not computed" if parts else ""


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


def reference_rows(rows: pd.DataFrame, precision: str | None = None) -> pd.DataFrame:
    """The Full FT row the others are compared with: Full FT at its defaults (else the only Full FT row), in
    `precision` where the rows hold one in it; empty when that leaves no single row."""
    full = rows[rows["method"] == REFERENCE]
    candidates = full[full["label"] == REFERENCE] if (full["label"] == REFERENCE).any() else full
    if precision is not None and "precision_mode" in candidates:
        same = candidates[candidates["precision_mode"] == precision]
        candidates = same if len(same) else candidates
    return candidates if len(candidates) == 1 else candidates.iloc[0:0]


def _pairs(setting: pd.DataFrame, reference=None) -> list[tuple[int, list[int]]]:
    """(reference row, rows compared with it): each row against Full FT of its own precision (the only Full FT
    where there is one), or, with `reference` (rows of one method -> mask of its reference row), each method's
    other rows against that method's reference row."""
    pairs: dict[int, list[int]] = {}
    if reference is None:
        for index, row in setting.iterrows():
            ref = reference_rows(setting, row.get("precision_mode"))
            if len(ref) == 1 and ref.index[0] != index:
                pairs.setdefault(ref.index[0], []).append(index)
        return list(pairs.items())
    for _, rows in setting.groupby("method", sort=False):
        ref = rows[reference(rows)]
        if len(ref) == 1:
            pairs[ref.index[0]] = [i for i in rows.index if i != ref.index[0]]
    return list(pairs.items())


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
    summary["versus"] = ""  # the reference row a difference is taken to: its label and precision
    for _, setting in summary.groupby(SETTING, dropna=False):
        runs = {}
        for index, row in setting.iterrows():
            if row.get("predictions_note"):  # predictions missing, unreadable or not the record's own
                continue
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
                summary.loc[index, "versus"] = f"{summary.loc[ref_index, 'label']} ({summary.loc[ref_index, 'precision_mode']})"
                summary.loc[index, columns[4:10]] = (difference.value, difference.ci95.low, difference.ci95.high,
                                                     difference.ci90.low, difference.ci90.high, difference.p_value)
                if len(mine[0]) > 1 and len(ref[0]) > 1:
                    summary.loc[index, "detectable"] = detectable_difference_from(mine[0], ref[0], ALPHA, POWER)
        # Holm within each family of methods (methods.FAMILIES): adding methods to one never moves another's verdicts.
        families: dict[str, dict] = {}
        for index, difference in differences.items():
            families.setdefault(method_family(summary.loc[index, "method"]), {})[index] = difference
        for family in families.values():
            for (index, difference), adjusted in zip(family.items(), holm([d.p_value for d in family.values()])):
                summary.loc[index, "p_holm"] = adjusted
                summary.loc[index, "verdict"] = verdict(difference, margin, adjusted, ALPHA)
    return summary


@dataclass(frozen=True)
class AblationTable:
    """An ablation's statistics: each row against its method's reference row, with what it varies and why."""

    name: str
    question: str
    column: str  # the summary column that holds the varied setting
    table: pd.DataFrame


def ablation_table(folder: str | Path, column: str, reference, margin: float = MARGIN) -> pd.DataFrame:
    """The summary of an ablation folder with its varied column, each row against the row `reference` picks
    among its method's rows (rows of one method -> mask); empty without finished runs."""
    frame = load_results(folder)
    if frame.empty or (frame["status"] == "ok").sum() == 0:
        return pd.DataFrame()
    return add_statistics(summarize(frame, (column,)), folder, margin=margin, reference=reference)
