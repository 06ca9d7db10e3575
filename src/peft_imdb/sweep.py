"""Tuning on validation only: the learning-rate sweep each method's default comes from, its pick rule, and the
settings compared after it (CHOICES: truncation, dropout), each against the sweep's runs at the picks.

A sweep run is a tuning run (`RunConfig.evaluate_test=False`): the test split is dropped before any review
is drawn (train reviews whose text also occurs in the test split go with it), no test review is tokenized
or scored, and the record holds validation accuracy alone. Every rule is stated before its runs.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from .config import Profile, RunConfig
from .methods import get_method
from .resolved import resolve
from .results import atomic_write_text, read_result, read_results

TUNING_VAL_SIZE = 1000  # validation reviews the pick is made on (drawn from train, outside the training subset)
SEEDS = (0, 1)
LEARNED = 0.6  # a seed whose validation accuracy stays below this did not learn (chance is 0.5)
BEST_RATE_RULE = ("Per method, the learning rate with the highest validation accuracy averaged over the seeds, "
                  f"among the rates at which every seed learned (validation accuracy >= {LEARNED}); a tie goes to the "
                  "smaller rate.")
PICK_RULE = f"{BEST_RATE_RULE} A pick at either end of the grid is flagged: the grid must be widened."


@dataclass(frozen=True)
class Pick:
    """A method's chosen learning rate and the validation evidence for it."""

    method: str
    lr: float
    val_accuracy_mean: float
    seeds: int
    interior: bool  # False: the best rate is at an end of the grid


def tuning_run(base: RunConfig, val_size: int = TUNING_VAL_SIZE) -> RunConfig:
    """A study config as a tuning run: no test subset, `val_size` validation reviews to choose on, and every
    method in the hardware's fast precision (bf16 where the CPU runs it natively), its CPU default set aside."""
    return replace(base, eval_size=0, evaluate_test=False, val_size=val_size, precision="fast")


def sweep_configs(bases: list[RunConfig], seeds: tuple[int, ...] = SEEDS,
                  val_size: int = TUNING_VAL_SIZE) -> list[RunConfig]:
    """Every (method, learning rate, seed) of the sweep: each method's study config, as tuning runs."""
    configs = []
    for base in bases:
        tuning = tuning_run(base, val_size)
        for lr in get_method(base.method).lr_grid.get(base.lr_table, ()):
            configs += [replace(tuning, lr=lr, seed=seed) for seed in seeds]
    return configs


def sweep_table(folder: str | os.PathLike) -> pd.DataFrame:
    """Validation accuracy per method and learning rate: mean and minimum over seeds, and each seed's."""
    rows = [{"method": r.method, "lr": r.lr, "seed": r.seed, "val_accuracy": r.val_accuracy}
            for r in read_results(folder) if r.status == "ok" and r.val_accuracy is not None]
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(["method", "lr", "seed"])
    table = frame.groupby(["method", "lr"]).agg(seeds=("seed", "count"), val_mean=("val_accuracy", "mean"),
                                                val_min=("val_accuracy", "min"),
                                                per_seed=("val_accuracy", lambda v: [round(x, 4) for x in v]))
    by_seed = {key: dict(zip(group["seed"], group["val_accuracy"])) for key, group in frame.groupby(["method", "lr"])}
    return table.assign(by_seed=[by_seed[key] for key in table.index]).reset_index()


def picks(table: pd.DataFrame, near_tie: bool = False) -> dict[str, Pick]:
    """Each method's pick by PICK_RULE, and with `near_tie` by NEAR_TIE_RULE after it."""
    chosen = {}
    for method, rows in table.groupby("method", sort=False):
        rows = rows.sort_values("lr")
        learned = rows[rows["val_min"] >= LEARNED]
        if learned.empty:
            continue
        best = learned.sort_values(["val_mean", "lr"], ascending=[False, True]).iloc[0]
        if near_tie:
            tied = learned[[row.lr == best.lr or near_tied(best.by_seed, row.by_seed) for row in learned.itertuples()]]
            best = tied.sort_values(["val_min", "lr"], ascending=[False, True]).iloc[0]
        interior = rows["lr"].iloc[0] < best["lr"] < rows["lr"].iloc[-1]
        chosen[method] = Pick(method, float(best["lr"]), float(best["val_mean"]), int(best["seeds"]), bool(interior))
    return chosen


