"""Re-train the committed runs from their stored configs into a scratch folder and compare them run by run."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .config import RunConfig
from .errors import UserError
from .hardware import Precision
from .resolved import ResolvedRun, resolve
from .results import RunResult, load_predictions, read_result, read_results, results_dir

# Environment entries that must agree for a re-run to be expected to give identical predictions.
STACK_PACKAGES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "datasets")


@dataclass
class Comparison:
    """One stored run against its re-run: what was expected, what came out, the verdict."""

    key: str
    stored_accuracy: float | None
    reproduced_accuracy: float | None
    identical: bool | None  # per-review predictions equal; None when either side has none
    differing_reviews: int | None
    expected: str  # the rule that judges it: "identical" (same device, stack and precision) or "interval"
    why: str  # why that rule
    ok: bool
    verdict: str
    ran_in: str = ""  # the precision the re-run trained in, and the record's where they differ


@dataclass(frozen=True)
class Recheck:
    """A committed run chosen to re-train: its record and folder, the run that re-trains, the rule that judges it."""

    record: RunResult
    folder: Path  # where the record and its predictions live
    run: ResolvedRun  # in the record's precision, or in fp32 where this machine does not run that natively
    rule: str  # "identical" or "interval"
    why: str  # why that rule

    @property
    def ran_in(self) -> str:
        """The precision the re-run trains in, with the record's where they differ: `fp32 (recorded bf16)`."""
        recorded = self.record.precision_mode or self.record.config.get("precision")
        return self.run.precision.name + ("" if recorded == self.run.precision.name else f" (recorded {recorded})")


@dataclass
class RecheckPlan:
    """What reproduce re-trains, and the committed runs it leaves out because this machine lacks their precision."""

    rechecks: list[Recheck] = field(default_factory=list)
    left_out: list[RunResult] = field(default_factory=list)


def choose_records(records: list[RunResult], sample: int | None) -> list[RunResult]:
    """The finished runs to re-train: all, or `sample` of them spread over methods (seed 0 of each first).

    Ordered by seed, then by each (seed, method)'s runs (the one at the method's defaults first, then in the order
    given: the root folder's first), then by method and key: the choice is the same on every machine and a small
    sample covers as many methods as it can.
    """
    from .methods import METHODS

    order = {name: i for i, name in enumerate(METHODS)}
    # Within a (seed, method), the run at the method's defaults first (its label is the method's name alone).
    ok = sorted((r for r in records if r.status == "ok"), key=lambda r: r.label not in ("", r.method))
    variant: dict[str, int] = {}
    seen: dict[tuple[int, str], int] = {}
    for record in ok:
        group = (record.seed, record.method)
        variant[record.key] = seen.get(group, 0)
        seen[group] = variant[record.key] + 1
    ok.sort(key=lambda r: (r.seed, variant[r.key], order.get(r.method, len(order)), r.key))
    if sample is not None:
        if sample < 1:
            raise UserError(f"--sample must be at least 1, got {sample}")
        ok = ok[:sample]
    return sorted(ok, key=lambda r: r.key)


def committed_records(root: str | os.PathLike | None = None) -> list[tuple[RunResult, Path]]:
    """Every finished, test-scored run under a results root (the study and each experiment folder), once per key:
    the root folder's copy first. Tuning runs (no test accuracy) are not re-checked."""
    from .experiments import experiment_folders

    found: dict[str, tuple[RunResult, Path]] = {}
    for folder in experiment_folders(root):
        for record in sorted(read_results(folder, keep_aside=False), key=lambda r: r.key):
            if record.status == "ok" and record.accuracy is not None:
                found.setdefault(record.key, (record, folder))
    return list(found.values())


def stored_run(record: RunResult, data_dir: str | os.PathLike | None) -> ResolvedRun:
    """The run as committed, resolved, reading the data from data_dir (where the data is is not identity)."""
    run = resolve(RunConfig.from_dict({**record.config, "data_dir": str(data_dir) if data_dir else None}))
    if run.key != record.key:
        raise UserError(f"{record.key}: its stored config names run {run.key} with this code; the record "
                        "predates a change of run identity and cannot be re-trained by this version")
    return run


def in_fp32(run: ResolvedRun, lacking: str) -> ResolvedRun:
    """The run in fp32 (its own key), for a record whose precision this machine does not run natively."""
    fp32 = resolve(replace(run.config, precision="fp32"))
    reason = (f"recorded in {run.precision.name}, which this machine does not run natively ({lacking}): re-trained "
              "in fp32, judged by the interval rule")
    return replace(fp32, precision=Precision("fp32", reason))


