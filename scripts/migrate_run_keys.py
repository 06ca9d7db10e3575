"""One-off migration of stored runs to the run identity of the method registry (kept for stores made before it).

Before the registry, a run's key hashed every RunConfig field, LoRA's fields were top-level
(`lora_r`, `lora_alpha`, `lora_dropout`, `target_modules`), and Full FT's key included them. Now the
adapter settings live in `adapter` in peft's own names and the key hashes the run's identity
(RunConfig.identity). This script rewrites each record of every results folder under ROOT (the main
store, ablations, sweeps, ...) with its new key, group and identity, and renames its predictions file:

    .venv/bin/python scripts/migrate_run_keys.py results            # --dry-run lists what would change

Records already migrated (their config has `adapter`) are left as they are; metrics are never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from peft_imdb.config import RunConfig
from peft_imdb.results import RunResult, predictions_path, save_result

# The old top-level fields, their peft names, and the values every run had unless an ablation changed them.
OLD_ADAPTER_FIELDS = {"lora_r": ("r", 8), "lora_alpha": ("lora_alpha", 16), "lora_dropout": ("lora_dropout", 0.1),
                      "target_modules": ("target_modules", None)}
LORA_ONLY = {"lora_r", "lora_alpha", "lora_dropout"}


def migrated_config(old: dict, row: dict | None = None) -> RunConfig:
    """The old config as a RunConfig of the registry: adapter fields that differ from the old defaults.

    Before the registry, QLoRA's recipe turned gradient checkpointing on whatever the config said; the row
    recorded what ran (`gradient_checkpointing`), and the migrated config says the same.
    """
    config = dict(old)
    if row is not None and row.get("gradient_checkpointing"):
        config["gradient_checkpointing"] = True
    if row is not None and config.get("lr") is None and row.get("lr") is not None:
        config["lr"] = row["lr"]  # the rate it ran with, so a later change of the method's default renames nothing
    adapter = {}
    for name, (peft_name, default) in OLD_ADAPTER_FIELDS.items():
        value = config.pop(name, default)
        if value != default and (name not in LORA_ONLY or "lora" in config["method"]) and config["method"] != "full":
            adapter[peft_name] = value
    config["adapter"] = {**adapter, **config.get("adapter", {})}
    return RunConfig.from_dict(config)


def migrate_folder(folder: Path, dry_run: bool) -> list[str]:
    """Migrate the records of one results folder (holding runs/); return one line per record moved."""
    lines = []
    for path in sorted((folder / "runs").glob("*.json")):
        data = json.loads(path.read_text())
        config = migrated_config(data["config"], data)
        if "adapter" in data["config"] and data["key"] == config.key() and data["config"].get("lr") is not None:
            continue
        old_key, new_key = data["key"], config.key()
        lines.append(f"{folder}: {old_key} -> {new_key}")
        if dry_run:
            continue
        record = RunResult.from_dict({**data, "key": new_key, "group": config.group(), "identity": config.identity(),
                                      "config": config.to_dict()})
        old_predictions = predictions_path(old_key, folder)
        if old_predictions.is_file():
            os.replace(old_predictions, predictions_path(new_key, folder))
        save_result(record, folder)
        if new_key != old_key:
            path.unlink()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a results folder; every folder below it holding runs/ is migrated")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    folders = sorted({p.parent for p in args.root.rglob("runs") if p.is_dir()})
    for folder in folders:
        for line in migrate_folder(folder, args.dry_run):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
