"""End-to-end wall time of one multi-epoch run: the usual recipe vs ours, at equal test accuracy.

usual: every review padded to max length (head truncation), random batches, the whole test subset
evaluated after every epoch (the reference studies' recipe). ours: `peft_imdb`'s default run: dynamic
padding, length-grouped batches, head+tail truncation, a small validation split each epoch (which picks
the best epoch) and the test subset once at the end. Usage:

    python benchmarks/study_time.py --data-dir ../shared/data/imdb --epochs 3 --max-length 128
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

import numpy as np

from recipes import benchmark_parser, prepare, recipe_data, save_benchmark, train_recipe
from peft_imdb.methods import method_names  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run one config both ways; print wall times, accuracies with intervals, and the paired difference."""
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--method", default="lora", choices=method_names())
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--eval-size", type=int, default=1000)
    parser.add_argument("--val-size", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from peft_imdb.stats import mean_interval, paired_difference
    from peft_imdb.resolved import resolve
    from peft_imdb.train import train_and_evaluate

    prepared = prepare(args.data_dir, args.model, method=args.method, seed=args.seed, train_size=args.train_size,
                       eval_size=args.eval_size, val_size=args.val_size, epochs=args.epochs,
                       max_length=args.max_length)
    if prepared is None:
        return 2
    config, imdb, tokenizer = prepared

    usual_config = replace(config, truncation="head", group_by_length=False, val_size=0)
    started = time.perf_counter()
    usual = train_recipe(usual_config, recipe_data(usual_config, tokenizer, "usual", imdb), tokenizer, "usual",
                         eval_test_each_epoch=True)
    usual_seconds = time.perf_counter() - started - usual.eval_seconds  # the last epoch's eval already scored it

    started = time.perf_counter()
    row, predictions = train_and_evaluate(resolve(config), imdb)
    ours_seconds = time.perf_counter() - started
    order = np.argsort(predictions.review_id)
    ours_correct = (predictions.predicted == predictions.label)[order]

    print(f"\n{args.model} {args.method}, {args.train_size} train / {args.eval_size} test reviews, "
          f"{args.epochs:g} epochs, max length {args.max_length}")
    record = {"model": args.model, "method": args.method, "train_size": args.train_size,
              "eval_size": args.eval_size, "epochs": args.epochs, "max_length": args.max_length}
    for name, seconds, correct in (("usual", usual_seconds, usual.correct), ("ours", ours_seconds, ours_correct)):
        interval = mean_interval(correct)
        record.update({f"{name}_seconds": seconds, f"{name}_accuracy": interval.value,
                       f"{name}_accuracy_low": interval.low, f"{name}_accuracy_high": interval.high})
        print(f"{name:>5}: {seconds:.0f} s end to end, test accuracy {interval.value:.4f} "
              f"(95% CI [{interval.low:.4f}, {interval.high:.4f}])")
    gap = paired_difference(ours_correct, usual.correct)
    print(f"accuracy ours - usual: {100 * gap.difference.value:+.1f} points "
          f"(95% CI [{100 * gap.difference.low:+.1f}, {100 * gap.difference.high:+.1f}], McNemar p = {gap.p_value:.3f})")
    record.update({"accuracy_difference": gap.difference.value, "accuracy_difference_low": gap.difference.low,
                   "accuracy_difference_high": gap.difference.high, "p_value": gap.p_value,
                   "speedup": usual_seconds / ours_seconds})
    print(f"wrote {save_benchmark(f'study_time_{args.method}_L{args.max_length}', record, args.out)}")
    print(f"time_usual={usual_seconds:.0f} time_ours={ours_seconds:.0f} speedup={usual_seconds / ours_seconds:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
