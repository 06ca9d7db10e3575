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
                  in_process: bool = False, on_result: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """Train and store each config in turn (each in a fresh process unless in_process); return the rows."""
    from tqdm.auto import tqdm

    from .runner import train_and_store, train_and_store_in_subprocess
    from .train import world

    rows = []
    # `disable` only when there is one run: otherwise tqdm's own TQDM_DISABLE decides (saved notebooks set it).
    progress = tqdm(configs, desc="runs", unit="run", **({"disable": True} if len(configs) <= 1 else {}))
    for config in progress:
        progress.set_postfix_str(f"{config.model} {config.method} seed {config.seed}")
        if in_process or world()[1] > 1:  # under torchrun the ranks must train together, in process
            row = train_and_store(config, root, imdb)
        else:
            row = train_and_store_in_subprocess(config, root)
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows


def load_or_train(config: RunConfig, root: str | os.PathLike | None = None, retrain: bool = False) -> RunResult:
    """The store's finished run of this config, said so in one line; else train it here and store it."""
    plan = plan_runs([config], root, force=retrain)
    if plan.stored:
        row = read_result(config.key(), root)
        print(f"stored run {row.key} (finished {row.finished_at}), not trained again; retrain=True trains it again")
        return row
    return train_planned(plan.train, root, in_process=True)[0]
