"""Which runs to train: the one planner the CLI, the experiments and the notebooks share, and its executor.

The planner resolves each config once (resolved.py); everything after it reads the resolved run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from .checkpoints import last_whole_checkpoint
from .config import RunConfig
from .errors import Stopped
from .methods import get_method
from .resolved import ResolvedRun, resolve
from .results import RunResult, checkpoint_dir, copy_run, has_ok_result, read_result, results_dir


@dataclass
class Plan:
    """The runs of a request, split by what happens to them."""

    train: list[ResolvedRun] = field(default_factory=list)  # not stored yet (or forced): they train
    stored: list[ResolvedRun] = field(default_factory=list)  # finished (`ok`) in the store already
    copied: list[ResolvedRun] = field(default_factory=list)  # finished in `reuse_from`: copied, not trained


def resolve_all(configs: Iterable[RunConfig]) -> list[ResolvedRun]:
    """Each config resolved once, duplicates (same key) dropped, in their order."""
    runs: dict[str, ResolvedRun] = {}
    for config in configs:
        run = resolve(config)
        runs.setdefault(run.key, run)
    return list(runs.values())


Folder = str | os.PathLike


def plan_runs(runs: list[ResolvedRun], root: Folder | None = None, force: bool = False,
              reuse_from: Folder | Sequence[Folder] | None = None, dry_run: bool = False) -> Plan:
    """Split runs into runs to train, runs stored as `ok` already, and runs copied from other stores.

    A finished run is never trained twice unless `force`; with `reuse_from` (the main study's folder, for
    an ablation; the committed study, for a notebook) a run finished there is copied with its predictions
    instead of being trained, from the first of those folders that holds it (`dry_run`: found there, not copied).
    """
    sources = [] if reuse_from is None else [reuse_from] if isinstance(reuse_from, (str, os.PathLike)) else reuse_from
    plan = Plan()
    for run in runs:
        if force:
            plan.train.append(run)
        elif has_ok_result(run.key, root):
            plan.stored.append(run)
        elif any(has_ok_result(run.key, results_dir(source)) if dry_run else
                 copy_run(run.key, results_dir(source), results_dir(root)) for source in sources):
            plan.copied.append(run)
        else:
            plan.train.append(run)
    return plan


def with_control_arms(configs: list[RunConfig]) -> list[RunConfig]:
    """The configs plus, for each method on a 4-bit base, its unquantized twin with exactly its settings.

    QLoRA's twin is LoRA at QLoRA's learning rate and settings: the two differ by the 4-bit base alone. When
    that is LoRA's own default config the arm is the same run (same key) and the planner trains it once.
    """
    arms = [replace(c, method=twin) for c in configs if (twin := get_method(c.method).unquantized_twin)]
    return configs + arms


def train_planned(runs: list[ResolvedRun], root: str | os.PathLike | None = None, imdb=None,
                  in_process: bool = False, on_result: Callable[[RunResult], None] | None = None,
                  force: bool = False) -> list[RunResult]:
    """Train and store each run in turn (each in a fresh process unless in_process); return the records.

    Workers sharing a results folder split the work: each run is claimed while it trains (parallel.claims), a
    run claimed by a live worker is skipped and checked again at the end, and one another worker finished
    since this call began is not trained again. Each run trained here is logged as `trained <key>`.
    """
    from tqdm.auto import tqdm

    from .parallel.claims import Holder, acquire
    from .parallel.process import train_in_subprocess
    from .runner import train_and_store
    from .train import world

    rank, world_size = world()
    claiming = world_size == 1  # under torchrun the ranks train every run together: no claims

    def snapshot(key: str):
        record = read_result(key, root)
        return record.to_dict() if record is not None else None

    seen = {run.key: snapshot(run.key) for run in runs} if claiming else {}  # a change: another worker's row
    elsewhere: dict[str, tuple[ResolvedRun, Holder]] = {}  # skipped because another worker holds them
    rows: list[RunResult] = []

    def attempt(run: ResolvedRun, again: bool = False) -> None:
        claim = acquire(run.key, root) if claiming else None
        if isinstance(claim, Holder):
            elsewhere[run.key] = (run, claim)
            print(f"{run.key}: {claim.describe()}; " + ("not trained here, re-run when it is free" if again
                                                        else "skipped for now, checked again at the end"))
            return
        try:
            now = snapshot(run.key) if claiming else None
            if now is not None and (now != seen[run.key] or (not force and has_ok_result(run.key, root))):
                print(f"{run.key}: finished by another worker ({now['status']}), not trained here")
                return
            if in_process or world_size > 1:  # under torchrun the ranks must train together, in process
                row = train_and_store(run, root, imdb)
            else:
                row = train_in_subprocess(run, root)
            if rank == 0:
                print(f"trained {run.key}")
            rows.append(row)
            if on_result is not None:
                on_result(row)
        except Stopped as stop:  # the command stops: name the run it stopped and how that run goes on
            stop.run, stop.resume = stop.run or run.key, stop.resume or _resume_note(run, root)
            raise
        finally:
            if claim is not None:
                claim.release()

    # A single run shows the Trainer's own bars; a bar over runs is only worth it for several.
    progress = tqdm(runs, desc="runs", unit="run", disable=True if len(runs) <= 1 else None)
    for run in progress:
        progress.set_postfix_str(f"{run.config.model} {run.config.method} seed {run.seed}")
        attempt(run)
    if elsewhere:  # the end: pick up runs whose worker has gone since (a finished one is left alone)
        waiting = list(elsewhere.values())
        elsewhere.clear()
        for run, _ in waiting:
            attempt(run, again=True)
        if elsewhere:
            print(f"{len(elsewhere)} run(s) still being trained by other workers: "
                  + ", ".join(f"{key} ({holder.owner})" for key, (_, holder) in elsewhere.items()))
    return rows


def _resume_note(run: ResolvedRun, root: str | os.PathLike | None) -> str:
    """How a stopped run goes on when its command is run again: from its last whole checkpoint, or from the start."""
    if not run.config.resume:
        return "add --resume to keep a checkpoint each epoch and go on from it"
    checkpoint = last_whole_checkpoint(checkpoint_dir(run.key, root))
    return f"it goes on from its last whole checkpoint, {checkpoint}" if checkpoint else \
        "it had no whole checkpoint yet and starts over"


def load_or_train(config: RunConfig | ResolvedRun, root: str | os.PathLike | None = None,
                  retrain: bool = False, study: str | os.PathLike | None = None) -> RunResult:
    """The finished run of this config, said so in one line; else train it here and store it in `root`.

    It is looked up first in `study` (the committed study, only read: nothing is copied from it), then in
    `root`; `retrain` trains it into `root` even so.
    """
    run = config if isinstance(config, ResolvedRun) else resolve(config)
    if study is not None and not retrain and has_ok_result(run.key, study):
        row = read_result(run.key, study)
        print(f"the committed study's run {row.key} (finished {row.finished_at}), not trained again; retrain=True "
              "trains it into your own store")
        return row
    plan = plan_runs([run], root, force=retrain)
    if plan.stored:
        row = read_result(run.key, root)
        print(f"stored run {row.key} (finished {row.finished_at}), not trained again; retrain=True trains it again")
        return row
    rows = train_planned(plan.train, root, in_process=True, force=retrain)
    return rows[0] if rows else read_result(run.key, root)  # trained by another worker meanwhile
