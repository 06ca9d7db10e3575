"""Regenerate the README's measured tables from stored results; no number in them is typed by hand.

Each table sits between `<!-- begin:NAME -->` and `<!-- end:NAME -->` in README.md and is rebuilt from
results/ (run records, predictions, benchmark records). `python scripts/update_readme.py --check`
exits 1 when the README is out of date (the tests run that).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from peft_imdb.report import add_statistics, advice, method_table, summarize, twin_lines  # noqa: E402
from peft_imdb.results import load_results  # noqa: E402

RESULTS = ROOT / "results"
MISSING = "*Not measured yet: run the command above.*"


def _benchmarks(pattern: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((RESULTS / "benchmarks").glob(pattern))]


def study() -> str:
    """The main table (mean ± std, intervals, paired tests) and the derived advice."""
    frame = load_results(RESULTS)
    if frame.empty:
        return MISSING
    table = add_statistics(summarize(frame), RESULTS)
    twins = twin_lines(table, frame, RESULTS)
    return "\n".join(method_table(table) + [""] + twins + ([""] if twins else []) + advice(table))


def ablations() -> str:
    """Each ablation's table with its verdicts against the reference, from results/ablations/<name>/."""
    from peft_imdb.ablations import ABLATIONS
    from peft_imdb.report import ablation_rows, ablation_tables

    parts = []
    for name, table in ablation_tables(RESULTS).items():
        parts += [f"**{name}**: {ABLATIONS[name].question}", ""] + ablation_rows(name, table) + [""]
    return "\n".join(parts).strip() if parts else MISSING


def mfu() -> str:
    """The MFU benchmark: each method in the usual fp32 recipe and in ours, against the measured peaks."""
    records = _benchmarks("mfu_*.json")
    if not records:
        return MISSING
    lines = ["| model, method | max length | usual (fp32, AdamW): samples/s | GFLOP/s | MFU of fp32 peak "
             "| ours: samples/s | GFLOP/s | MFU of bf16 peak | speed-up |", "|---" * 9 + "|"]
    for record in records:
        rows = {(r["method"], r["max_length"], r["recipe"]): r for r in record["rows"]}
        for (method, length, recipe), usual in rows.items():
            ours = rows.get((method, length, "ours"))
            if recipe != "usual" or ours is None:
                continue
            lines.append(f"| {record['model']}, {method} | {length} | {usual['train_samples_per_s']:.1f} "
                         f"| {usual['model_gflops_per_s']:.0f} | {usual['mfu']:.0%} | {ours['train_samples_per_s']:.1f} "
                         f"| {ours['model_gflops_per_s']:.0f} | {ours['mfu_of_bf16_peak']:.0%} "
                         f"| **{ours['train_samples_per_s'] / usual['train_samples_per_s']:.2f}×** |")
        peaks = record["peak_gflops"]
        lines += ["", f"Measured peaks (dense matmul, same process, the model's GEMM shapes and a 2048² square): "
                  f"fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s. Ours: "
                  f"{record['ours_precision']} ({record['ours_precision_reason']}), {record['ours_optim']}; "
                  f"{record['steps']} steps × batch {record['batch_size']} per cell. Device: {record['env']['device']}, "
                  f"commit {record['env']['git_commit'][:8]}."]
    return "\n".join(lines)


def _matrix_line(path: Path) -> str | None:
    lines = [line for line in path.read_text().splitlines() if line.startswith("matrix: ")] if path.is_file() else []
    return lines[-1] if lines else None


def overhead() -> str:
    """The share of `matrix` wall time outside training and evaluation: the study's, and re-measured forked."""
    from peft_imdb.results import load_predictions

    parts = []
    study = _matrix_line(RESULTS / "benchmarks" / "matrix_study.txt")
    if study:
        parts.append(f"- `{study}`: the committed study's `matrix` output (`results/benchmarks/matrix_study.txt`), "
                     "each run in a spawned process that imported torch, transformers and peft itself")
    folder = RESULTS / "benchmarks" / "matrix_forkserver"
    again = _matrix_line(folder / "matrix.txt")
    if again:
        forked, spawned = load_results(folder).set_index("key"), load_results(RESULTS).set_index("key")
        keys = [key for key in forked.index if key in spawned.index]
        same = sum(bool((load_predictions(key, folder)["predicted"] == load_predictions(key, RESULTS)["predicted"]).all())
                   for key in keys)
        lower = spawned.loc[keys, "peak_memory_mb"] - forked.loc[keys, "peak_memory_mb"]
        parts.append(f"- `{again}`: the study's seed-0 runs again (`matrix --seeds 0`), each forked from the fork "
                     f"server (`results/benchmarks/matrix_forkserver/`). {same} of {len(keys)} give the same "
                     f"prediction on every test review as the committed run; their process peak reads "
                     f"{lower.min():.0f}–{lower.max():.0f} MB lower than spawned")
    return "\n".join(parts) if parts else MISSING


