"""Where the notebooks and the CLI find the data and keep results and figures, on a clone or on Colab."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .data import DATA_ENV
from .results import RESULTS_ENV

FIGURES_ENV = "PEFT_IMDB_FIGURES"


@dataclass(frozen=True)
class Folders:
    """Where the notebooks read data and write run records and figures."""

    data_dir: str | None  # None: the hub (stanfordnlp/imdb)
    results_dir: Path
    figures_dir: Path


def repository_root(start: str | os.PathLike | None = None) -> Path | None:
    """The checkout of this repository holding the working folder (notebooks run in notebooks/), if any."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "src" / "peft_imdb").is_dir():
            return folder
    return None


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The repository checkout, else the working folder (e.g. /content on Colab, installed from git)."""
    return repository_root(start) or Path(start or Path.cwd()).resolve()


def folders(start: str | os.PathLike | None = None) -> Folders:
    """PEFT_IMDB_DATA / PEFT_IMDB_RESULTS / PEFT_IMDB_FIGURES, else the repository's defaults.

    Data defaults to ../shared/data/imdb beside the checkout when it is there (as the Makefile does),
    else the hub; results and figures default to results/ and figures/ at the repository root.
    """
    root = project_root(start)
    data = os.environ.get(DATA_ENV) or None
    if data is None and (root.parent / "shared" / "data" / "imdb" / "train.jsonl").is_file():
        data = str(root.parent / "shared" / "data" / "imdb")
    return Folders(
        data_dir=data,
        results_dir=Path(os.environ.get(RESULTS_ENV) or root / "results"),
        figures_dir=Path(os.environ.get(FIGURES_ENV) or root / "figures"),
    )


def _shown(path: str | os.PathLike | None, root: Path | None) -> str | None:
    """A folder relative to the repository when it is in or beside it: outputs then hold no machine paths."""
    if path is None:
        return None
    path = Path(path).resolve()
    if root is not None and path.is_relative_to(root.parent):
        return os.path.relpath(path, root) + " (from the repository root)"
    return str(path)
