"""The notebooks' first cell and the helper it calls (peft_imdb.notebook_setup): what they do where.

Installed already: nothing. A clone whose kernel lacks the package: `pip install -e` of the clone. Colab: the
cell clones REPO_URL and works in the clone. DRIVE_FOLDER on Colab: Google Drive mounted, records kept there.
The shipped placeholder URL: one line saying what to set. pip is never run: subprocess.run is replaced.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from peft_imdb import notebook_setup
from peft_imdb.execution import notebook_paths

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = [path.stem for path in notebook_paths()]
SHIPPED_LINE = "peft_imdb is importable; on Colab, set REPO_URL in this cell to the repository's URL"
RUN = subprocess.run  # the real one, for git: the tests replace subprocess.run


def _first_cell(name: str, repo_url: str | None = None, drive_folder: str | None = None) -> str:
    """The first code cell of the committed notebook, with REPO_URL / DRIVE_FOLDER set as a student would."""
    notebook = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    source = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")["source"]
    if repo_url:
        source = re.sub(r'^REPO_URL = "[^"]*"', f"REPO_URL = {json.dumps(repo_url)}", source, count=1, flags=re.M)
    if drive_folder:
        source = re.sub(r'^DRIVE_FOLDER = (None|"[^"]*")', f"DRIVE_FOLDER = {json.dumps(drive_folder)}", source,
                        count=1, flags=re.M)
    return source


class Machine:
    """Stands in for pip and for whether the package is installed: records the commands that would run.

    git runs for real (the Colab test clones a local repository); pip only marks the package installed.
    """

    def __init__(self, monkeypatch, installed: bool):
        self.commands: list[list[str]] = []
        self.installed = installed

        def run(command, **kwargs):
            self.commands.append([str(part) for part in command])
            if "pip" in command:
                self.installed = True
                return subprocess.CompletedProcess(command, 0)
            return RUN(command, **kwargs)

        monkeypatch.setattr(subprocess, "run", run)
        monkeypatch.setattr(notebook_setup, "is_installed", lambda clone=None: self.installed)
        monkeypatch.setattr(sys, "path", list(sys.path))


def _pip_install(clone: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--quiet", "-e", str(clone)]


def _clone_skeleton(folder: Path) -> Path:
    """What the helper recognizes as a checkout: pyproject.toml, src/peft_imdb/, notebooks/."""
    (folder / "src" / "peft_imdb").mkdir(parents=True)
    (folder / "src" / "peft_imdb" / "__init__.py").write_text('"""A clone\'s package."""\n')
    (folder / "notebooks").mkdir()
    (folder / "notebooks" / "README.md").write_text("notebooks\n")
    (folder / "pyproject.toml").write_text('[project]\nname = "peft-imdb"\nversion = "0.1.0"\n')
    return folder


@pytest.fixture
def colab(monkeypatch):
    """A fake Colab runtime: google.colab imported, its drive.mount recorded."""
    mounts: list[str] = []
    module = types.ModuleType("google.colab")
    module.drive = types.SimpleNamespace(mount=mounts.append)
    monkeypatch.setitem(sys.modules, "google.colab", module)
    return mounts


# --- the cell: short, and what it does where ---------------------------------------------------------


@pytest.mark.audit
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_code_cell_is_at_most_ten_lines(name):
    lines = _first_cell(name).strip().splitlines()
    assert len(lines) <= 10, f"{name}: the first code cell has {len(lines)} lines"
    assert lines[0].startswith("REPO_URL = ") and any(line.startswith("DRIVE_FOLDER = ") for line in lines)


@pytest.mark.unit
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_cell_as_shipped_does_nothing_where_the_package_is_installed(name, monkeypatch, capsys):
    machine = Machine(monkeypatch, installed=True)
    monkeypatch.chdir(REPO / "notebooks")  # where the notebooks run, with the `.venv` kernel
    exec(_first_cell(name), {})
    assert machine.commands == []
    assert capsys.readouterr().out.splitlines() == [SHIPPED_LINE]


