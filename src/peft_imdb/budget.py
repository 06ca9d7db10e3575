"""The budget experiment: do the verdicts hold as the budget grows? Its points (training reviews, the reference
reports' setting, every training review) as data, the validation-only learning-rate check at CHECK_SIZE reviews
the largest points train at, and its summary: a table per point, two figures and a generated reading.

Every point is scored on the study's own test reviews, so every run pairs with every other; a point's four
methods are compared with its Full FT, Holm within the point (three comparisons), at the study's margin.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .comparison import MARGIN, REFERENCE, add_statistics, summarize
from .config import RunConfig
from .methods import method_names
from .report import number_or_dash
from .resolved import resolve
from .results import atomic_write_text, read_results
from .sweep import BEST_RATE_RULE, octaves, picks, sweep_table, tuning_run
from .table import load_results
from .wall_time import CpuKind

Base = Callable[[str, int], RunConfig]  # (method, seed) -> the method's study config


@dataclass(frozen=True)
class BudgetPoint:
    """One budget: its training reviews (None: every training review), epochs and length (None: the study's), how
    many of the experiment's seeds, and whether it trains at the rates the check at CHECK_SIZE reviews picked."""

    name: str
    train_size: int | None
    epochs: float | None = None
    max_length: int | None = None
    seeds: int = 3
    checked: bool = False
    kind: str = "size"  # "size": a point of the curve over training reviews; "reference"; "all"
    score_remaining: bool = False  # also scored on every fresh test review, apart (published full-test figures)

    def configs(self, base: Base, seeds: tuple[int, ...], methods: tuple[str, ...]) -> list[RunConfig]:
        """Each method at this budget for the first `self.seeds` of the seeds (seed-major)."""
        overrides = {"train_size": self.train_size, "score_remaining": self.score_remaining}
        overrides |= {name: value for name, value in (("epochs", self.epochs), ("max_length", self.max_length))
                      if value is not None}
        return [replace(base(method, seed), **overrides) for seed in seeds[:self.seeds] for method in methods]


SIZES = (500, 1000, 2000, 4000, 8000)  # nested: each subset inside the next, per label (data.balanced_indices)
CHECK_SIZE = 8000
POINTS = (
    *(BudgetPoint(f"{size} reviews", size, checked=size >= CHECK_SIZE) for size in SIZES),
    # The reference reports' configuration (R2 in ../shared/REFERENCE.md): 3000 reviews, 3 epochs, 256 tokens.
    BudgetPoint("reference setting", 3000, epochs=3, max_length=256, kind="reference"),
    # Every training review whose text the test split lacks, less the validation reviews.
    BudgetPoint("all reviews", None, seeds=2, checked=True, kind="all", score_remaining=True),
)
BUDGET_METHODS = tuple(method_names(core_only=True))
CHECK_STEPS = (-1.0, 0.0, 1.0)  # octaves around the study's rate: pick/2, pick, 2 x pick
CHECK_SEEDS = 2
CHECK_PICKS = f"the rate of the {CHECK_SIZE}-review and all-reviews points"  # what the check's picks set
CHECK_RULE = (f"The check at {CHECK_SIZE} training reviews (validation only, {CHECK_SEEDS} seeds at half, once and "
              f"twice each method's study rate): {BEST_RATE_RULE} Near-tie: as in the final sweep (the tied rate "
              "whose worst seed is highest, then the smaller rate). The grid is not widened: a pick at its end is flagged. Where "
              f"the check picks another rate, the {CHECK_SIZE}-review and all-reviews points train at it.")


def point_of(config: RunConfig) -> BudgetPoint | None:
    """The point a config belongs to (by its training reviews: one point per size); None for none."""
    return next((p for p in POINTS if p.train_size == config.train_size), None)


def budget_configs(base: Base, seeds: tuple[int, ...]) -> list[RunConfig]:
    """Every point's runs at the study's rates, smallest budget first (the checked points' rates are settled
    later: at_checked_rates)."""
    return [c for point in POINTS for c in point.configs(base, seeds, BUDGET_METHODS)]


def check_configs(base: Base, seeds: tuple[int, ...]) -> list[RunConfig]:
    """The learning-rate check: each method's tuning run at CHECK_SIZE reviews in the study's precision, at
    CHECK_STEPS octaves around its study rate, for the first CHECK_SEEDS seeds."""
    configs = []
    for method in BUDGET_METHODS:
        study = replace(base(method, 0), train_size=CHECK_SIZE)
        tuning = replace(tuning_run(study), precision=study.precision)
        configs += [replace(tuning, lr=octaves(study.learning_rate, step), seed=seed)
                    for step in CHECK_STEPS for seed in seeds[:CHECK_SEEDS]]
    return configs


def checked_rates(folder: str | os.PathLike) -> dict[str, float] | None:
    """Each method's rate by CHECK_RULE once every method has CHECK_SEEDS seeds at each of CHECK_STEPS rates
    stored in the check's folder; None before."""
    table = sweep_table(folder)
    if table.empty:
        return None
    complete = table[table["seeds"] >= CHECK_SEEDS].groupby("method")["lr"].count()
    if any(complete.get(method, 0) < len(CHECK_STEPS) for method in BUDGET_METHODS):
        return None
    return {method: pick.lr for method, pick in picks(table, near_tie=True).items() if method in BUDGET_METHODS}


def at_checked_rates(configs: list[RunConfig], rates: dict[str, float] | None,
                     provisional: bool = False) -> list[RunConfig]:
    """The configs with each checked point at the check's rates; before the check is complete, without the
    checked points (or, `provisional`, with them at the study's rates: what a plan shows ahead of the check)."""
    settled = []
    for config in configs:
        point = point_of(config)
        if point is None or not point.checked:
            settled.append(config)
        elif rates is not None:
            settled.append(replace(config, lr=rates.get(config.method, config.lr)))
        elif provisional:
            settled.append(config)
    return settled


def point_group(config: RunConfig) -> str | None:
    """A budget config's group for on_one_machine_kind: its point ("500 reviews point"); None outside the budget."""
    point = point_of(config)
    return f"{point.name} point" if point is not None else None


def on_one_machine_kind(configs: list[RunConfig], folder: str | os.PathLike, here: CpuKind | None = None,
                        group: Callable[[RunConfig], str | None] = point_group) -> tuple[list[RunConfig], list[str]]:
    """The configs less the unstored runs of groups (budget points by default) whose runs stored in `folder` trained
    on another kind of machine than this one (`here`), and one line per such group: a group's runs train on one
    kind, so its times compare."""
    from .wall_time import this_machine

    here = here or this_machine()
    records = {r.key: r for r in read_results(folder) if r.status == "ok"}
    kinds: dict[str, set[CpuKind]] = {}
    for record in records.values():
        name = group(RunConfig.from_dict(record.config))
        if name is not None:
            kinds.setdefault(name, set()).add(CpuKind.of(record.env or {}))
    kept, waiting = [], {}
    for config in configs:
        name = group(config)
        trained = kinds.get(name, set()) if name is not None else set()
        if trained and here not in trained and resolve(config).key not in records:
            waiting[name] = trained
        else:
            kept.append(config)
    lines = [f"the {name} trained on {', '.join(sorted(k.text for k in trained))}: its other runs wait for "
             f"that kind of machine (this one: {here.text}), so that its runs' times compare" for name, trained in
             waiting.items()]
    return kept, lines


def points_table(base: Base) -> pd.DataFrame:
    """One row per point: its training reviews, epochs, tokens, seeds and whose learning rates it trains at."""
    rows = []
    for point in POINTS:
        (config,) = point.configs(base, (0,), (REFERENCE,))
        rows.append({"point": point.name, "training reviews": point.train_size or "all", "epochs": config.epochs,
                     "tokens": config.max_length, "seeds": point.seeds,
                     "learning rates": f"checked at {CHECK_SIZE} reviews" if point.checked else "the study's"})
    return pd.DataFrame(rows).set_index("point")


def nesting(base: Base, imdb) -> pd.DataFrame:
    """Per point, smallest first: the training reviews its runs draw, whether they all lie in the next point's,
    how many share a text with the test split, and whether its test reviews are the study's."""
    from .data import rows_sharing_test_text
    from .train import draw_reviews

    shared = set(rows_sharing_test_text(imdb).tolist())
    tested = draw_reviews(base(REFERENCE, 0), imdb)["test"]["review_id"]
    points = sorted(POINTS, key=lambda p: p.train_size or np.inf)
    drawn = [draw_reviews(point.configs(base, (0,), (REFERENCE,))[0], imdb) for point in points]
    trained = [set(d["train"]["review_id"]) for d in drawn]
    return pd.DataFrame([{"point": point.name, "training reviews": len(reviews),
                          "inside the next point's": "yes" if later is None or reviews <= later else "NO",
                          "text in the test split": len(reviews & shared),
                          "test reviews": "the study's" if d["test"]["review_id"] == tested else "OTHER"}
                         for point, reviews, later, d in zip(points, trained, [*trained[1:], None], drawn)]
                        ).set_index("point")


def stored_runs(folder: str | os.PathLike) -> pd.DataFrame:
    """Finished runs per point and method in the experiment's folder, out of the seeds the point plans."""
    points = [(point_of(RunConfig.from_dict(r.config)), r.method) for r in read_results(folder) if r.status == "ok"]
    counts = Counter((point.name, method) for point, method in points if point is not None)
    return pd.DataFrame({method: {p.name: f"{counts[p.name, method]}/{p.seeds}" for p in POINTS}
                         for method in BUDGET_METHODS})


# --- the summary ---------------------------------------------------------------------------------------------

def budget_table(folder: str | os.PathLike, margin: float = MARGIN) -> pd.DataFrame:
    """The study's statistics per point: each row's accuracy with its two-level interval, and its difference to
    the point's Full FT with a verdict (Holm within the point); with `point`, `kind` and `reviews` (training
    reviews: the size, or for all reviews the count the runs stepped through) columns. Empty without runs."""
    frame = load_results(folder)
    if frame.empty or (frame["status"] == "ok").sum() == 0:
        return pd.DataFrame()
    table = add_statistics(summarize(frame), folder, margin=margin)
    sizes = {"full" if p.train_size is None else p.train_size: p for p in POINTS}
    table = table[table["train_size"].isin(list(sizes))].copy()
    table["point"] = [sizes[size].name for size in table["train_size"]]
    table["kind"] = [sizes[size].kind for size in table["train_size"]]
    records = {r.key: r for r in read_results(folder) if r.status == "ok"}
    stepped = {key: r.train_steps * r.config["batch_size"] / r.config["epochs"] for key, r in records.items()
               if r.train_steps}
    remaining = [[records[k].remaining_accuracy for k in keys if records[k].remaining_accuracy is not None]
                 for keys in table["keys"]]
    table["remaining_accuracy"] = [float(np.mean(scores)) if scores else np.nan for scores in remaining]
    table["remaining_reviews"] = [records[keys[0]].remaining_reviews for keys in table["keys"]]
    table["reviews"] = [size if size != "full" else float(np.mean([stepped[k] for k in keys]))
                        for size, keys in zip(table["train_size"], table["keys"])]
    order = {p.name: i for i, p in enumerate(POINTS)}
    return table.sort_values("point", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


# The published directions the reading compares with (the experiment's question; not results of this repository).
PUBLISHED_DIRECTIONS = (
    "Chen et al. (2022, \"Revisiting Parameter-Efficient Tuning\") found PEFT methods ahead of full fine-tuning only "
    "at low resource, level or behind with more data; Biderman et al. (2024, \"LoRA Learns Less and Forgets Less\") "
    "found LoRA behind full fine-tuning at large budgets.")
# The reference reports whose setting a point shares (../shared/REFERENCE.md): the point's kind -> (report, words).
REPORTS = {"reference": ("R2", "at the reference setting", "roberta-base, 3000 reviews, 3 epochs, 256 tokens, "
                         "2000 test reviews, one seed"),
           "all": ("R4", "on all training reviews", "DistilBERT, all 25,000 training reviews, 3 epochs, the full "
                   "test split, one seed")}


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def _difference(row) -> str:
    if pd.isna(row.get("diff")):
        return "–"
    return f"{_points(row['diff'])} [{_points(row['diff_low'])}, {_points(row['diff_high'])}]"


def _accuracy(row) -> str:
    if pd.isna(row.get("acc_low")):
        return f"{100 * row['accuracy_mean']:.1f}"
    return f"{100 * row['accuracy_mean']:.1f} [{100 * row['acc_low']:.1f}, {100 * row['acc_high']:.1f}]"


def _runs_of(row) -> str:
    return f"{int(row['n'])}" + (f" ({int(row['not_learned'])} did not learn)" if row.get("not_learned") else "")


def point_rows(table: pd.DataFrame) -> list[str]:
    """The summary's table: one row per point and method (accuracy, difference to the point's Full FT, verdict,
    training time, model state, runs)."""
    lines = ["| budget | method | lr | runs | accuracy % [95%] | vs Full FT, points [95%] | verdict "
             "| training time (s) | model state (MB) |", "|---" * 9 + "|"]
    for row in table.to_dict("records"):
        verdict = row["verdict"] or ("reference" if row["method"] == REFERENCE else "–")
        lines.append(f"| {row['point']} | {row['method']} | {row['lr']:g} | {_runs_of(row)} | {_accuracy(row)} | "
                     f"{_difference(row)} | {verdict} | {number_or_dash(row['train_time_s_mean'], '.0f')} | "
                     f"{number_or_dash(row['model_state_mb_mean'], '.1f')} |")
    return lines


def _spans(steps: list[tuple[str, str]]) -> str:
    """'equivalent at 500–2000 reviews, worse at 4000 reviews' from (point, verdict) pairs in budget order."""
    spans: list[tuple[list[str], str]] = []
    for point, verdict in steps:
        if spans and spans[-1][1] == verdict:
            spans[-1][0].append(point)
        else:
            spans.append(([point], verdict))
    return ", ".join(f"{verdict or 'not compared'} at {names[0] if len(names) == 1 else names[0] + ' to ' + names[-1]}"
                     for names, verdict in spans)


def _direction(first, last) -> str:
    """How a difference moved from the smallest to the largest budget, by whether the two 95% intervals overlap."""
    if last["diff_high"] < first["diff_low"]:
        return ("falls further behind Full FT as the budget grows (the two ends' intervals do not overlap), the "
                "published direction")
    if last["diff_low"] > first["diff_high"]:
        return ("gains on Full FT as the budget grows (the two ends' intervals do not overlap), against the published "
                "direction")
    return "shows no change between the two ends that their intervals can tell apart"


def reading(table: pd.DataFrame) -> list[str]:
    """The generated paragraph: where each verdict changes with the budget, against the published directions,
    and the shared settings against the reference reports (gaps, not levels: another model)."""
    from .estimate import PUBLISHED

    curve = table[table["kind"].isin(["size", "all"])].sort_values("reviews", kind="stable")
    lines = []
    for method in [m for m in BUDGET_METHODS if m != REFERENCE]:
        rows = curve[(curve["method"] == method) & curve["diff"].notna()]
        if rows.empty:
            continue
        steps = list(zip(rows["point"], rows["verdict"]))
        changes = "holds at every budget" if len({v for _, v in steps}) == 1 else "changes with the budget"
        first, last = rows.iloc[0], rows.iloc[-1]
        lines.append(f"- **{method}** against Full FT: {_spans(steps)} — its verdict {changes}. Its difference goes "
                     f"from {_difference(first)} points at {first['point']} to {_difference(last)} at "
                     f"{last['point']}: it {_direction(first, last)}.")
    if not lines:
        return []
    lines += ["", f"Published directions: {PUBLISHED_DIRECTIONS} Each line above says whether its method's "
              "difference moves their way."]
    for kind, (report, where, words) in REPORTS.items():
        published = {p.method: p.accuracy for p in PUBLISHED if p.report == report and p.accuracy is not None}
        ours = table[(table["kind"] == kind) & table["diff"].notna()]
        if REFERENCE not in published or ours.empty:
            continue
        pairs = [f"{row['method']} {_points(published[row['method']] - published[REFERENCE])} against ours "
                 f"{_difference(row)} ({row['verdict']})"
                 for row in ours.to_dict("records") if row["method"] in published]
        lines += ["", f"{where.capitalize()}, {report} ({words}; a different model from ours, so gaps, not "
                  f"levels) printed these gaps to Full FT, in points: {'; '.join(pairs)}."]
    return lines + remaining_line(table[table["kind"] == "all"])


def remaining_line(rows: pd.DataFrame) -> list[str]:
    """The point's accuracy on every fresh test review (scored apart, means over seeds, no interval); [] without."""
    scored = rows[rows["remaining_accuracy"].notna()]
    if scored.empty:
        return []
    reviews = int(scored["remaining_reviews"].iloc[0])
    means = ", ".join(f"{row['method']} {100 * row['remaining_accuracy']:.1f}%" for row in scored.to_dict("records"))
    return ["", f"On all {reviews:,} fresh test reviews (every test review no earlier study scored, the study's among "
            f"them; mean over seeds, scored apart): {means}."]


def summary_markdown(table: pd.DataFrame, check: dict[str, float] | None, figures: list[str],
                     margin: float = MARGIN, complete: bool = True) -> str:
    """The experiment's summary.md: its rules before any number, the check's rates, the table, the reading."""
    lines = ["# Accuracy and cost against the training budget", "",
             "Generated by `python -m peft_imdb experiment budget` from the runs in `runs/`. Every run is scored on "
             "the study's test reviews; training reviews nest (each smaller subset inside the next, per label) and "
             "none shares a text with the test split.", "",
             f"Rules, fixed before the runs: each method against the Full FT of its own budget, equivalence margin "
             f"±{100 * margin:g} point, Holm over the point's three comparisons with Full FT; intervals resample "
             "seeds and reviews. A run that did not learn is shown flagged, never re-tuned on test.", "",
             f"Learning rates: {CHECK_RULE}", ""]
    if check is None:
        lines += ["The check is not complete: the checked points are not trained yet.", ""]
    else:
        lines += ["Check picks (validation): " + ", ".join(f"{m} {lr:g}" for m, lr in check.items()), ""]
    if table.empty:
        return "\n".join(lines + ["No budget run is stored yet."]) + "\n"
    lines += point_rows(table)
    if not complete:
        lines += ["", "Not every planned run is stored yet: the table shows the points so far."]
    lines += ["", "## Reading", "", *reading(table), ""]
    lines += [f"![{Path(link).stem}]({link})" for link in figures]
    return "\n".join(lines) + "\n"


def write_budget_summary(folder: str | os.PathLike, check_folder: str | os.PathLike,
                         figures_dir: str | os.PathLike = "figures", margin: float = MARGIN,
                         complete: bool = True) -> list[Path]:
    """summary.md in the experiment's folder, figures/budget_accuracy.png and budget_gap.png; the paths."""
    from .plots import budget_accuracy_chart, budget_gap_chart

    table = budget_table(folder, margin)
    figures = [] if table.empty else [
        budget_accuracy_chart(table, Path(figures_dir) / "budget_accuracy.png"),
        budget_gap_chart(table, Path(figures_dir) / "budget_gap.png", margin)]
    path = Path(folder) / "summary.md"
    links = [Path(os.path.relpath(figure, folder)).as_posix() for figure in figures]
    atomic_write_text(path, summary_markdown(table, checked_rates(check_folder), links, margin, complete))
    return [path, *figures]
