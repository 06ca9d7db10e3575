"""Where the notebooks and the CLI find the data and keep results and figures, on a clone or on Colab."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .data import DATA_ENV
from .stores import STUDY, figures_folder, results_folder, store_for


@dataclass(frozen=True)
class Folders:
    """Where the notebooks read data and the committed study, and write their own run records and figures."""

    data_dir: str | None  # None: the hub (stanfordnlp/imdb)
    results_dir: Path  # the notebooks' own runs: the scratch store (git-ignored), or PEFT_IMDB_RESULTS
    figures_dir: Path  # charts of those runs: the scratch store's figures, or PEFT_IMDB_FIGURES
    study_dir: Path  # the committed study's runs: only read
    study_figures_dir: Path  # the committed study's charts (`report` draws them): only read


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
    else the hub; the notebooks' own results and figures go to the scratch store (stores.py) at the
    repository root, and the committed study is read from results/ and figures/ there.
    """
    root = project_root(start)
    data = os.environ.get(DATA_ENV) or None
    if data is None and (root.parent / "shared" / "data" / "imdb" / "train.jsonl").is_file():
        data = str(root.parent / "shared" / "data" / "imdb")
    own = store_for("notebook")
    return Folders(
        data_dir=data,
        results_dir=results_folder(own, root),
        figures_dir=figures_folder(own, root),
        study_dir=root / STUDY.results,
        study_figures_dir=root / STUDY.figures,
    )


def _shown(path: str | os.PathLike | None, root: Path | None) -> str | None:
    """A folder relative to the repository when it is in or beside it: outputs then hold no machine paths."""
    if path is None:
        return None
    path = Path(path).resolve()
    if root is not None and path.is_relative_to(root.parent):
        return os.path.relpath(path, root) + " (from the repository root)"
    return str(path)