@pytest.mark.unit
def test_first_cell_installs_the_clone_it_runs_in(monkeypatch, capsys):
    machine = Machine(monkeypatch, installed=False)
    monkeypatch.chdir(REPO / "notebooks")
    exec(_first_cell("02_lora"), {})
    assert machine.commands == [_pip_install(REPO)]
    assert str(REPO / "src") in sys.path
    assert capsys.readouterr().out.splitlines() == [SHIPPED_LINE]  # and no machine path


@pytest.mark.integration
def test_first_cell_on_colab_clones_the_repository_works_in_it_and_installs_it(monkeypatch, tmp_path, colab,
                                                                               capsys):
    """REPO_URL is a local git repository here; Colab's /content is a temporary folder."""
    origin = _clone_skeleton(tmp_path / "origin")
    for command in (["init", "--quiet"], ["add", "."], ["commit", "--quiet", "-m", "a clone's files"]):
        RUN(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *command], cwd=origin, check=True,
            capture_output=True)
    content = tmp_path / "content"
    content.mkdir()
    monkeypatch.chdir(content)
    machine = Machine(monkeypatch, installed=False)
    cell = _first_cell("02_lora", repo_url=str(origin))
    exec(cell, {})
    clone = content / "peft-imdb"
    assert machine.commands == [["git", "clone", "--quiet", str(origin), "peft-imdb"], _pip_install(clone)]
    assert (clone / "notebooks" / "README.md").is_file()  # a clone of the repository
    assert Path.cwd() == clone / "notebooks"  # its results/ and figures/ are the ones used
    assert str(clone / "src") in sys.path
    assert capsys.readouterr().out.splitlines() == ["peft_imdb is importable"]
    assert colab == []  # no DRIVE_FOLDER: Drive is not mounted

    # The runtime restarted: back in /content, the clone is there and installed; nothing runs again.
    monkeypatch.chdir(content)
    exec(cell, {})
    assert machine.commands[2:] == [] and Path.cwd() == clone / "notebooks"


@pytest.mark.unit
def test_first_cell_on_colab_with_the_placeholder_url_says_what_to_set(monkeypatch, tmp_path, colab):
    machine = Machine(monkeypatch, installed=False)
    monkeypatch.chdir(tmp_path)  # Colab's /content, no clone
    with pytest.raises(AssertionError, match="^set REPO_URL in this cell to the repository's URL"):
        exec(_first_cell("02_lora"), {})
    assert machine.commands == [] and not (tmp_path / "peft-imdb").exists()


@pytest.mark.unit
def test_first_cell_on_colab_with_a_drive_folder_keeps_records_there(monkeypatch, tmp_path, colab, capsys):
    Machine(monkeypatch, installed=True)
    monkeypatch.delenv("PEFT_IMDB_RESULTS", raising=False)
    monkeypatch.delenv("PEFT_IMDB_FIGURES", raising=False)
    monkeypatch.chdir(REPO / "notebooks")  # already in a clone: no clone made
    exec(_first_cell("05_compare", drive_folder="/content/drive/MyDrive/peft-imdb"), {})
    assert colab == ["/content/drive"]
    assert os.environ["PEFT_IMDB_RESULTS"] == "/content/drive/MyDrive/peft-imdb/results"
    assert os.environ["PEFT_IMDB_FIGURES"] == "/content/drive/MyDrive/peft-imdb/figures"
    assert capsys.readouterr().out.splitlines() == ["peft_imdb is importable"]


# --- the helper ------------------------------------------------------------------------------------


@pytest.mark.unit
def test_setup_in_a_clone_without_the_package_installs_the_clone(monkeypatch, tmp_path, capsys):
    clone = _clone_skeleton(tmp_path / "clone")
    machine = Machine(monkeypatch, installed=False)
    monkeypatch.chdir(clone / "notebooks")
    notebook_setup.setup("https://github.com/someone/peft-imdb")
    assert machine.commands == [_pip_install(clone)]
    assert sys.path[0] == str(clone / "src")  # importable in this kernel now, before a restart
    assert capsys.readouterr().out.splitlines() == ["peft_imdb is importable"]


