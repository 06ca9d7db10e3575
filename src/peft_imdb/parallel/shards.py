"""Shares of a matrix for several machines: share K of N takes every N-th run in key order."""

from __future__ import annotations

from ..errors import UserError


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; UserError otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise UserError(f"--shard must be K/N with 1 <= K <= N (e.g. 1/3, 2/3, 3/3), got {text!r}")
    return k, n


def shard_runs(runs: list, k: int, n: int) -> list:
    """Share K of N: the runs at positions i (in the list sorted by key) with i % N == K-1, in their order."""
    keys = sorted({run.key for run in runs})
    mine = {key for i, key in enumerate(keys) if i % n == k - 1}
    return [run for run in runs if run.key in mine]
