"""Runs as Ray tasks: each planned run is one task on a Ray cluster (one started here on this machine by default,
or one started with `ray start --head`), trained by the code the local executor runs (runner.train_outcome). Its
record and predictions come back to this process as values and are stored here (atomic writes, the same keys):
workers need no shared folder, and claims play no part. Ray retries a task whose worker died (MAX_RETRIES); a run
that fails even so is stored `failed` with the reason; a stop (Ctrl-C, SIGTERM) cancels the tasks still out and
stores nothing partial."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from ..errors import UserError, first_line
from ..resolved import ResolvedRun
from ..results import RunResult
from ..train import TestPredictions

RAY_INSTALL = 'pip install -e ".[ray]"'
MAX_RETRIES = 2  # times Ray runs a task again after its worker process died
# Settings a worker needs from this process's environment (a cluster started elsewhere lacks them).
FORWARDED = ("PEFT_IMDB_", "HF_", "TRANSFORMERS_")


def require_ray():
    """The ray module; a UserError saying how to install it when it is missing."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray, which is not installed here: {RAY_INSTALL}") from None
    return ray


def _train_task(run: ResolvedRun) -> tuple[RunResult, TestPredictions | None]:
    """One run on a Ray worker: its record and predictions, returned as values (nothing is written there)."""
    from ..runner import train_outcome

    return train_outcome(run)


def _placement(ray, cpus_per_run: int | None) -> tuple[dict[str, float], int]:
    """What one run asks of the cluster (a GPU where the cluster has GPUs, else `cpus_per_run` CPUs, default 1),
    and how many runs the cluster then trains at once."""
    resources, cpus = ray.cluster_resources(), cpus_per_run or 1
    if resources.get("GPU", 0) >= 1:
        return {"num_gpus": 1, "num_cpus": cpus}, int(resources["GPU"])
    return {"num_cpus": cpus}, max(1, int(resources.get("CPU", 1) // cpus))


def _progress(done: int, total: int, running: int, elapsed: float) -> str:
    from ..wall_time import duration

    eta = f", ETA ~{duration(elapsed / done * (total - done))}" if 0 < done < total else ""
    return f"{done}/{total} done, {running} running{eta}"


def train_on_ray(runs: list[ResolvedRun], root: str | os.PathLike | None = None, address: str | None = None,
                 cpus_per_run: int | None = None, on_result: Callable[[RunResult], None] | None = None,
                 max_retries: int = MAX_RETRIES) -> list[RunResult]:
    """Train the runs as Ray tasks and store each one here as it finishes; return the records in finishing order.

    `address`: None starts a cluster on this machine for the call (even where one is running: Ray's `local`);
    `auto` (or host:port) joins a running one.
    """
    from ..runner import store_outcome

    ray = require_ray()
    if not runs:
        return []
    started_here = not ray.is_initialized()
    if started_here:
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED)}
        # Ray's word that it enabled its default token authentication is not this command's to print.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        try:
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": env} if env else None)
        except ConnectionError as exc:
            raise UserError(f"no Ray cluster at --ray-address {address}: {first_line(exc)}; start one with "
                            "`ray start --head`, or leave --ray-address out for a cluster on this machine") from None
    asks, slots = _placement(ray, cpus_per_run)
    task = ray.remote(_train_task).options(max_retries=max_retries, **asks)
    pending = {task.remote(run): run for run in runs}
    rows: list[RunResult] = []
    started = time.perf_counter()
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(ref)
            try:
                result, predictions = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:  # the task raised: bad input ends the command
                if isinstance(exc.cause, UserError):
                    raise exc.cause from None
                result, predictions = run.record("failed", f"{type(exc.cause).__name__}: "
                                                            f"{first_line(exc.cause)}"[:500]), None
            except ray.exceptions.RayError as exc:  # its worker died MAX_RETRIES + 1 times
                reason = f"its Ray worker died ({type(exc).__name__}, {max_retries} retries): {first_line(exc)}"
                result, predictions = run.record("failed", reason[:500]), None
            store_outcome(result, predictions, root)
            rows.append(result)
            running = min(len(pending), slots)
            elapsed = time.perf_counter() - started
            print(f"trained {run.key} on Ray: {_progress(len(rows), len(runs), running, elapsed)}")
            if on_result is not None:
                on_result(result)
    finally:  # a stop or an error: the tasks still out are cancelled, none of them is stored
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
    return rows