def near_tied(best: dict[int, float], other: dict[int, float]) -> bool:
    """Whether the best rate's lead over another is within the seeds' noise: the 95% t interval of the mean paired
    (same seed, same validation reviews) difference includes 0. With fewer than 2 shared seeds, always."""
    from scipy import stats

    shared = sorted(set(best) & set(other))
    if len(shared) < 2:
        return True
    lead = pd.Series([best[s] - other[s] for s in shared])
    half = stats.t.ppf(0.975, len(shared) - 1) * lead.std(ddof=1) / len(shared) ** 0.5
    return bool(lead.mean() <= half)


DEFAULT_PICKS = "each method's default"  # what a sweep's picks set, unless the sweep says otherwise


def write_sweep_chart(folder: str | os.PathLike, figures_dir: str | os.PathLike = "figures",
                      picked_for: str = DEFAULT_PICKS) -> list[Path]:
    """figures/sweep_<folder name>.png: validation accuracy per learning rate; [] without runs. The picks are
    those of the folder's picks.json, which exists only once the sweep is complete: a partial sweep marks none;
    `picked_for` says what they set."""
    from .plots import sweep_chart

    folder = Path(folder)
    table = sweep_table(folder)
    if table.empty:
        return []
    picks_file = folder / "picks.json"
    chosen = ({m: p["lr"] for m, p in json.loads(picks_file.read_text()).items()} if picks_file.is_file() else {})
    return [sweep_chart(table, chosen, Path(figures_dir) / f"sweep_{folder.name}.png", picked_for)]


def write_sweep_summary(folder: str | os.PathLike, complete: bool = True, near_tie: bool = False,
                        name: str = "lr-sweep", rule: str | None = None) -> list[Path]:
    """The sweep's table, and its picks once every run is stored: summary.md and picks.json (atomically).
    `near_tie`: the final sweep's rule (NEAR_TIE_RULE), stated in the summary before any number; `rule`: the
    words stated instead (a sweep that picks alike but does not widen)."""
    folder = Path(folder)
    table = sweep_table(folder)
    chosen = picks(table, near_tie) if complete and not table.empty else {}
    lines = ["# Learning-rate sweep on validation", "",
             f"Generated by `python -m peft_imdb experiment {name}` from the tuning runs in `runs/`: no test review was "
             "drawn, seen or scored.", "", f"Pick rule: {rule or (NEAR_TIE_RULE if near_tie else PICK_RULE)}", "",
             "| method | lr | seeds | validation accuracy (mean) | (min) | per seed | pick |", "|---" * 7 + "|"]
    for row in table.itertuples():
        pick = chosen.get(row.method)
        mark = ("**pick**" + ("" if pick.interior else " (at the grid's end)")) if pick and pick.lr == row.lr else ""
        lines.append(f"| {row.method} | {row.lr:g} | {row.seeds} | {row.val_mean:.4f} | {row.val_min:.4f} "
                     f"| {row.per_seed} | {mark} |")
    if not complete:
        lines += ["", "Not every run of the grid is stored yet: no pick is made before the sweep is complete."]
    summary, picks_file = folder / "summary.md", folder / "picks.json"
    atomic_write_text(summary, "\n".join(lines) + "\n")
    if not complete:
        picks_file.unlink(missing_ok=True)
        return [summary]
    atomic_write_text(picks_file, json.dumps({m: asdict(p) for m, p in chosen.items()}, indent=1) + "\n")
    return [summary, picks_file]


# --- The sweep at the final recipe: a finer grid around each first-round pick, more seeds, a near-tie rule ---

# The registry's learning-rate table the first sweep (results/sweeps/lr_cpu_validation/) picked: frozen, it is
# where the final sweep's grid is centred.
FIRST_ROUND_TABLE = "cpu-first"
# Octaves around the first-round pick: half-octave steps for the study's four methods (3 seeds each), an octave
# for the added ones (2 seeds each).
FINAL_STEPS = {True: (-1.0, -0.5, 0.0, 0.5, 1.0), False: (-1.0, 0.0, 1.0)}
FINAL_SEEDS = {True: (0, 1, 2), False: (0, 1)}
MAX_WIDENINGS = 3  # steps added beyond an end of a method's grid while its pick falls there
NEAR_TIE_RULE = (f"{BEST_RATE_RULE} Near-tie: a rate whose mean is below the best's by less than the 95% t interval "
                 "of the mean paired (same seed, same validation reviews) difference is tied with it; among the tied "
                 "rates the one whose worst seed is highest is picked (the most reliable), then the smaller rate. A "
                 f"pick at an end of the grid widens it by one step beyond that end, at most {MAX_WIDENINGS} times.")


