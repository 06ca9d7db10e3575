"""Device check: the four methods for a few steps each on a model and reviews that need no hub.

`python -m peft_imdb.gpucheck` (or `bash scripts/gpu_check.sh`) prints, per method, the precision
used, peak allocated/reserved memory, samples/s and base weight bits, checks that QLoRA's base
layers are `Linear4bit`, and checks the expected ordering of peak memory (full > lora >= qlora).
`--dry-run` builds the same models and trains one step each, on CPU too, and says what it would check.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from datasets import Dataset, DatasetDict

from .config import RunConfig
from .hardware import choose_precision, device_kind, device_name, nf4_support
from .methods import METHODS, method_names
from .models import resolve_model

_WORDS = {1: "great wonderful moving superb loved brilliant", 0: "awful boring dull terrible hated weak"}


def synthetic_reviews(n: int, words_per_review: int = 120) -> DatasetDict:
    """Balanced labelled pseudo-reviews of fixed length: enough to train and time, no download."""
    rows = {"text": [], "label": []}
    for i in range(n):
        label = i % 2
        vocab = _WORDS[label].split() + "the film plot actor scene it was a and of".split()
        rows["text"].append(" ".join(vocab[(i * 7 + j * 3) % len(vocab)] for j in range(words_per_review)))
        rows["label"].append(label)
    data = Dataset.from_dict(rows)
    return DatasetDict(train=data, test=data)


def count_4bit_layers(model_name: str) -> int:
    """Number of bitsandbytes Linear4bit layers in the QLoRA model of `model_name`."""
    import bitsandbytes as bnb

    from .models import build_model, load_tokenizer

    from .resolved import resolve

    model = build_model(resolve(RunConfig(model=model_name, method="qlora", precision="auto")),
                        load_tokenizer(model_name)).model
    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def main(argv: list[str] | None = None) -> int:
    """Run the check; exit 1 when an expectation fails on a real (non-dry) run."""
    parser = argparse.ArgumentParser(prog="python -m peft_imdb.gpucheck", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="one step per method, on any device")
    parser.add_argument("--model", default="minilm",
                        help="default: the offline all-MiniLM-L6-v2; 'tiny' builds a small random BERT")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="peft-imdb-check-") as workdir:
        model = args.model
        if model == "tiny":
            from .tiny import build_tiny_model

            model = str(build_tiny_model("bert", f"{workdir}/tiny-bert"))
        return _check(args, model)


def _check(args, model: str) -> int:
    from .resolved import resolve
    from .train import train_and_evaluate

    steps = 1 if args.dry_run else args.steps
    precision = choose_precision()
    print(f"device: {device_name()} ({device_kind()}); precision: {precision.name} ({precision.reason})")
    print(f"model: {args.model} -> {resolve_model(model)}; {steps} step(s) of batch {args.batch_size}, "
          f"length {args.max_length}")
    n = steps * args.batch_size
    data = synthetic_reviews(max(n, 2 * args.batch_size), words_per_review=args.max_length)
    peaks: dict[str, float] = {}
    for method, entry in ((m, METHODS[m]) for m in method_names(core_only=True)):
        if entry.quantized_base and not nf4_support()[0]:
            print(f"{method:6s} skipped: {nf4_support()[1]}")
            continue
        config = RunConfig(model=model, method=method, train_size=n, eval_size=2 * args.batch_size,
                           val_size=0, epochs=1, max_length=args.max_length, batch_size=args.batch_size,
                           eval_batch_size=args.batch_size, precision=precision.name,
                           test_reviews="all")  # synthetic reviews: train and test are one set
        row = train_and_evaluate(resolve(config), data)[0]
        peaks[method] = row.peak_memory_mb
        reserved = f"{row.peak_reserved_mb:.0f}" if row.peak_reserved_mb is not None else "n/a"
        print(f"{method:6s} precision={row.precision_mode} peak_mb={row.peak_memory_mb:.0f} "
              f"peak_reserved_mb={reserved} ({row.memory_kind}) train_samples_per_s="
              f"{row.train_samples_per_s:.1f} base_weight_bits={row.base_weight_bits} "
              f"trainable={row.trainable_params:,}")
    failures = []
    if nf4_support()[0]:
        layers = count_4bit_layers(model)
        print(f"qlora base layers in Linear4bit: {layers}")
        if layers == 0:
            failures.append("QLoRA model has no Linear4bit layers")
    ordering = "full > lora >= qlora (peak allocated memory, same batch and length)"
    if args.dry_run or device_kind() != "cuda":
        print(f"dry run: on CUDA this would check {ordering}")
    elif {"full", "lora", "qlora"} <= peaks.keys():
        ok = peaks["full"] > peaks["lora"] >= peaks["qlora"]
        print(f"{'PASS' if ok else 'FAIL'}: {ordering}: "
              + ", ".join(f"{m} {peaks[m]:.0f} MB" for m in ("full", "lora", "qlora")))
        if not ok:
            failures.append("memory ordering")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures and not args.dry_run else 0


if __name__ == "__main__":
    sys.exit(main())
