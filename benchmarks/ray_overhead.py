"""Wall time of one small matrix on this machine: the local executor against a Ray cluster started here.

Three ways, each into a fresh results folder, each a `python -m peft_imdb matrix` command of its own: local (one
run after another, each in a fresh process with every CPU), Ray with one run per machine (`--ray-cpus-per-run`
= the CPUs: the local executor's schedule) and Ray with one CPU per run (runs side by side). At one schedule the
difference is Ray's overhead (its cluster's start, its tasks) less what its workers save by keeping their imports
and data from one run to the next, where the local executor starts each run in a fresh process. Run it on an
otherwise idle machine. Usage:

    python benchmarks/ray_overhead.py --data-dir ../shared/data/imdb
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recipes import benchmark_parser, save_benchmark

METHODS = ("full", "lora", "ia3")
SEEDS = ("0", "1")


def timed_matrix(out: Path, data_dir: str | None, profile: str, *extra: str) -> float:
    """Seconds one matrix command takes from start to exit (it must succeed)."""
    command = [sys.executable, "-m", "peft_imdb", "matrix", "--profile", profile, "--methods", *METHODS, "--seeds",
               *SEEDS, "--results-dir", str(out), *(["--data-dir", data_dir] if data_dir else []), *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command[2:])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Time the three ways; print them and Ray's overhead; store results/benchmarks/ray_overhead.json."""
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    args = parser.parse_args(argv)
    cpus = os.cpu_count() or 1
    ways = {"local": (), "ray, one run at a time": ("--executor", "ray", "--ray-cpus-per-run", str(cpus)),
            "ray, one CPU per run": ("--executor", "ray", "--ray-cpus-per-run", "1")}
    seconds = {}
    with tempfile.TemporaryDirectory() as scratch:
        for i, (way, extra) in enumerate(ways.items()):
            seconds[way] = timed_matrix(Path(scratch) / str(i), args.data_dir, args.profile, *extra)
            print(f"{way:24s} {seconds[way]:6.1f} s")
    overhead = seconds["ray, one run at a time"] - seconds["local"]
    print(f"Ray one run at a time against local: {overhead:+.1f} s ({overhead / seconds['local']:+.0%}) for "
          f"{len(METHODS) * len(SEEDS)} runs (its cluster's start and tasks, less the process starts its workers save)")
    payload = {"profile": args.profile, "methods": list(METHODS), "seeds": list(SEEDS), "cpus": cpus,
               "wall_s": {way: round(s, 1) for way, s in seconds.items()}, "overhead_s": round(overhead, 1)}
    print(f"wrote {save_benchmark('ray_overhead', payload, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
