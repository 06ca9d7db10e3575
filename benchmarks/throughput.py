"""Training throughput of the usual recipe vs ours, against the padding bound, in one process.

Both recipes train the same model on the same reviews for the same number of optimizer steps (one
pass over steps x batch-size reviews), then score the same test reviews. Usage:

    python benchmarks/throughput.py --data-dir ../shared/data/imdb --max-length 256 --steps 60

The last line reads `ratio=<r> bound=<b> fraction=<r/b>`: r is our training samples/s over the usual
recipe's; b is the most that batching by length can save, from these reviews' token lengths.
"""

from __future__ import annotations

import os
import sys

from recipes import benchmark_parser, padding_bound, prepare, recipe_data, save_benchmark, train_recipe
from peft_imdb.methods import method_names  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run both recipes and print their throughput, the ratio, the bound and the fraction."""
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per recipe (default 60)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--method", default="lora", choices=method_names())
    parser.add_argument("--eval-size", type=int, default=400, help="test reviews scored after training")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    prepared = prepare(args.data_dir, args.model, method=args.method, seed=args.seed,
                       train_size=args.steps * args.batch_size, eval_size=args.eval_size, val_size=0,
                       max_length=args.max_length, batch_size=args.batch_size)
    if prepared is None:
        return 2
    config, imdb, tokenizer = prepared
    data = {recipe: recipe_data(config, tokenizer, recipe, imdb) for recipe in ("usual", "ours")}
    lengths = list(data["ours"]["train"]["length"])
    bound = padding_bound(lengths, args.batch_size, args.max_length)

    # Warm-up (untimed): the first steps of a process pay one-time costs (allocator, thread pools).
    train_recipe(config, data["usual"], tokenizer, "usual", max_steps=3)
    outcomes = {recipe: train_recipe(config, data[recipe], tokenizer, recipe, max_steps=args.steps)
                for recipe in ("usual", "ours")}
    usual, ours = outcomes["usual"], outcomes["ours"]
    ratio = ours.train_samples_per_s / usual.train_samples_per_s

    from peft_imdb.stats import paired_difference

    gap = paired_difference(ours.correct, usual.correct)
    print(f"\n{args.model} {args.method}, max length {args.max_length}, batch {args.batch_size}, {args.steps} steps "
          f"on {len(lengths)} train reviews, {usual.eval_samples} test reviews, device {config_device()}")
    for outcome in (usual, ours):
        print(f"{outcome.recipe:>5}: train {outcome.train_samples_per_s:.2f} samples/s ({outcome.train_seconds:.1f} s), "
              f"eval {outcome.eval_samples_per_s:.1f} samples/s, test accuracy {outcome.accuracy:.4f}")
    print(f"accuracy ours - usual: {100 * gap.difference.value:+.1f} points (95% CI "
          f"[{100 * gap.difference.low:+.1f}, {100 * gap.difference.high:+.1f}], McNemar p = {gap.p_value:.3f})")
    print(f"eval speed-up: {ours.eval_samples_per_s / usual.eval_samples_per_s:.2f}x")
    name = f"throughput_{args.method}_L{args.max_length}" + (f"_seed{args.seed}" if args.seed else "")
    path = save_benchmark(name, {
        "model": args.model, "method": args.method, "max_length": args.max_length, "batch_size": args.batch_size,
        "seed": args.seed,
        "steps": args.steps, "train_reviews": len(lengths), "test_reviews": usual.eval_samples,
        **{f"{o.recipe}_{k}": v for o in (usual, ours) for k, v in (
            ("train_samples_per_s", o.train_samples_per_s), ("train_seconds", o.train_seconds),
            ("eval_samples_per_s", o.eval_samples_per_s), ("accuracy", o.accuracy))},
        "accuracy_difference": gap.difference.value, "accuracy_difference_low": gap.difference.low,
        "accuracy_difference_high": gap.difference.high, "p_value": gap.p_value,
        "ratio": ratio, "bound": bound, "fraction": ratio / bound}, args.out)
    print(f"wrote {path}")
    print(f"ratio={ratio:.3f} bound={bound:.3f} fraction={ratio / bound:.3f}")
    return 0


def config_device() -> str:
    """The device, in words."""
    from peft_imdb.hardware import device_name

    return device_name()


if __name__ == "__main__":
    sys.exit(main())