def octaves(centre: float, steps: float) -> float:
    """`centre` times 2 ** steps, to 3 significant digits (the rates a grid names)."""
    return float(f"{centre * 2 ** steps:.3g}")


def final_grid(method: str, table: str = "cpu") -> tuple[float, ...]:
    """The rates a method's final sweep starts from: FINAL_STEPS around its first-round pick, or, for a method
    with no first round (the further ones), its own `lr_grid` of the profile's lr table."""
    entry = get_method(method)
    if FIRST_ROUND_TABLE in entry.learning_rates:
        return tuple(octaves(entry.learning_rates[FIRST_ROUND_TABLE], step) for step in FINAL_STEPS[entry.core])
    return tuple(entry.lr_grid[table])


def final_sweep_configs(bases: list[RunConfig], seeds: tuple[int, ...] | None = None,
                        val_size: int = TUNING_VAL_SIZE) -> list[RunConfig]:
    """The final sweep's tuning runs: each method at its study config and precision, over its final_grid, with
    FINAL_SEEDS (or the first of `seeds`: 3 for the study's methods, 2 for the others)."""
    configs = []
    for base in bases:
        method = get_method(base.method)
        tuning = replace(tuning_run(base, val_size), precision=base.precision)
        chosen = seeds[:len(FINAL_SEEDS[method.core])] if seeds else FINAL_SEEDS[method.core]
        for lr in final_grid(base.method, base.lr_table):
            configs += [replace(tuning, lr=lr, seed=seed) for seed in chosen]
    return configs


def widened(folder: str | os.PathLike, configs: list[RunConfig]) -> list[RunConfig]:
    """One more rate beyond the end of each method's grid where its NEAR_TIE_RULE pick falls at that end, once
    every run of the method's grid is stored (the grid's step, the same seeds); [] when none does. The grid is
    the planned rates and those the folder holds already (widened before: a sweep that goes on later widens on)."""
    table = sweep_table(folder)
    if table.empty:
        return []
    chosen = picks(table, near_tie=True)
    more = []
    for method in dict.fromkeys(c.method for c in configs):
        planned = [c for c in configs if c.method == method]
        one_rate = [c for c in planned if c.lr == planned[0].lr]  # its seeds, as every rate of the grid has them
        rates = sorted({c.lr for c in planned} | set(table.loc[table["method"] == method, "lr"]))
        done = table[(table["method"] == method) & table["lr"].isin(rates)]
        if method not in chosen or done["seeds"].sum() < len(one_rate) * len(rates) or chosen[method].interior:
            continue
        grid = final_grid(method, planned[0].lr_table)
        if len(rates) - len(grid) >= MAX_WIDENINGS:
            continue
        step = round(2 * math.log2(grid[1] / grid[0])) / 2  # the grid's step in octaves (a half or a whole)
        lr = octaves(rates[0], -step) if chosen[method].lr == rates[0] else octaves(rates[-1], step)
        more += [replace(c, lr=lr) for c in one_rate]
    return more


# --- Settings chosen on validation after the learning rates: the sweep's runs against one alternative each ---


@dataclass(frozen=True)
class Choice:
    """A setting compared on validation reviews: the sweep's run at each pick (the default) against one alternative.

    The rule is stated here before the alternative's arms are trained: the alternative is chosen when its
    validation accuracy minus the default's, averaged over the seeds and then over the methods, is above
    `threshold` (in accuracy, not points).
    """

    name: str
    setting: str  # the RunConfig field that differs between the arms
    default: object  # its value in the default arm, the sweep's run
    alternative: object  # its value in the alternative arm
    labels: tuple[str, str]  # how the summary names (the default, the alternative)
    threshold: float
    rule: str
    question: str  # why it is compared, for the summary

    def arms(self, base: RunConfig) -> dict[str, RunConfig]:
        """The sweep's tuning run of a method's config (at its pick, in the recipe of the sweep it was compared
        on: ROUND_ONE), and the same with the alternative."""
        lr = get_method(base.method).learning_rates[FIRST_ROUND_TABLE]
        tuning = replace(tuning_run(base), lr=lr, **{**ROUND_ONE, self.setting: self.default})
        return {"default": tuning, "alternative": replace(tuning, **{self.setting: self.alternative})}

    def table(self, arms: list[dict[str, RunConfig]], sweep: str | os.PathLike,
              folder: str | os.PathLike) -> pd.DataFrame:
        """Validation accuracy of each pair of arms: the default from the sweep's folder, the alternative from its own."""
        rows = []
        for pair in arms:
            default = read_result(resolve(pair["default"]).key, sweep)
            alternative = read_result(resolve(pair["alternative"]).key, folder)
            rows.append({"method": pair["default"].method, "lr": pair["default"].lr, "seed": pair["default"].seed,
                         "default": _val_accuracy(default), "alternative": _val_accuracy(alternative)})
        return pd.DataFrame(rows, columns=["method", "lr", "seed", "default", "alternative"])

    def chooses_alternative(self, table: pd.DataFrame) -> bool:
        """The rule on a complete table (no missing arm)."""
        return bool(round(differences(table).mean(), 9) > self.threshold)  # rounded: no float noise at the bound


