"""Point the Colab links at a repository: pyproject.toml's URL, every Open-in-Colab badge, each notebook's first cell.

    python scripts/set_repository.py YOU/peft-imdb            # a fork on GitHub (or its https://github.com/ URL)
    python scripts/set_repository.py YOU/peft-imdb --drive-folder /content/drive/MyDrive/peft-imdb
    python scripts/set_repository.py --check                  # exit 1, naming each place out of step

Two settings live in pyproject.toml: [project.urls] Repository (the repository's URL) and [tool.peft-imdb]
colab-drive-folder (the Google Drive folder a Colab runtime keeps your runs in; "" for none). Generated from
them: the badges in README.md, notebooks/README.md and each notebook's first markdown cell, and the REPO_URL
and DRIVE_FOLDER lines of each notebook's first code cell (.py twin and .ipynb alike; outputs are kept).
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GITHUB = "https://github.com/"
DRIVE_MOUNT = "/content/drive/"  # where the first cell mounts Google Drive (peft_imdb.notebook_setup)
SLUG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9._-]+$")
URL_LINE = re.compile(r'^(Repository = )"([^"]*)"', re.M)
DRIVE_LINE = re.compile(r'^(colab-drive-folder = )"([^"]*)"', re.M)
BADGE = re.compile(r"(https://colab\.research\.google\.com/github/)([^/\s)]+/[^/\s)]+)(/blob/[^/\s)]+/)([^\s)]+)")
CELL_URL = re.compile(r'^(REPO_URL = )"[^"]*"', re.M)
CELL_DRIVE = re.compile(r"^(DRIVE_FOLDER = )(?:None|\"[^\"]*\")", re.M)


class Refused(Exception):
    """Bad input: one line saying what to give instead (exit code 2)."""


@dataclass(frozen=True)
class Settings:
    """The two settings in pyproject.toml."""

    repository_url: str  # https://github.com/OWNER/NAME
    drive_folder: str  # "" for none

    @property
    def slug(self) -> str:
        """OWNER/NAME, as the Colab links spell it."""
        return self.repository_url.removeprefix(GITHUB).strip("/")


def read_settings(root: Path = ROOT) -> Settings:
    """The repository URL and the Drive folder from pyproject.toml."""
    text = (root / "pyproject.toml").read_text()
    url, drive = URL_LINE.search(text), DRIVE_LINE.search(text)
    if url is None or drive is None:
        raise Refused("pyproject.toml lacks `Repository = \"...\"` under [project.urls] or `colab-drive-folder = "
                      "\"...\"` under [tool.peft-imdb]; restore them from git")
    return Settings(url.group(2), drive.group(2))


def parse_repository(text: str) -> str:
    """OWNER/NAME from `OWNER/NAME` or a github.com URL; Refused otherwise."""
    slug = text.removeprefix(GITHUB).removesuffix(".git").strip("/")
    if not SLUG.match(slug):
        raise Refused(f"expected the repository as OWNER/NAME (e.g. octocat/peft-imdb) or its {GITHUB} URL, "
                      f"got {text!r}")
    return slug


def parse_drive_folder(text: str) -> str:
    """A folder under /content/drive/, or "" for none (`none`, `""`); Refused otherwise."""
    if text.lower() in ("", "none"):
        return ""
    if not text.startswith(DRIVE_MOUNT) or '"' in text:
        raise Refused(f"a Drive folder is a path under {DRIVE_MOUNT} (e.g. {DRIVE_MOUNT}MyDrive/peft-imdb), or "
                      f"none; got {text!r}")
    return text.rstrip("/")


def write_settings(settings: Settings, root: Path = ROOT) -> bool:
    """Write both settings into pyproject.toml; True when it changed."""
    path = root / "pyproject.toml"
    text = path.read_text()
    fresh = URL_LINE.sub(lambda m: f'{m.group(1)}"{settings.repository_url}"', text, count=1)
    fresh = DRIVE_LINE.sub(lambda m: f'{m.group(1)}"{settings.drive_folder}"', fresh, count=1)
    if fresh != text:
        path.write_text(fresh)
    return fresh != text


# --- the generated places ---------------------------------------------------------------------------------


def render(text: str, settings: Settings) -> str:
    """A text with every badge and first-cell setting in it generated from the settings."""
    text = BADGE.sub(lambda m: m.group(1) + settings.slug + m.group(3) + m.group(4), text)
    text = CELL_URL.sub(lambda m: f'{m.group(1)}"{settings.repository_url}"', text, count=1)
    drive = json.dumps(settings.drive_folder) if settings.drive_folder else "None"
    return CELL_DRIVE.sub(lambda m: m.group(1) + drive, text, count=1)


def managed_files(root: Path = ROOT) -> list[Path]:
    """The files holding generated places: the READMEs, docs/*.md and the notebooks with their .py twins."""
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "notebooks" / "README.md",
            *notebooks, *(path.with_suffix(".py") for path in notebooks)]


def _render_notebook(raw: str, settings: Settings) -> str:
    """An .ipynb file's text with its cells' sources rendered; outputs and formatting as nbformat writes them."""
    notebook = json.loads(raw)
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        fresh = render(source, settings)
        if fresh != source:
            cell["source"] = fresh.splitlines(keepends=True)
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def rendered(path: Path, settings: Settings) -> str:
    """A managed file's text as the settings generate it."""
    raw = path.read_text(encoding="utf-8")
    return _render_notebook(raw, settings) if path.suffix == ".ipynb" else render(raw, settings)


def missing_badges(root: Path = ROOT) -> list[str]:
    """Problems with where the badges are: each notebook's first markdown cell opens itself, README.md has one."""
    problems = []
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        first = next(("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"), "")
        targets = [m.group(4) for m in BADGE.finditer(first)]
        if targets != [f"notebooks/{path.name}"]:
            problems.append(f"notebooks/{path.name}: its first markdown cell needs one badge that opens it "
                            f"(found {targets or 'none'})")
    if not BADGE.search((root / "README.md").read_text()):
        problems.append("README.md: no Open-in-Colab badge")
    return problems


def out_of_step(root: Path = ROOT) -> list[str]:
    """Every managed file whose badges or first cell differ from pyproject.toml's settings, and missing badges."""
    settings = read_settings(root)
    stale = [f"{path.relative_to(root).as_posix()}: out of step with pyproject.toml ({settings.repository_url}, "
             f"Drive folder {settings.drive_folder or 'none'})"
             for path in managed_files(root) if rendered(path, settings) != path.read_text(encoding="utf-8")]
    return stale + missing_badges(root)


def apply(settings: Settings, root: Path = ROOT) -> list[str]:
    """Write the settings into pyproject.toml and every managed file; the paths changed."""
    changed = ["pyproject.toml"] if write_settings(settings, root) else []
    for path in managed_files(root):
        fresh = rendered(path, settings)
        if fresh != path.read_text(encoding="utf-8"):
            path.write_text(fresh, encoding="utf-8")
            changed.append(path.relative_to(root).as_posix())
    return changed


def main(argv: list[str] | None = None) -> int:
    """Set the repository (and Drive folder) everywhere, or with --check say what is out of step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", nargs="?", help="OWNER/NAME on GitHub, or its https://github.com/ URL")
    parser.add_argument("--drive-folder", help=f"Colab: a folder under {DRIVE_MOUNT} that keeps your runs, or none "
                        "(default: as pyproject.toml has it)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a place is out of step")
    args = parser.parse_args(argv)
    try:
        if args.check:
            if args.repository or args.drive_folder is not None:
                raise Refused("--check takes no repository or --drive-folder; it compares with pyproject.toml")
            problems = out_of_step()
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print("run python scripts/set_repository.py OWNER/NAME (pyproject.toml's, or a new one)", file=sys.stderr)
            return 1 if problems else 0
        current = read_settings()
        if args.repository is None and args.drive_folder is None:
            raise Refused("name the repository, e.g. python scripts/set_repository.py octocat/peft-imdb "
                          "(or --check, or --drive-folder PATH)")
        slug = parse_repository(args.repository) if args.repository else current.slug
        drive = parse_drive_folder(args.drive_folder) if args.drive_folder is not None else current.drive_folder
        settings = Settings(GITHUB + slug, drive)
        for path in apply(settings):
            print(f"updated {path}")
        print(f"Colab links and first cells point to {settings.repository_url}; Drive folder: "
              f"{settings.drive_folder or 'none'}")
        return 0
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
