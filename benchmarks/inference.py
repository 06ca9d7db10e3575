"""Inference throughput per method: adapters as trained, and LoRA/IA3 merged into the base weights.

Each method trains briefly (the package's recipe), then the same test reviews are scored by the
adapter model and by its merged copy. In fp32 the merged predictions must equal the adapter's; under
bf16 both are rounded differently, so the record states the precision and the largest logit difference. Usage:

    python benchmarks/inference.py --data-dir ../shared/data/imdb --max-length 128 [--precision fp32]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from recipes import RunConfig, benchmark_parser, prepare, recipe_data, save_benchmark, train_recipe
from peft_imdb.methods import method_names  # noqa: E402


def _timed_predict(trainer, dataset) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    logits = trainer.predict(dataset).predictions
    return logits, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Train each method briefly, then time scoring the test reviews as adapter and merged."""
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=method_names(core_only=True))
    parser.add_argument("--steps", type=int, default=30, help="training steps before measuring (default 30)")
    parser.add_argument("--eval-size", type=int, default=1000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="training and scoring precision (default auto: the hardware's)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import DataCollatorWithPadding

    from peft_imdb.errors import Unsupported, UserError
    from peft_imdb.models import merge_adapter
    from peft_imdb.train import in_order_trainer_class

    prepared = prepare(args.data_dir, args.model)
    if prepared is None:
        return 2
    _, imdb, tokenizer = prepared
    rows = []
    print("| method | form | eval samples/s | test accuracy | identical predictions |")
    print("|---|---|---|---|---|")
    for method in args.methods:
        config = RunConfig(model=args.model, method=method, train_size=args.steps * 8, eval_size=args.eval_size,
                           val_size=0, max_length=args.max_length, data_dir=args.data_dir)
        data = recipe_data(config, tokenizer, "ours", imdb)
        try:
            outcome = train_recipe(config, data, tokenizer, "ours", max_steps=args.steps, precision=args.precision)
        except (Unsupported, UserError) as exc:
            rows.append({"method": method, "form": "skipped", "reason": str(exc)})
            print(f"| {method} | – | skipped: {exc} | | |")
            continue
        trainer, labels = outcome.trainer, np.asarray(list(data["test"]["label"]))
        logits, seconds = _timed_predict(trainer, data["test"])  # a second pass: warm, like the merged one
        adapter_predictions = logits.argmax(-1)
        form = "full model" if method == "full" else "adapter"
        accuracy = float((adapter_predictions == labels).mean())
        rows.append({"method": method, "form": form, "precision": outcome.precision,
                     "eval_samples_per_s": len(labels) / seconds, "accuracy": accuracy})
        print(f"| {method} | {form} | {len(labels) / seconds:.1f} | {accuracy:.4f} | |")
        if method in ("lora", "ia3"):
            merged = merge_adapter(trainer.model)
            merged_trainer = in_order_trainer_class()(model=merged, args=trainer.args,
                                              data_collator=DataCollatorWithPadding(tokenizer))
            merged_logits, merged_seconds = _timed_predict(merged_trainer, data["test"])
            merged_predictions = merged_logits.argmax(-1)
            same = bool(np.array_equal(merged_predictions, adapter_predictions))
            accuracy = float((merged_predictions == labels).mean())
            difference = float(np.abs(merged_logits - logits).max())
            rows.append({"method": method, "form": "merged", "precision": outcome.precision,
                         "eval_samples_per_s": len(labels) / merged_seconds, "accuracy": accuracy,
                         "identical_predictions": same, "max_logit_difference": difference})
            print(f"| {method} | merged | {len(labels) / merged_seconds:.1f} | {accuracy:.4f} | "
                  f"{'yes' if same else 'NO'} (max logit difference {difference:.1e}) |")
    record = {"model": args.model, "steps": args.steps, "eval_size": args.eval_size, "max_length": args.max_length,
              "rows": rows}
    print(f"wrote {save_benchmark(f'inference_L{args.max_length}', record, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
