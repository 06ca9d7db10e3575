"""Head-only vs head+tail truncation, from stored runs: a paired comparison on the same test reviews.

Make the runs (one per method, max length and truncation), then print the table:

    python -m peft_imdb matrix --profile cpu --train-size 1000 --eval-size 1000 --seeds 0 --methods full lora \
        --max-length 128 --truncation head --results-dir results/truncation      # and --truncation head_tail,
                                                                                # and --max-length 256
    python benchmarks/truncation.py --results-dir results/truncation
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from peft_imdb.report import correctness  # noqa: E402
from peft_imdb.results import load_results  # noqa: E402
from peft_imdb.stats import mean_interval, paired_difference  # noqa: E402


def truncation_table(results_dir: str) -> list[str]:
    """Markdown rows: per method and max length, head vs head+tail accuracy and their paired difference."""
    frame = load_results(results_dir)
    frame = frame[frame["status"] == "ok"]
    lines = ["| method | max length | train/test | head | head+tail | head+tail − head (points, 95% CI) | p |",
             "|---|---|---|---|---|---|---|"]
    for (method, length, train, test), rows in frame.groupby(["method", "max_length", "train_size", "eval_size"]):
        by = {t: rows[rows["truncation"] == t]["key"].tolist() for t in ("head", "head_tail")}
        if not by["head"] or not by["head_tail"]:
            continue
        head, tail = correctness(by["head"], results_dir), correctness(by["head_tail"], results_dir)
        if head is None or tail is None:
            continue
        gap = paired_difference(tail[0], head[0])
        cells = [f"{mean_interval(x[0].mean(axis=0)).value:.4f}" for x in (head, tail)]
        lines.append(f"| {method} | {length} | {train}/{test} | {cells[0]} | {cells[1]} "
                     f"| {100 * gap.difference.value:+.1f} [{100 * gap.difference.low:+.1f}, "
                     f"{100 * gap.difference.high:+.1f}] | {gap.p_value:.3g} |")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results/truncation")
    print("\n".join(truncation_table(parser.parse_args().results_dir)))