def profile() -> str:
    """Where our recipe's step time goes (profile_step.py), and both recipes timed without dropout."""
    records = [r for r in _benchmarks("profile_*.json") if not r.get("quick")]
    if not records:
        return MISSING
    found = records[0]["profiles"][records[0]["methods"][0]]["categories"]
    names = [n for n in ("matmul", "dropout masks", "casts and copies", "optimizer", "other") if n in found]
    names += [n for n in found if n not in names]
    lines = ["| model, method | max length | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for record in records:
        for method, profile in record["profiles"].items():
            lines.append(f"| {record['model']}, {method} | {record['max_length']} | "
                         + " | ".join(f"{profile['categories'][n]:.0%}" for n in names) + " |")
    lines += ["", "| model, method | max length | dropout | usual: samples/s | ours: samples/s | ours: MFU of bf16 peak "
              "| speed-up |", "|---" * 7 + "|"]
    for record in records:
        rows = {(r["method"], r["recipe"], r["dropout"]): r for r in record["rows"]}
        for method in record["methods"]:
            for dropout in (True, False):
                usual, ours = rows[method, "usual", dropout], rows[method, "ours", dropout]
                lines.append(f"| {record['model']}, {method} | {record['max_length']} | "
                             f"{'as trained' if dropout else 'p=0 everywhere'} | {usual['train_samples_per_s']:.1f} "
                             f"| {ours['train_samples_per_s']:.1f} | {ours['mfu_of_bf16_peak']:.0%} "
                             f"| {ours['speedup']:.2f}× |")
    lines += ["", "| model, method | max length | usual, as trained: samples/s | ours with dropout off: samples/s "
              "| ours: MFU of bf16 peak | speed-up |", "|---" * 6 + "|"]
    for record in records:  # the two cells above that compare our recipe, dropout off, with the usual one
        rows = {(r["method"], r["recipe"], r["dropout"]): r for r in record["rows"]}
        for method in record["methods"]:
            usual, ours = rows[method, "usual", True], rows[method, "ours", False]
            lines.append(f"| {record['model']}, {method} | {record['max_length']} | {usual['train_samples_per_s']:.1f} "
                         f"| {ours['train_samples_per_s']:.1f} | {ours['mfu_of_bf16_peak']:.0%} "
                         f"| {ours['train_samples_per_s'] / usual['train_samples_per_s']:.2f}× |")
    first = records[0]
    lines += ["", f"Shares of self CPU time over {first['profile_steps']} traced steps of our recipe (torch.profiler; "
              f"`dropout masks` is `aten::bernoulli_`); timings: {first['steps']} steps × batch {first['batch_size']} "
              f"per cell, in the same process; single measurements, no interval. Device: {first['env']['device']}, commit "
              + ", ".join(sorted({r['env']['git_commit'][:8] for r in records})) + "."]
    return "\n".join(lines)


def scaling() -> str:
    """Training samples/s and time per method of the committed study's rows (mean over seeds)."""
    frame = load_results(RESULTS)
    if frame.empty:
        return MISSING
    frame = frame[frame["status"] == "ok"]
    grouped = frame.groupby(["method", "precision_mode", "max_length", "train_size"], sort=True)
    rows = grouped.agg(samples_per_s=("train_samples_per_s", "mean"), seconds=("train_time_s", "mean"),
                       eval_seconds=("eval_time_s", "mean"), runs=("key", "count")).reset_index()
    lines = ["| method | precision | max length | train reviews | runs | train samples/s | train time (s) "
             "| test evaluation (s) |", "|---" * 8 + "|"]
    for _, r in rows.iterrows():
        lines.append(f"| {r['method']} | {r['precision_mode']} | {r['max_length']} | {r['train_size']} | {r['runs']} "
                     f"| {r['samples_per_s']:.1f} | {r['seconds']:.0f} | {r['eval_seconds']:.0f} |")
    return "\n".join(lines)


def picks() -> str:
    """Each method's grid and validation-picked CPU learning rate (the sweep's picks.json)."""
    from peft_imdb.config import PROFILES
    from peft_imdb.methods import get_method, method_names
    from peft_imdb.sweep import sweep_folder

    path = sweep_folder(PROFILES["cpu"], RESULTS) / "picks.json"
    if not path.is_file():
        return MISSING
    chosen = json.loads(path.read_text())
    lines = ["| method | grid (cpu) | pick | validation accuracy at the pick (mean over seeds) | inside the grid |",
             "|---" * 5 + "|"]
    for method in [m for m in method_names() if m in chosen]:
        pick, grid = chosen[method], get_method(method).lr_grid.get("cpu", ())
        lines.append(f"| {method} | {', '.join(f'{lr:g}' for lr in grid)} | {pick['lr']:g} "
                     f"| {pick['val_accuracy_mean']:.4f} ({pick['seeds']} seeds) "
                     f"| {'yes' if pick['interior'] else 'no: at an end'} |")
    return "\n".join(lines)


def choice(name: str) -> str:
    """A validation comparison of one setting (sweep.CHOICES): its summary's table and choice."""
    from peft_imdb.config import PROFILES
    from peft_imdb.sweep import CHOICES

    path = CHOICES[name].folder(PROFILES["cpu"], RESULTS) / "summary.md"
    if not path.is_file():
        return MISSING
    lines = path.read_text().splitlines()
    return "\n".join(lines[next(i for i, line in enumerate(lines) if line.startswith("| method")):]).strip()


BLOCKS = {"study": study, "picks": picks, "truncation": lambda: choice("truncation"),
          "dropout": lambda: choice("dropout"), "ablations": ablations, "mfu": mfu, "profile": profile,
          "overhead": overhead, "scaling": scaling}


def render(text: str) -> str:
    """README text with every generated block rebuilt."""
    for name, build in BLOCKS.items():
        pattern = re.compile(rf"(<!-- begin:{name} -->\n)(?:.*?\n)?(<!-- end:{name} -->)", re.S)
        text = pattern.sub(lambda m: m.group(1) + build() + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md (or with --check, say whether it is up to date)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md differs from the results")
    args = parser.parse_args(argv)
    path = ROOT / "README.md"
    current = path.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md is out of date with results/: run python scripts/update_readme.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(fresh)
    print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
