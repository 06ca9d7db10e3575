"""Resume checkpoints (`--resume`): the Trainer's checkpoint-N folders, which of them are whole, and removing one
cut short while it was written (a stop or a kill mid-save), so training goes on from a whole one or from the start."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")  # the Trainer's checkpoint folders


def _whole_checkpoint(folder: Path, step: int) -> bool:
    """True when a checkpoint folder was written to its end: the Trainer writes trainer_state.json last."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and state.get("global_step") == step


def _checkpoints(folder: Path | None) -> list[tuple[int, Path]]:
    """The checkpoint-N folders under folder, newest first."""
    if folder is None or not folder.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in folder.iterdir()
             if path.is_dir() and (match := CHECKPOINT.match(path.name))]
    return sorted(found, reverse=True)


def last_whole_checkpoint(folder: Path | None) -> Path | None:
    """The newest checkpoint folder under folder that was written to its end, or None."""
    return next((path for step, path in _checkpoints(folder) if _whole_checkpoint(path, step)), None)


def last_checkpoint(folder: Path | None) -> str | None:
    """The newest whole checkpoint-N folder under folder, or None.

    A newer one cut short while it was written (a stop or a kill mid-save) is removed, and said so: training
    then goes on from the whole one before it, or starts over.
    """
    for step, path in _checkpoints(folder):
        if _whole_checkpoint(path, step):
            return str(path)
        shutil.rmtree(path, ignore_errors=True)
        print(f"removed the checkpoint {path}: it was cut short while it was written")
    return None
