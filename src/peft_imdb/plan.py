"""Which runs to train: the one planner the CLI, the ablations and the notebooks share, and its executor."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import RunConfig
from .errors import UserError
from .results import RunResult, copy_run, has_ok_result, read_result, results_dir


@dataclass
class Plan:
    """The runs of a request, split by what happens to them."""

    train: list[RunConfig] = field(default_factory=list)  # not stored yet (or forced): they train
    stored: list[RunConfig] = field(default_factory=list)  # finished (`ok`) in the store already
    copied: list[RunConfig] = field(default_factory=list)  # finished in `reuse_from`: copied, not trained


def plan_runs(configs: list[RunConfig], root: str | os.PathLike | None = None, force: bool = False,
              reuse_from: str | os.PathLike | None = None) -> Plan:
    """Split configs into runs to train, runs stored as `ok` already, and runs copied from another store.

    A finished run is never trained twice unless `force`; with `reuse_from` (the main study's folder, for
    an ablation) a run finished there is copied with its predictions instead of being trained.
    """
    plan, seen = Plan(), set()
    for config in configs:
        key = config.key()
        if key in seen:
            continue
        seen.add(key)
        if force:
            plan.train.append(config)
        elif has_ok_result(key, root):
            plan.stored.append(config)
        elif reuse_from is not None and copy_run(key, results_dir(reuse_from), results_dir(root)):
            plan.copied.append(config)
        else:
            plan.train.append(config)
    return plan


def with_control_arms(configs: list[RunConfig]) -> list[RunConfig]:
    """The configs plus, for each method on a 4-bit base, its unquantized twin with exactly its settings.

    QLoRA's twin is LoRA at QLoRA's learning rate and settings: the two differ by the 4-bit base alone. When
    that is LoRA's own default config the arm is the same run (same key) and the planner trains it once.
    """
    from dataclasses import replace

    from .methods import get_method

    arms = [replace(c, method=twin) for c in configs if (twin := get_method(c.method).unquantized_twin)]
    return configs + arms


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; UserError otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise UserError(f"--shard must be K/N with 1 <= K <= N (e.g. 1/3, 2/3, 3/3), got {text!r}")
    return k, n


def shard_configs(configs: list[RunConfig], k: int, n: int) -> list[RunConfig]:
    """Share K of N: the runs at positions i (in the list sorted by key) with i % N == K-1, in their order."""
    keys = sorted({c.key() for c in configs})
    mine = {key for i, key in enumerate(keys) if i % n == k - 1}
    return [c for c in configs if c.key() in mine]


def train_planned(configs: list[RunConfig], root: str | os.PathLike | None = None, imdb=None,
                  in_process: bool = False, on_result: Callable[[RunResult], None] | None = None,
                  force: bool = False) -> list[RunResult]:
    """Train and store each config in turn (each in a fresh process unless in_process); return the rows.

    Workers sharing a results folder split the work: each run is claimed while it trains (claims.py), a run
    claimed by a live worker is skipped and checked again at the end, and one another worker finished since
    this call began is not trained again. Each run trained here is logged as `trained <key>`.
    """
    from tqdm.auto import tqdm

    from .claims import Holder, acquire, as_store_error
    from .errors import UserError
    from .runner import train_and_store, train_and_store_in_subprocess
    from .train import world

    rank, world_size = world()
    claiming = world_size == 1  # under torchrun the ranks train every run together: no claims

    def snapshot(key: str):
        record = read_result(key, root)
        return record.to_dict() if record is not None else None

    seen = {c.key(): snapshot(c.key()) for c in configs} if claiming else {}  # a change: another worker's row
    elsewhere: dict[str, tuple[RunConfig, Holder]] = {}  # skipped because another worker holds them
    rows: list[RunResult] = []

    def attempt(config: RunConfig, again: bool = False) -> None:
        key = config.key()
        claim = acquire(key, root) if claiming else None
        if isinstance(claim, Holder):
            elsewhere[key] = (config, claim)
            print(f"{key}: {claim.describe()}; " + ("not trained here, re-run when it is free" if again
                                                     else "skipped for now, checked again at the end"))
            return
        try:
            now = snapshot(key) if claiming else None
            if now is not None and (now != seen[key] or (now["status"] == "ok" and not force)):
                print(f"{key}: finished by another worker ({now['status']}), not trained here")
                return
            if in_process or world_size > 1:  # under torchrun the ranks must train together, in process
                row = train_and_store(config, root, imdb)
            else:
                try:
                    row = train_and_store_in_subprocess(config, root)
                except UserError as exc:  # a StoreWriteError's text comes back through the pipe
                    raise as_store_error(exc) from None
            if rank == 0:
                print(f"trained {key}")
            rows.append(row)
            if on_result is not None:
                on_result(row)
        finally:
            if claim is not None:
                claim.release()

    # A single run shows the Trainer's own bars; a bar over runs is only worth it for several.
    progress = tqdm(configs, desc="runs", unit="run", disable=True if len(configs) <= 1 else None)
    for config in progress:
        progress.set_postfix_str(f"{config.model} {config.method} seed {config.seed}")
        attempt(config)
    if elsewhere:  # the end: pick up runs whose worker has gone since (a finished one is left alone)
        waiting = list(elsewhere.values())
        elsewhere.clear()
        for config, _ in waiting:
            attempt(config, again=True)
        if elsewhere:
            print(f"{len(elsewhere)} run(s) still being trained by other workers: "
                  + ", ".join(f"{key} ({holder.owner})" for key, (_, holder) in elsewhere.items()))
    return rows


def load_or_train(config: RunConfig, root: str | os.PathLike | None = None, retrain: bool = False) -> RunResult:
    """The store's finished run of this config, said so in one line; else train it here and store it."""
    plan = plan_runs([config], root, force=retrain)
    if plan.stored:
        row = read_result(config.key(), root)
        print(f"stored run {row.key} (finished {row.finished_at}), not trained again; retrain=True trains it again")
        return row
    rows = train_planned(plan.train, root, in_process=True, force=retrain)
    return rows[0] if rows else read_result(config.key(), root)  # trained by another worker meanwhile
