"""Execute the notebooks in order, in place, keeping their outputs (for the committed outputs).

    PEFT_IMDB_PROFILE=cpu .venv/bin/python scripts/execute_notebooks.py            # all of them, in order
    PEFT_IMDB_PROFILE=smoke .venv/bin/python scripts/execute_notebooks.py --notebooks-dir /tmp/nb-copy
    .venv/bin/python scripts/execute_notebooks.py 02_lora 05_compare                 # some of them

The profile is PEFT_IMDB_PROFILE's (unset: detected, like the notebooks do); data, results and figures
follow PEFT_IMDB_DATA / PEFT_IMDB_RESULTS / PEFT_IMDB_FIGURES, else the repository's defaults. Only the
.ipynb files get outputs: their cells, and so their .py twins, stay as they are. Stops at the first
notebook with a failing cell (exit code 1) and leaves that notebook's file unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat

from peft_imdb.execution import NOTEBOOKS_DIR, execute, notebook_paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run, by name (default: all, in order)")
    parser.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR,
                        help="folder holding the notebooks (default: notebooks/ of this repository)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: no limit)")
    args = parser.parse_args(argv)

    paths = notebook_paths(args.notebooks_dir)
    names = [n.removesuffix(".ipynb") for n in args.names] or [p.stem for p in paths]
    unknown = [n for n in names if n not in {p.stem for p in paths}]
    if unknown:
        parser.error(f"unknown notebook(s) {', '.join(unknown)}; choose from {', '.join(p.stem for p in paths)}")
    # Kernels run in the notebooks' folder: a relative folder means relative to where this was started.
    for name in ("PEFT_IMDB_DATA", "PEFT_IMDB_RESULTS", "PEFT_IMDB_FIGURES"):
        if os.environ.get(name):
            os.environ[name] = str(Path(os.environ[name]).resolve())
    profile = os.environ.get("PEFT_IMDB_PROFILE") or "unset (detected in each notebook)"
    print(f"profile: {profile}", flush=True)
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    for path in (p for p in paths if p.stem in names):
        print(f"running {path.name} ...", flush=True)
        start = time.perf_counter()
        try:
            notebook = execute(path, timeout_s=args.timeout)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
            print(f"FAILED {path.name} after {time.perf_counter() - start:.0f} s:\n{exc}", file=sys.stderr)
            return 1
        nbformat.write(notebook, path)
        print(f"  done in {time.perf_counter() - start:.0f} s, outputs written", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