def _val_accuracy(record) -> float | None:
    return record.val_accuracy if record is not None and record.status == "ok" else None


def differences(table: pd.DataFrame) -> pd.Series:
    """Alternative − default validation accuracy, averaged over the seeds of each method (the rule's first mean)."""
    return (table["alternative"] - table["default"]).groupby(table["method"], sort=False).mean()


# The recipe of the learning-rate sweep the choices below were compared on (results/sweeps/lr_cpu_validation/),
# before they became defaults: dropout on, and the earlier subset draw (test_reviews: no test review is drawn).
ROUND_ONE = {"dropout": True, "sampler": "independent", "test_reviews": "all"}

CHOICES: dict[str, Choice] = {
    "truncation": Choice(
        "truncation", "truncation", "head_tail", "head", ("head+tail", "head"), 0.0,
        "head+tail (the default) stays unless head's validation accuracy, averaged over the seeds and then over "
        "the methods, is higher",
        "Which tokens of a long review to keep: its first max-length tokens (head), or its first quarter and last "
        "three quarters (head+tail, Sun et al. 2019)."),
    "dropout": Choice(
        "dropout", "dropout", True, False, ("dropout on", "dropout off"), -0.005,
        "dropout off is chosen unless its validation accuracy, averaged over the seeds and then over the methods, "
        "is 0.5 points or more below dropout on's (off trains faster on CPU, so near-ties go to it)",
        "Every dropout of the model and its adapter at p=0 against the model's and method's own dropout: drawing "
        "dropout's random masks is a quarter to a third of a CPU training step (docs/performance.md)."),
}


def write_choice_summary(choice: Choice, profile: Profile, sweep: Path, folder: Path) -> list[Path]:
    """The comparison's summary.md (the arms, the rule, the differences and the choice); [] before every arm ran.

    The default arms are the learning-rate sweep's runs at each core method's pick (in `sweep`); the
    alternative arms are in `folder`.
    """
    from .methods import method_names

    arms = [choice.arms(RunConfig.from_profile(profile, m, seed=s)) for m in method_names(core_only=True)
            for s in SEEDS]
    table = choice.table(arms, sweep, folder)
    if table[["default", "alternative"]].isna().any().any():
        return []
    default, alternative = choice.labels
    precision = ", ".join(sorted({resolve(pair["alternative"]).precision.name for pair in arms}))
    chosen = alternative if choice.chooses_alternative(table) else default
    per_method = differences(table)
    lines = [f"# {choice.name.capitalize()} on validation: {alternative} against {default}", "",
             f"Generated by `python -m peft_imdb experiment {choice.name}`: tuning runs only "
             f"({profile.train_size} train / {TUNING_VAL_SIZE} validation reviews, no test review drawn), each "
             f"method at its validation-picked learning rate, {precision} (the hardware's fast precision). The {default} arms "
             f"are the learning-rate sweep's runs (`../{sweep.name}/runs/`); the {alternative} arms are in `runs/`.",
             "", choice.question, "",
             f"Rule (stated before the {alternative} arms ran): {choice.rule}.", "",
             f"| method | lr | seed | {default} | {alternative} | {alternative} − {default} |", "|---" * 6 + "|"]
    lines += [f"| {r.method} | {r.lr:g} | {r.seed} | {r.default:.4f} | {r.alternative:.4f} "
              f"| {100 * (r.alternative - r.default):+.1f} |" for r in table.itertuples()]
    lines += ["", f"Mean difference (points, {alternative} − {default}) per method: "
              + ", ".join(f"{m} {100 * d:+.2f}" for m, d in per_method.items())
              + f"; over the methods {100 * per_method.mean():+.2f}.", "", f"Choice: **{chosen}**."]
    profile_default = getattr(RunConfig.from_profile(profile, "full"), choice.setting)
    if chosen == alternative and profile_default != choice.alternative:
        lines[-1] += (f" Not yet the default: the committed results were trained with {default}, and it becomes the "
                      "default when they are re-trained at it.")
    path = folder / "summary.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return [path]
