"""Execute the notebooks in order, in place, keeping their outputs (for the committed outputs).

    PEFT_IMDB_PROFILE=cpu .venv/bin/python scripts/execute_notebooks.py            # all six, in order
    PEFT_IMDB_PROFILE=smoke .venv/bin/python scripts/execute_notebooks.py --notebooks-dir /tmp/nb-copy
    .venv/bin/python scripts/execute_notebooks.py 02_lora 05_compare                 # some of them

The profile is PEFT_IMDB_PROFILE's (unset: detected, like the notebooks do); data, results and figures
follow PEFT_IMDB_DATA / PEFT_IMDB_RESULTS / PEFT_IMDB_FIGURES, else the repository's defaults. Stops at
the first notebook with a failing cell (exit code 1) and leaves that notebook's file unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat

from peft_imdb.notebook import NOTEBOOKS, execute

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"notebooks to run (default: all, in order: {', '.join(NOTEBOOKS)})")
    parser.add_argument("--notebooks-dir", type=Path, default=REPO / "notebooks",
                        help="folder holding the notebooks (default: notebooks/ of this repository)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: no limit)")
    args = parser.parse_args(argv)

    names = [n.removesuffix(".ipynb") for n in args.names] or list(NOTEBOOKS)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        parser.error(f"unknown notebook(s) {', '.join(unknown)}; choose from {', '.join(NOTEBOOKS)}")
    # Kernels run in the notebooks' folder: a relative folder means relative to where this was started.
    for name in ("PEFT_IMDB_DATA", "PEFT_IMDB_RESULTS", "PEFT_IMDB_FIGURES"):
        if os.environ.get(name):
            os.environ[name] = str(Path(os.environ[name]).resolve())
    profile = os.environ.get("PEFT_IMDB_PROFILE") or "unset (detected in each notebook)"
    print(f"profile: {profile}", flush=True)
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    for name in sorted(names, key=NOTEBOOKS.index):
        path = args.notebooks_dir / f"{name}.ipynb"
        print(f"running {path} ...", flush=True)
        start = time.perf_counter()
        try:
            notebook = execute(path, timeout_s=args.timeout)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
            print(f"FAILED {path} after {time.perf_counter() - start:.0f} s:\n{exc}", file=sys.stderr)
            return 1
        nbformat.write(notebook, path)
        print(f"  done in {time.perf_counter() - start:.0f} s, outputs written to {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
