"""What the notebooks' first cell calls: install a clone that lacks the package, keep Colab's records on Drive.

The cell itself does only what has to come before this module can be imported: on Colab, outside a
clone, it clones the repository and works in the clone's notebooks/; everywhere it puts the clone's src/
on sys.path. The cell imports this module from there before the package's dependencies are installed,
so it (and peft_imdb/__init__.py) must import with the standard library alone, plus `packaging`, which
every Jupyter kernel has (tests/test_setup_cell.py checks it).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

DISTRIBUTION = "peft-imdb"
PLACEHOLDER = "/OWNER/"  # in pyproject.toml's URL, and so in REPO_URL, until scripts/set_repository.py sets it
DRIVE_MOUNT = "/content/drive"


def on_colab() -> bool:
    """True inside a Colab runtime (it imports google.colab before any cell runs)."""
    return "google.colab" in sys.modules


def find_clone(start: str | os.PathLike | None = None) -> Path | None:
    """The checkout of this repository holding the working folder (notebooks run in notebooks/), if any.

    The rule of `peft_imdb.folders.repository_root`, written again here: folders imports the package's
    dependencies, which a clone's kernel may not have yet.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "src" / "peft_imdb").is_dir():
            return folder
    return None


def is_installed(clone: Path | None = None) -> bool:
    """Whether pip has installed peft-imdb in this environment, not merely whether it imports.

    The first cell puts the clone's src/ on sys.path, so `import peft_imdb` works there either way; and an
    install of the clone in another environment leaves src/peft_imdb.egg-info behind, so that folder is
    left out of the search.
    """
    src = (clone / "src").resolve() if clone is not None else None
    path = [entry for entry in sys.path if src is None or Path(entry or ".").resolve() != src]
    return next(iter(importlib.metadata.distributions(name=DISTRIBUTION, path=path)), None) is not None


def install(clone: Path) -> None:
    """`pip install -e` the clone (its dependencies, the `peft-imdb` command) and import from its src/."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", str(clone)], check=True)
    # The editable install reaches new processes; this one needs the path.
    if str(clone / "src") not in sys.path:
        sys.path.insert(0, str(clone / "src"))
    importlib.invalidate_caches()


def keep_on_drive(drive_folder: str) -> None:
    """Mount Google Drive; run records and figures go to drive_folder unless PEFT_IMDB_* already say where.

    Colab gives every notebook its own runtime: on Drive, 05_compare sees the runs that 01-04 stored.
    """
    from google.colab import drive

    drive.mount(DRIVE_MOUNT)
    os.environ.setdefault("PEFT_IMDB_RESULTS", f"{drive_folder}/results")
    os.environ.setdefault("PEFT_IMDB_FIGURES", f"{drive_folder}/figures")


def status_line(repo_url: str) -> str:
    """The one line the cell prints: importable, and what to do while REPO_URL is the placeholder."""
    if PLACEHOLDER in repo_url and not on_colab():
        return "peft_imdb is importable; on Colab, set REPO_URL in this cell to the repository's URL"
    return "peft_imdb is importable"


def setup(repo_url: str, drive_folder: str | None = None) -> None:
    """Make peft_imdb usable in this kernel and say so in one line.

    Installed already: nothing to do. In a clone without it: `pip install -e` the clone. On Colab with
    drive_folder: mount Google Drive and keep run records and figures there.
    """
    clone = find_clone()
    if clone is not None and not is_installed(clone):
        install(clone)
    if on_colab() and drive_folder:
        keep_on_drive(drive_folder)
    print(status_line(repo_url))
