"""Tuning on validation only: the learning-rate sweep each method's default comes from, and its pick rule.

A sweep run is a tuning run (`RunConfig.evaluate_test=False`): the test split is dropped before any review
is drawn (train reviews whose text also occurs in the test split go with it), no test review is tokenized
or scored, and the record holds validation accuracy alone. The pick rule is stated before the sweep runs:
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from .config import Profile, RunConfig
from .methods import get_method
from .results import atomic_write_text, read_result, read_results, results_dir

TUNING_VAL_SIZE = 1000  # validation reviews the pick is made on (drawn from train, outside the training subset)
SEEDS = (0, 1)
LEARNED = 0.6  # a seed whose validation accuracy stays below this did not learn (chance is 0.5)
PICK_RULE = (f"Per method, the learning rate with the highest validation accuracy averaged over the seeds, among "
             f"the rates at which every seed learned (validation accuracy >= {LEARNED}); a tie goes to the "
             "smaller rate. A pick at either end of the grid is flagged: the grid must be widened.")


@dataclass(frozen=True)
class Pick:
    """A method's chosen learning rate and the validation evidence for it."""

    method: str
    lr: float
    val_accuracy_mean: float
    seeds: int
    interior: bool  # False: the best rate is at an end of the grid


def sweep_folder(profile: Profile, root: str | os.PathLike | None = None) -> Path:
    """Where a profile's validation sweep lives: <results>/sweeps/lr_<lr table>_validation."""
    return results_dir(root) / "sweeps" / f"lr_{profile.lr_table}_validation"


def truncation_folder(profile: Profile, root: str | os.PathLike | None = None) -> Path:
    """Where a profile's truncation comparison lives: <results>/sweeps/truncation_<lr table>_validation."""
    return results_dir(root) / "sweeps" / f"truncation_{profile.lr_table}_validation"


def tuning_run(base: RunConfig, val_size: int = TUNING_VAL_SIZE) -> RunConfig:
    """A study config as a tuning run: no test subset, `val_size` validation reviews to choose on."""
    return replace(base, eval_size=0, evaluate_test=False, val_size=val_size)


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
    table = frame.groupby(["method", "lr"]).agg(seeds=("seed", "count"), val_mean=("val_accuracy", "mean"),
                                                val_min=("val_accuracy", "min"),
                                                per_seed=("val_accuracy", lambda v: [round(x, 4) for x in v]))
    return table.reset_index()


def picks(table: pd.DataFrame) -> dict[str, Pick]:
    """Each method's pick by PICK_RULE."""
    chosen = {}
    for method, rows in table.groupby("method", sort=False):
        rows = rows.sort_values("lr")
        learned = rows[rows["val_min"] >= LEARNED]
        if learned.empty:
            continue
        best = learned.sort_values(["val_mean", "lr"], ascending=[False, True]).iloc[0]
        interior = rows["lr"].iloc[0] < best["lr"] < rows["lr"].iloc[-1]
        chosen[method] = Pick(method, float(best["lr"]), float(best["val_mean"]), int(best["seeds"]), bool(interior))
    return chosen


def write_sweep_chart(folder: str | os.PathLike, figures_dir: str | os.PathLike = "figures") -> list[Path]:
    """figures/sweep_<folder name>.png: validation accuracy per learning rate, the picks marked; [] without runs."""
    from .plots import sweep_chart

    folder = Path(folder)
    table = sweep_table(folder)
    if table.empty:
        return []
    chosen = {m: p.lr for m, p in picks(table).items()}
    return [sweep_chart(table, chosen, Path(figures_dir) / f"sweep_{folder.name}.png")]


def write_sweep_summary(folder: str | os.PathLike, complete: bool = True) -> list[Path]:
    """The sweep's table, and its picks once every run is stored: summary.md and picks.json (atomically)."""
    folder = Path(folder)
    table = sweep_table(folder)
    chosen = picks(table) if complete and not table.empty else {}
    lines = ["# Learning-rate sweep on validation", "",
             "Generated by `python -m peft_imdb sweep` from the tuning runs in `runs/`: no test review was drawn, "
             "seen or scored.", "", f"Pick rule: {PICK_RULE}", "",
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


# --- Truncation, chosen on validation after the learning rates: head+tail (the default) against head ---

TRUNCATION_RULE = ("head+tail (the default) stays unless head's validation accuracy, averaged over the seeds and "
                   "then over the methods, is higher")


def truncation_arms(method: str, seed: int, profile: Profile) -> dict[str, RunConfig]:
    """The sweep's head+tail tuning run of a method at its pick, and the same run with head truncation."""
    # The sweep ran every method in bf16 (its records say so); IA3's default is fp32 since, so it is named.
    tuning = tuning_run(RunConfig.from_profile(profile, method, precision="bf16", seed=seed))
    return {"head_tail": tuning, "head": replace(tuning, truncation="head")}


def truncation_table(arms: list[dict[str, RunConfig]], sweep: str | os.PathLike,
                     folder: str | os.PathLike) -> pd.DataFrame:
    """Validation accuracy of each pair of arms: head+tail from the sweep's folder, head from its own."""
    rows = []
    for pair in arms:
        tail, head = read_result(pair["head_tail"].key(), sweep), read_result(pair["head"].key(), folder)
        rows.append({"method": pair["head"].method, "lr": pair["head"].lr, "seed": pair["head"].seed,
                     "head_tail": tail.val_accuracy if tail is not None and tail.status == "ok" else None,
                     "head": head.val_accuracy if head is not None and head.status == "ok" else None})
    return pd.DataFrame(rows)


def truncation_differences(table: pd.DataFrame) -> pd.Series:
    """Head − head+tail validation accuracy, averaged over the seeds of each method (the rule's first mean)."""
    return (table["head"] - table["head_tail"]).groupby(table["method"], sort=False).mean()


def truncation_choice(table: pd.DataFrame) -> str:
    """The truncation TRUNCATION_RULE picks from a complete table (no missing arm)."""
    return "head" if truncation_differences(table).mean() > 0 else "head_tail"