def plan_rechecks(root: str | os.PathLike | None = None, sample: int | None = None, keys: list[str] | None = None,
                  data_dir: str | os.PathLike | None = None, native: frozenset[str] | None = None,
                  here: dict | None = None) -> RecheckPlan:
    """Which committed runs to re-train, in which precision, judged by which rule.

    A run is re-trained in its own precision only where this machine runs that natively (`native`, default this
    machine's); otherwise it is left out, unless named in `keys`: then it is re-trained in fp32 and judged by the
    interval rule. `sample` draws from the runs this machine re-trains natively. Identical predictions are
    expected only for the same precision on the same device, CPU and versions (`here`, default this machine's).
    """
    from .environment import environment
    from .hardware import bf16_support, native_precisions

    native = native_precisions() if native is None else native
    here = environment() if here is None else here
    root = results_dir(root)
    committed = committed_records(root)
    if not committed:
        raise UserError(f"{root} holds no finished run to reproduce (a run scored on test reviews, in runs/ or an "
                        "experiment's folder)")
    folders = {record.key: folder for record, folder in committed}
    plan = RecheckPlan()
    if keys:
        unknown = [key for key in keys if key not in folders]
        if unknown:
            raise UserError(f"no finished run {unknown[0]} under {root} (its runs/ and each experiment folder's); "
                            "name a run by its record's file name without .json")
        chosen = [record for record, _ in committed if record.key in keys]
    else:
        def natively(record):
            return (record.precision_mode or record.config.get("precision")) in native

        plan.left_out = [record for record, _ in committed if not natively(record)]
        chosen = choose_records([record for record, _ in committed if natively(record)], sample)
        if not chosen:
            raise UserError(f"no committed run under {root} is in a precision this machine runs natively "
                            f"({', '.join(sorted(native))}); name runs with --keys to re-train them in fp32")
    lacking = bf16_support()[1]
    for record in chosen:
        run = stored_run(record, data_dir)
        if run.precision.name in native:
            rule, why = same_stack(record.env, here)
            plan.rechecks.append(Recheck(record, folders[record.key], run, "identical" if rule else "interval", why))
        else:
            plan.rechecks.append(Recheck(record, folders[record.key], in_fp32(run, lacking), "interval",
                                         f"re-trained in fp32, recorded in {run.precision.name}: another precision"))
    return plan


def same_stack(stored: dict, here: dict) -> tuple[bool, str]:
    """Whether two `environment()` records agree on device, CPU (where recorded) and package versions."""
    differences = []
    if stored.get("device") != here.get("device"):
        differences.append(f"device {stored.get('device')!r} vs {here.get('device')!r} here")
    cpu_stored, cpu_here = stored.get("cpu"), here.get("cpu")
    if cpu_stored is not None and cpu_here is not None:
        for name in ("cpu_model", "bf16_flags", "avx512f"):
            if cpu_stored.get(name) != cpu_here.get(name):
                differences.append(f"{name} {cpu_stored.get(name)!r} vs {cpu_here.get(name)!r} here")
    versions_stored, versions_here = stored.get("versions") or {}, here.get("versions") or {}
    for package in STACK_PACKAGES:
        if versions_stored.get(package) != versions_here.get(package):
            differences.append(f"{package} {versions_stored.get(package)} vs {versions_here.get(package)} here")
    if differences:
        return False, "; ".join(differences)
    unrecorded = " (the CPU model and flags were not recorded with the stored run)" if cpu_stored is None else ""
    return True, f"same device and versions{unrecorded}"


def compare(stored: RunResult, reproduced: RunResult | None, root, scratch, expect_identical: bool,
            why: str, ran_in: str = "") -> Comparison:
    """Compare a stored run with its re-run (its own key, in scratch): per-review predictions when the stack and
    precision are the same, else intervals."""
    from .stats import mean_interval

    expected = "identical" if expect_identical else "interval"
    base = dict(key=stored.key, stored_accuracy=stored.accuracy, expected=expected, why=why, ran_in=ran_in)
    if reproduced is None or reproduced.status != "ok":
        reason = reproduced.reason if reproduced is not None else "no record written"
        return Comparison(**base, reproduced_accuracy=None, identical=None, differing_reviews=None, ok=False,
                          verdict=f"MISMATCH: the re-run did not finish ({reason})")
    old, new = load_predictions(stored.key, root), load_predictions(reproduced.key, scratch)
    base["reproduced_accuracy"] = reproduced.accuracy
    if old is None or new is None:
        missing = "stored" if old is None else "re-run"
        return Comparison(**base, identical=None, differing_reviews=None, ok=False,
                          verdict=f"MISMATCH: no {missing} predictions to compare")
    if not np.array_equal(old["review_id"].to_numpy(), new["review_id"].to_numpy()):
        return Comparison(**base, identical=False, differing_reviews=None, ok=False,
                          verdict="MISMATCH: the re-run was tested on other reviews")
    differing = int((old["predicted"].to_numpy() != new["predicted"].to_numpy()).sum())
    identical = differing == 0
    base.update(identical=identical, differing_reviews=differing)
    # The stored accuracy must be the one its own predictions give (a hand-edited record is caught here).
    from_predictions = float((old["predicted"] == old["label"]).mean())
    if stored.accuracy is None or abs(stored.accuracy - from_predictions) > 1e-9:
        return Comparison(**base, ok=False, verdict=f"MISMATCH: stored accuracy {stored.accuracy} is not its "
                          f"predictions' {from_predictions:.4f}")
    if expect_identical:
        if identical:
            return Comparison(**base, ok=True, verdict="ok: identical")
        return Comparison(**base, ok=False, verdict=f"MISMATCH: {differing} of {len(old)} predictions differ")
    old_interval = mean_interval((old["predicted"] == old["label"]).to_numpy())
    new_interval = mean_interval((new["predicted"] == new["label"]).to_numpy())
    inside = new_interval.contains(stored.accuracy) or old_interval.contains(reproduced.accuracy)
    span = f"re-run 95% CI [{new_interval.low:.4f}, {new_interval.high:.4f}]"
    if inside:
        return Comparison(**base, ok=True, verdict=f"ok: within interval ({span})")
    return Comparison(**base, ok=False, verdict=f"MISMATCH: outside the intervals ({span})")


