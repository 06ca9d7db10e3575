"""scripts/set_repository.py: the repository's URL and the Drive folder live in pyproject.toml alone, and every
Open-in-Colab badge and each notebook's first cell are generated from them."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORK = "someone/peft-imdb-fork"
DRIVE = "/content/drive/MyDrive/imdb-runs"


def _script(root: Path = REPO):
    name = f"set_repository_{abs(hash(str(root)))}"  # its dataclasses look their module up by name
    spec = importlib.util.spec_from_file_location(name, root / "scripts" / "set_repository.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _first_code_cells(notebooks: Path) -> dict[str, str]:
    """Each notebook's first code cell, from the .ipynb and from its .py twin (keyed by file name)."""
    cells = {}
    for path in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        notebook = json.loads(path.read_text())
        cells[path.name] = "".join(next(c for c in notebook["cells"] if c["cell_type"] == "code")["source"])
        twin = path.with_suffix(".py").read_text()
        cells[f"{path.stem}.py"] = twin[twin.index("\n# %%\n") + len("\n# %%\n"):].split("\n\n# %%")[0]
    return cells


@pytest.mark.audit
def test_committed_badges_and_first_cells_follow_pyproject():
    """Every generated place holds pyproject.toml's settings, and every notebook opens itself from its first cell."""
    assert _script().out_of_step(REPO) == []


@pytest.mark.unit
@pytest.mark.parametrize("given, slug", [("octocat/peft-imdb", "octocat/peft-imdb"),
                                         ("https://github.com/octocat/peft-imdb.git", "octocat/peft-imdb"),
                                         ("https://github.com/octocat/my.fork/", "octocat/my.fork")])
def test_a_repository_is_named_as_owner_slash_name_or_its_url(given, slug):
    assert _script().parse_repository(given) == slug


@pytest.mark.unit
@pytest.mark.parametrize("argv", [["octocat"], ["https://gitlab.com/octocat/peft-imdb"], ["a/b/c"],
                                  ["octocat/peft-imdb", "--drive-folder", "/tmp/runs"], []])
def test_bad_input_is_one_line_saying_what_to_give_and_exit_2(argv, capsys):
    assert _script().main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


@pytest.mark.unit
def test_render_rewrites_badges_and_first_cell_settings_only():
    script = _script()
    settings = script.Settings("https://github.com/someone/fork", "/content/drive/MyDrive/x")
    text = ('[![b](https://colab.research.google.com/assets/colab-badge.svg)]'
            '(https://colab.research.google.com/github/OWNER/peft-imdb/blob/main/notebooks/02_lora.ipynb)\n'
            'REPO_URL = "https://github.com/OWNER/peft-imdb"  # comment kept\n'
            'DRIVE_FOLDER = None  # comment kept\n'
            'see https://github.com/huggingface/peft\n')
    assert script.render(text, settings) == (
        '[![b](https://colab.research.google.com/assets/colab-badge.svg)]'
        '(https://colab.research.google.com/github/someone/fork/blob/main/notebooks/02_lora.ipynb)\n'
        'REPO_URL = "https://github.com/someone/fork"  # comment kept\n'
        'DRIVE_FOLDER = "/content/drive/MyDrive/x"  # comment kept\n'
        'see https://github.com/huggingface/peft\n')
    back = script.Settings("https://github.com/OWNER/peft-imdb", "")
    assert script.render(script.render(text, settings), back) == text  # "" is no Drive folder: None again


@pytest.mark.system
def test_one_command_points_a_fresh_clone_at_a_fork_and_leaves_no_owner_behind(fresh_clone):
    """After set_repository.py runs once, every badge and first cell name the fork; --check agrees."""
    run = [sys.executable, "scripts/set_repository.py"]
    done = subprocess.run([*run, FORK, "--drive-folder", DRIVE], cwd=fresh_clone, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert subprocess.run([*run, "--check"], cwd=fresh_clone, capture_output=True).returncode == 0

    script = _script(fresh_clone)
    assert script.read_settings(fresh_clone) == script.Settings(f"https://github.com/{FORK}", DRIVE)
    notebooks = sorted(p.name for p in (fresh_clone / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    badges = [m for path in script.managed_files(fresh_clone) for m in script.BADGE.finditer(path.read_text())]
    # Each notebook is opened from its own first cell (.ipynb and .py twin) and from notebooks/README.md; 00 from
    # README.md too.
    assert sorted(m.group(4) for m in badges) == sorted(
        [f"notebooks/{name}" for name in notebooks] * 3 + ["notebooks/00_setup_and_data.ipynb"])
    assert {m.group(2) for m in badges} == {FORK}
    assert all((fresh_clone / m.group(4)).is_file() for m in badges)
    cells = _first_code_cells(fresh_clone / "notebooks")
    assert len(cells) == 2 * len(notebooks)
    for name, cell in cells.items():
        assert f'REPO_URL = "https://github.com/{FORK}"' in cell.splitlines()[0], name
        assert f'DRIVE_FOLDER = "{DRIVE}"' in cell, name
    # No OWNER left but the first cell's placeholder check (and the code and tests that know the placeholder).
    left = subprocess.run(["git", "grep", "-n", "OWNER", "--", ".", ":!tests", ":!scripts/set_repository.py",
                           ":!src/peft_imdb/notebook_setup.py"], cwd=fresh_clone, capture_output=True, text=True)
    lines = [line for line in left.stdout.splitlines() if line]
    assert lines and all(re.search(r'assert \\?"/OWNER/\\?" not in REPO_URL', line) for line in lines), lines[:3]


@pytest.mark.system
def test_check_names_each_place_a_hand_edit_left_behind(fresh_clone):
    readme = fresh_clone / "notebooks" / "README.md"
    readme.write_text(readme.read_text().replace("github/OWNER/peft-imdb/blob/main/notebooks/05",
                                                 "github/other/peft-imdb/blob/main/notebooks/05"))
    done = subprocess.run([sys.executable, "scripts/set_repository.py", "--check"], cwd=fresh_clone,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0].startswith("notebooks/README.md: out of step with pyproject.toml")
