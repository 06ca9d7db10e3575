"""Running a notebook top to bottom in a fresh kernel (the tests and `make notebooks` use it)."""

from __future__ import annotations

import os
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
# Progress bars are for watching a run; in a saved notebook they are stderr noise of a past moment.
QUIET = {"TQDM_DISABLE": "1"}


def notebook_paths(folder: str | os.PathLike = NOTEBOOKS_DIR) -> list[Path]:
    """The repository's notebooks in reading order (their names start with a number)."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


def execute(path: str | os.PathLike, timeout_s: int | None = None, kernel_name: str = "python3"):
    """Run a notebook file top to bottom in a fresh kernel, in its own folder; return the executed copy.

    Raises nbclient's CellExecutionError at the first failing cell. The file itself is not written.
    """
    import nbformat

    path = Path(path)
    return execute_notebook(nbformat.read(path, as_version=4), path.parent, timeout_s, kernel_name)


def execute_notebook(notebook, workdir: str | os.PathLike, timeout_s: int | None = None,
                     kernel_name: str = "python3"):
    """Run an in-memory notebook in a fresh kernel whose working folder is `workdir`; return it.

    The kernel inherits this process's environment with progress bars off (unless TQDM_DISABLE is set),
    and no cell gets timing metadata: re-executing a notebook changes its outputs, not its cells.
    """
    from nbclient import NotebookClient

    client = NotebookClient(notebook, timeout=timeout_s, kernel_name=kernel_name, record_timing=False,
                            resources={"metadata": {"path": str(Path(workdir).resolve())}})
    client.execute(env={**os.environ, **{k: v for k, v in QUIET.items() if k not in os.environ}})
    return notebook
