"""Re-train the committed runs from their stored configs into a scratch folder and compare them run by run."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import RunConfig
from .errors import UserError
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
    expected: str  # "identical" (same device and stack) or "interval" (another machine or stack)
    why: str  # why that expectation
    ok: bool
    verdict: str


def choose_records(records: list[RunResult], sample: int | None) -> list[RunResult]:
    """The finished runs to re-train: all, or `sample` of them spread over methods (seed 0 of each first).

    Ordered by (seed, method, key), so the choice is the same on every machine and a small sample
    covers as many methods as it can.
    """
    from .methods import METHODS

    order = {name: i for i, name in enumerate(METHODS)}
    ok = sorted((r for r in records if r.status == "ok"),
                key=lambda r: (r.seed, order.get(r.method, len(order)), r.key))
    if sample is not None:
        if sample < 1:
            raise UserError(f"--sample must be at least 1, got {sample}")
        ok = ok[:sample]
    return sorted(ok, key=lambda r: r.key)


def stored_run(record: RunResult, data_dir: str | os.PathLike | None) -> ResolvedRun:
    """The run as committed, resolved, reading the data from data_dir (where the data is is not identity)."""
    run = resolve(RunConfig.from_dict({**record.config, "data_dir": str(data_dir) if data_dir else None}))
    if run.key != record.key:
        raise UserError(f"{record.key}: its stored config names run {run.key} with this code; the record "
                        "predates a change of run identity and cannot be re-trained by this version")
    return run


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
            why: str) -> Comparison:
    """Compare a stored run with its re-run: per-review predictions when the stack is the same, else intervals."""
    from .stats import mean_interval

    expected = "identical" if expect_identical else "interval"
    base = dict(key=stored.key, stored_accuracy=stored.accuracy, expected=expected, why=why)
    if reproduced is None or reproduced.status != "ok":
        reason = reproduced.reason if reproduced is not None else "no record written"
        return Comparison(**base, reproduced_accuracy=None, identical=None, differing_reviews=None, ok=False,
                          verdict=f"MISMATCH: the re-run did not finish ({reason})")
    old, new = load_predictions(stored.key, root), load_predictions(stored.key, scratch)
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
              in_process: bool = False) -> tuple[list[Comparison], Path]:
    """Re-train the store's finished runs (or `sample` of them) into scratch and compare each with its record.

    The store is only read. Runs already finished in scratch (an interrupted reproduce) are not trained
    again. Returns the comparisons and the scratch folder.
    """
    from .environment import environment
    from .plan import plan_runs, train_planned

    root = results_dir(root)
    records = choose_records(read_results(root, keep_aside=False), sample)
    if not records:
        raise UserError(f"{root / 'runs'} holds no finished run to reproduce")
    scratch = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="peft-imdb-reproduce-"))
    if scratch.resolve() == root.resolve():
        raise UserError("--scratch must be another folder than the results folder it reproduces")
    data_dir = data_dir or os.environ.get("PEFT_IMDB_DATA")
    plan = plan_runs([stored_run(record, data_dir) for record in records], scratch)
    if plan.stored:
        print(f"{len(plan.stored)} run(s) already re-run in {scratch}, not trained again")
    print(f"re-training {len(plan.train)} run(s) into {scratch}")
    train_planned(plan.train, scratch, in_process=in_process)
    here = environment()
    comparisons = []
    for record in records:
        identical_expected, why = same_stack(record.env, here)
        comparisons.append(compare(record, read_result(record.key, scratch), root, scratch, identical_expected, why))
    return comparisons, scratch


def comparison_table(comparisons: list[Comparison]) -> str:
    """The comparisons as a plain-text table, one line per run, then why each expectation was chosen."""
    def accuracy(value):
        return "-" if value is None else f"{value:.4f}"

    rows = [("run key", "stored acc", "re-run acc", "identical", "expected", "verdict")]
    for c in comparisons:
        identical = "-" if c.identical is None else ("y" if c.identical else f"n ({c.differing_reviews} differ)")
        rows.append((c.key, accuracy(c.stored_accuracy), accuracy(c.reproduced_accuracy), identical, c.expected,
                     c.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    lines += [f"{c.key}: expected {c.expected}: {c.why}" for c in comparisons]
    return "\n".join(lines)