def reproduce(root: str | os.PathLike | None = None, scratch: str | os.PathLike | None = None,
              sample: int | None = None, data_dir: str | os.PathLike | None = None,
              in_process: bool = False, keys: list[str] | None = None,
              dry_run: bool = False) -> tuple[list[Comparison], Path | None]:
    """Re-train committed runs (plan_rechecks) into scratch and compare each with its record.

    Prints the plan first: the runs to re-train and those already re-run in scratch, each one's precision and
    why, the runs left out, and the estimated wall time (`dry_run`: only that; nothing is trained or written).
    The store is only read. Returns the comparisons and the scratch folder (None for a dry run without one).
    """
    from .plan import Plan, plan_runs, train_planned

    root = results_dir(root)
    data_dir = data_dir or os.environ.get("PEFT_IMDB_DATA")
    plan = plan_rechecks(root, sample, keys, data_dir)
    if scratch is not None and Path(scratch).resolve() == root.resolve():
        raise UserError("--scratch must be another folder than the results folder it reproduces")
    runs = list({r.run.key: r.run for r in plan.rechecks}.values())
    planned = plan_runs(runs, scratch) if scratch is not None else Plan(train=runs)
    for line in recheck_preview(plan, planned, root, scratch):
        print(line)
    if dry_run:
        print("dry run: nothing trained")
        return [], Path(scratch) if scratch is not None else None
    scratch = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="peft-imdb-reproduce-"))
    if planned.stored:
        print(f"{len(planned.stored)} run(s) already re-run in {scratch}, not trained again")
    print(f"re-training {len(planned.train)} run(s) into {scratch}")
    train_planned(planned.train, scratch, in_process=in_process)
    comparisons = [compare(r.record, read_result(r.run.key, scratch), r.folder, scratch, r.rule == "identical",
                           r.why, r.ran_in) for r in plan.rechecks]
    return comparisons, scratch


def recheck_preview(plan: RecheckPlan, planned, root: Path, scratch: str | os.PathLike | None) -> list[str]:
    """The lines printed before re-training: the runs left out and why, then the plan with its estimate."""
    from .hardware import bf16_support
    from .preview import plan_lines
    from .wall_time import estimator

    lines = []
    if plan.left_out:
        lacking = sorted({r.precision_mode or str(r.config.get("precision")) for r in plan.left_out})
        lines.append(f"left out: {len(plan.left_out)} committed run(s) in {'/'.join(lacking)}, which this machine "
                     f"does not run natively ({bf16_support()[1]}): re-trained in their own precision "
                     "they would take many times longer. Name one with --keys to re-train it in fp32, judged by the "
                     "interval rule.")
    estimate = estimator([root] + ([Path(scratch)] if scratch is not None else [])).plan(planned.train)
    where = scratch if scratch is not None else "a new temporary folder"
    lines += plan_lines([("to re-train", planned.train), ("re-run already", planned.stored)], estimate, where)
    return lines


def comparison_table(comparisons: list[Comparison]) -> str:
    """The comparisons as a plain-text table, one line per run (the precision it ran in, the rule that judged it),
    then why each rule was chosen."""
    def accuracy(value):
        return "-" if value is None else f"{value:.4f}"

    rows = [("run key", "ran in", "stored acc", "re-run acc", "identical", "rule", "verdict")]
    for c in comparisons:
        identical = "-" if c.identical is None else ("y" if c.identical else f"n ({c.differing_reviews} differ)")
        rows.append((c.key, c.ran_in or "-", accuracy(c.stored_accuracy), accuracy(c.reproduced_accuracy), identical,
                     c.expected, c.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    lines += [f"{c.key}: ran in {c.ran_in or '-'}, judged by the {c.expected} rule: {c.why}" for c in comparisons]
    return "\n".join(lines)
