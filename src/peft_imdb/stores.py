"""Which store a command writes when no folder is named: the committed study, or the git-ignored scratch store.

Only the experiments that make the committed study write into `results/` and `figures/` by default (as peft's
method_comparison keeps ad-hoc runs in `temporary_results/`); `run`, the notebooks and the smoke profile write
into `results-scratch/`, their figures into `results-scratch/figures/`. `--results-dir` / `--figures-dir`, or
PEFT_IMDB_RESULTS / PEFT_IMDB_FIGURES, name any other folder and win over both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RESULTS_ENV = "PEFT_IMDB_RESULTS"
FIGURES_ENV = "PEFT_IMDB_FIGURES"


@dataclass(frozen=True)
class Store:
    """A results folder and the figures folder drawn from it, relative to the repository (or working) folder."""

    name: str
    results: Path
    figures: Path


STUDY = Store("study", Path("results"), Path("figures"))  # committed: written by the study's experiments only
SCRATCH = Store("scratch", Path("results-scratch"), Path("results-scratch") / "figures")  # in .gitignore
STORES = {store.name: store for store in (STUDY, SCRATCH)}

# The store each writer uses by default. The experiments (and `matrix`, the study's runs as a grid) make the
# committed study; `report` and `merge` rebuild or fold it; `reproduce` reads it (its re-runs go to a scratch
# folder of their own). Everything a student runs by hand writes apart.
COMMAND_STORES = {
    "experiment": STUDY, "ablation": STUDY, "sweep": STUDY, "matrix": STUDY, "report": STUDY, "merge": STUDY,
    "reproduce": STUDY, "run": SCRATCH, "notebook": SCRATCH,
}


def store_for(command: str, profile_store: str = STUDY.name) -> Store:
    """The store `command` writes by default on a profile whose runs go to `profile_store` (the scratch one wins)."""
    return SCRATCH if SCRATCH.name in (COMMAND_STORES[command].name, profile_store) else STUDY


def results_folder(store: Store, root: str | os.PathLike | None = None) -> Path:
    """PEFT_IMDB_RESULTS, else the store's results folder (under root when given)."""
    return Path(os.environ.get(RESULTS_ENV) or Path(root or "") / store.results)


def figures_folder(store: Store, root: str | os.PathLike | None = None) -> Path:
    """PEFT_IMDB_FIGURES, else the store's figures folder (under root when given)."""
    return Path(os.environ.get(FIGURES_ENV) or Path(root or "") / store.figures)
