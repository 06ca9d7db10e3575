"""What a command will do, printed before it trains: its runs to train and to reuse, each one's precision and why,
the estimated wall time, and a word first when stored runs of the same settings were trained in a precision this
CPU does not run natively."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .resolved import ResolvedRun
from .results import RunResult
from .wall_time import PlanEstimate, duration


# The settings a plan names beside each label where its runs differ in them: (RunConfig field, how it reads).
SETTING_WORDS = (("train_size", "train"), ("eval_size", "test"), ("epochs", "epochs"), ("max_length", "L"))


def _value(value) -> str:
    return "all" if value is None else f"{value:g}"


def plan_lines(groups: Iterable[tuple[str, list[ResolvedRun]]], estimate: PlanEstimate, where: str | Path) -> list[str]:
    """The plan: a count line, one line per action, label and precision (seeds, estimate each), the precision
    reasons as footnotes, then the estimate and how it was made."""
    groups = [(action, runs) for action, runs in groups if runs]
    seconds = {r.key: r.seconds for r in estimate.runs}
    every = [run for _, runs in groups for run in runs]
    varied = [(name, words) for name, words in SETTING_WORDS
              if len({getattr(run.config, name) for run in every}) > 1]  # settings the plan's runs differ in
    counts = ", ".join(f"{len(runs)} {action}" for action, runs in groups) or "no run"
    reasons: dict[str, int] = {}
    rows: dict[tuple[str, str, str, str], list[ResolvedRun]] = {}
    for action, runs in groups:
        for run in runs:
            reasons.setdefault(run.precision.reason, len(reasons) + 1)
            setting = " ".join(f"{words}={_value(getattr(run.config, name))}" for name, words in varied)
            label = f"{run.label} ({setting})" if setting else run.label
            rows.setdefault((action, label, run.precision.name, run.precision.reason), []).append(run)
    table = []
    for (action, label, precision, reason), runs in rows.items():
        known = [seconds[r.key] for r in runs if seconds.get(r.key) is not None]
        each = f"~{duration(sum(known) / len(known))} each" if known else ""
        table.append((action, label, f"{precision} [{reasons[reason]}]",
                      "seed(s) " + " ".join(str(r.seed) for r in runs), each))
    widths = [max((len(row[i]) for row in table), default=0) for i in range(4)]
    lines = [f"plan ({where}): {counts}"]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + ("  " + row[4] if row[4] else "")
              for row in table]
    lines += [f"  precision [{number}]: {reason}" for reason, number in reasons.items()]
    return lines + estimate.lines()


def _without_precision(identity: dict) -> dict:
    return {k: v for k, v in identity.items() if k != "precision"}


def precision_notice(title: str, folder: str | Path, to_train: list[ResolvedRun], reused: int,
                     stored: Iterable[RunResult], estimate: PlanEstimate, native: frozenset[str]) -> list[str]:
    """Lines to print first when `folder` holds runs of the same settings as runs to train, trained in a precision
    this machine does not run natively: what was stored, what this CPU lacks, what trains instead and how long."""
    wanted = {}
    for run in to_train:
        wanted.setdefault(repr(sorted(_without_precision(run.identity).items())), []).append(run)
    twins: dict[str, RunResult] = {}
    replaced: dict[str, ResolvedRun] = {}
    for record in stored:
        precision = record.precision_mode
        if record.status != "ok" or not record.identity or precision is None or precision in native:
            continue
        for run in wanted.get(repr(sorted(_without_precision(record.identity).items())), []):
            if run.precision.name != precision:
                twins.setdefault(record.key, record)
                replaced.setdefault(run.key, run)
    if not twins:
        return []
    from .wall_time import CpuKind

    lacking = sorted({r.precision_mode for r in twins.values()})
    instead = sorted({r.precision.name for r in replaced.values()})
    kinds = sorted({CpuKind.of(r.env or {}).text for r in twins.values()})
    known = [r.seconds for r in estimate.runs if r.seconds is not None]
    how_long = (f"estimated ~{duration(sum(known))} on this machine" + (" (rough)" if estimate.rough else "")
                if known else "no estimate (no stored run to go by)")
    lines = [f"{title} in {folder} trained in {'/'.join(lacking)} ({len(twins)} run(s), on {'; '.join(kinds)}).",
             f"This CPU ({estimate.here.text}) has no native {'/'.join(lacking)}: it would be emulated, many times "
             f"slower than {'/'.join(instead)}.",
             f"So {len(replaced)} run(s) train in {'/'.join(instead)} instead, under run keys of their own, stored in "
             f"{folder} beside the {'/'.join(lacking)} runs, which stay as they are; {how_long} for the "
             f"{len(to_train)} run(s) to train."]
    if reused:
        lines.append(f"{reused} stored run(s) are the same runs here (same settings and precision): reused, "
                     "not trained again.")
    return lines
