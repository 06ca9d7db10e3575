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
sys.path.insert(0, str(ROOT / "benchmarks"))

import pandas as pd  # noqa: E402

from peft_imdb.report import add_statistics, advice, method_table, summarize  # noqa: E402
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
    return "\n".join(method_table(table) + [""] + advice(table))


def truncation() -> str:
    """Head-only vs head+tail, paired on the same test reviews."""
    from truncation import truncation_table

    lines = truncation_table(str(RESULTS / "truncation"))
    return "\n".join(lines) if len(lines) > 2 else MISSING


def throughput() -> str:
    """The throughput benchmark's records: both recipes, the ratio, the bound, the fraction."""
    records = sorted(_benchmarks("throughput_*.json"), key=lambda r: (r["method"], r["max_length"], r.get("seed", 0)))
    if not records:
        return MISSING
    lines = ["| model, method | max length | seed | steps × batch | usual (samples/s) | ours (samples/s) | ratio "
             "| bound | fraction | test accuracy usual / ours | ours − usual (points, 95% CI) | eval speed-up |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r['model']}, {r['method']} | {r['max_length']} | {r.get('seed', 0)} | {r['steps']} × {r['batch_size']} "
            f"| {r['usual_train_samples_per_s']:.2f} | {r['ours_train_samples_per_s']:.2f} | {r['ratio']:.3f} "
            f"| {r['bound']:.3f} | **{r['fraction']:.3f}** | {r['usual_accuracy']:.3f} / {r['ours_accuracy']:.3f} "
            f"| {100 * r['accuracy_difference']:+.1f} [{100 * r['accuracy_difference_low']:+.1f}, "
            f"{100 * r['accuracy_difference_high']:+.1f}] "
            f"| {r['ours_eval_samples_per_s'] / r['usual_eval_samples_per_s']:.2f}× |")
    return "\n".join(lines + ["", f"Device: {records[0]['env']['device']}."])


def study_time() -> str:
    """End-to-end time of a multi-epoch run both ways."""
    records = _benchmarks("study_time_*.json")
    if not records:
        return MISSING
    lines = ["| model, method | train / test | epochs | max length | usual: time, accuracy [95% CI] "
             "| ours: time, accuracy [95% CI] | ours − usual (points, 95% CI) | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        cells = [f"{r[f'{n}_seconds']:.0f} s, {r[f'{n}_accuracy']:.3f} [{r[f'{n}_accuracy_low']:.3f}, "
                 f"{r[f'{n}_accuracy_high']:.3f}]" for n in ("usual", "ours")]
        lines.append(f"| {r['model']}, {r['method']} | {r['train_size']} / {r['eval_size']} | {r['epochs']:g} "
                     f"| {r['max_length']} | {cells[0]} | {cells[1]} | {100 * r['accuracy_difference']:+.1f} "
                     f"[{100 * r['accuracy_difference_low']:+.1f}, {100 * r['accuracy_difference_high']:+.1f}] "
                     f"| {r['speedup']:.2f}× |")
    return "\n".join(lines)


def inference() -> str:
    """Eval throughput per method, adapters and merged."""
    records = _benchmarks("inference_*.json")
    if not records:
        return MISSING
    lines = ["| max length | method | form | eval samples/s | test accuracy | merged = adapter predictions |",
             "|---|---|---|---|---|---|"]
    for r in records:
        for row in r["rows"]:
            if row["form"] == "skipped":
                lines.append(f"| {r['max_length']} | {row['method']} | skipped: {row['reason']} | | | |")
                continue
            same = "" if "identical_predictions" not in row else (
                f"{'yes' if row['identical_predictions'] else 'NO'} (max logit difference "
                f"{row['max_logit_difference']:.1e})")
            lines.append(f"| {r['max_length']} | {row['method']} | {row['form']} | {row['eval_samples_per_s']:.1f} "
                         f"| {row['accuracy']:.3f} | {same} |")
    return "\n".join(lines)


def scaling() -> str:
    """Training samples/s per method at each measured (train size, max length): run rows and benchmark records."""
    frames = [load_results(RESULTS).assign(source="results/runs"),
              load_results(RESULTS / "scaling").assign(source="results/scaling")]
    frame = pd.concat([f for f in frames if not f.empty])
    lines = ["| method | max length | train reviews | runs | train samples/s | train time (s) | source |",
             "|---|---|---|---|---|---|---|"]
    if not frame.empty:
        frame = frame[(frame["status"] == "ok") & (frame["model"] == "minilm")]
        grouped = frame.groupby(["method", "max_length", "train_size", "source"], sort=True)
        rows = grouped.agg(samples_per_s=("train_samples_per_s", "mean"), seconds=("train_time_s", "mean"),
                           runs=("key", "count")).reset_index()
        for _, r in rows.iterrows():
            lines.append(f"| {r['method']} | {r['max_length']} | {r['train_size']} | {r['runs']} "
                         f"| {r['samples_per_s']:.2f} | {r['seconds']:.0f} | `{r['source']}` |")
    for r in sorted(_benchmarks("throughput_*.json"), key=lambda r: (r["max_length"], r.get("seed", 0))):
        lines.append(f"| {r['method']} | {r['max_length']} | {r['train_reviews']} | 1 "
                     f"| {r['ours_train_samples_per_s']:.2f} | {r['ours_train_seconds']:.0f} "
                     f"| `results/benchmarks` (ours) |")
    return "\n".join(lines) if len(lines) > 2 else MISSING


BLOCKS = {"study": study, "truncation": truncation, "throughput": throughput, "study_time": study_time,
          "inference": inference, "scaling": scaling}


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