@pytest.mark.unit
@pytest.mark.parametrize("where", ["the repository", "not a clone"])
def test_setup_where_the_package_is_installed_does_nothing(where, monkeypatch, tmp_path, capsys):
    machine = Machine(monkeypatch, installed=True)
    monkeypatch.chdir(REPO / "notebooks" if where == "the repository" else tmp_path)
    notebook_setup.setup("https://github.com/OWNER/peft-imdb")
    assert machine.commands == []
    assert capsys.readouterr().out.splitlines() == [SHIPPED_LINE]


@pytest.mark.unit
def test_setup_with_the_placeholder_url_prints_its_one_line_instruction(monkeypatch, tmp_path, capsys):
    Machine(monkeypatch, installed=True)
    monkeypatch.chdir(tmp_path)
    notebook_setup.setup("https://github.com/OWNER/peft-imdb")
    notebook_setup.setup("https://github.com/someone/peft-imdb")
    assert capsys.readouterr().out.splitlines() == [SHIPPED_LINE, "peft_imdb is importable"]


@pytest.mark.unit
def test_setup_with_a_drive_folder_mounts_drive_and_sets_the_folders(monkeypatch, tmp_path, colab, capsys):
    Machine(monkeypatch, installed=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PEFT_IMDB_RESULTS", raising=False)
    monkeypatch.setenv("PEFT_IMDB_FIGURES", "/somewhere/figures")  # set by the student: kept
    notebook_setup.setup("https://github.com/someone/peft-imdb", "/content/drive/MyDrive/peft-imdb")
    assert colab == ["/content/drive"]
    assert os.environ["PEFT_IMDB_RESULTS"] == "/content/drive/MyDrive/peft-imdb/results"
    assert os.environ["PEFT_IMDB_FIGURES"] == "/somewhere/figures"
    assert capsys.readouterr().out.splitlines()[-1] == "peft_imdb is importable"


@pytest.mark.unit
def test_setup_off_colab_ignores_the_drive_folder(monkeypatch, tmp_path):
    Machine(monkeypatch, installed=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PEFT_IMDB_RESULTS", raising=False)
    notebook_setup.setup("https://github.com/someone/peft-imdb", "/content/drive/MyDrive/peft-imdb")
    assert "PEFT_IMDB_RESULTS" not in os.environ


@pytest.mark.unit
def test_is_installed_asks_pip_not_the_clone_on_sys_path(monkeypatch, tmp_path):
    """The cell puts the clone's src/ on sys.path, where an install elsewhere left peft_imdb.egg-info."""
    clone = _clone_skeleton(tmp_path / "clone")
    info = clone / "src" / "peft_imdb.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: peft-imdb\nVersion: 0.1.0\n")
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(clone / "src"), str(site)])
    assert not notebook_setup.is_installed(clone)
    info.rename(site / "peft_imdb-0.1.0.dist-info")  # pip's record, in the environment
    assert notebook_setup.is_installed(clone)


@pytest.mark.integration
def test_first_cell_in_a_kernel_without_the_package_or_its_dependencies_installs_the_clone(tmp_path):
    """A fresh interpreter that sees the standard library and `packaging` only (every Jupyter kernel has it):
    the cell imports the helper from the clone's src/, before `pip install -e` brings the dependencies; so
    nothing on the way (peft_imdb/__init__.py included) may import a third-party module but packaging."""
    import packaging

    (tmp_path / "packaging").symlink_to(Path(packaging.__file__).parent)
    code = ("import json, subprocess, sys\n"
            "commands = []\n"
            "def run(command, **kwargs):\n"
            "    commands.append(command)\n"
            "    return subprocess.CompletedProcess(command, 0)\n"
            "subprocess.run = run\n"
            f"exec({_first_cell('02_lora')!r}, {{}})\n"
            "import peft_imdb\n"
            "print(json.dumps([commands, peft_imdb.__file__]))\n")
    done = RUN([sys.executable, "-S", "-c", code], cwd=REPO / "notebooks", capture_output=True, text=True,
               env={"PYTHONPATH": str(tmp_path), "PATH": os.environ.get("PATH", "")})
    assert done.returncode == 0, done.stderr[-2000:]
    line, result = done.stdout.splitlines()
    assert line == SHIPPED_LINE
    commands, package = json.loads(result)
    assert commands == [_pip_install(REPO)]
    assert Path(package).parent == REPO / "src" / "peft_imdb"
