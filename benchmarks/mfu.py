"""Model FLOPs utilisation (MFU) of each method, usual recipe vs ours, against this machine's matmul peak.

In one process:
1. the dense matmul peak in fp32 and bf16, at the model's own GEMM shapes (batch x length tokens
   times each linear layer of a transformer layer) and at a 2048 x 2048 square;
2. training of each method in the usual recipe (fp32, plain torch AdamW, random batches padded to the
   maximum length, the model's dropout) and in ours, the recipe a run trains (train.py's one builder: the
   precision of the profile this machine runs, fp32 on a CPU; fused AdamW; length-grouped batches; every
   dropout off), at each maximum length, on the same reviews for the same steps;
3. a JSON record per model and CPU kind, results/benchmarks/mfu_<model>_<cpu kind>.json, with the environment.

Model FLOPs are defined in `peft_imdb.flops` (real tokens only; frozen weights need no weight
gradient). MFU is against the measured peak of the dtype the recipe trains in; a dtype this machine does not
run natively (bf16 on a CPU without avx512_bf16/amx_bf16) is measured at one model shape, shown as
"not native (N GFLOP/s)", and nothing is divided by it. Usage:

    python benchmarks/mfu.py --data-dir ../shared/data/imdb --lengths 128 256 --steps 30

The last line reads `speedup=<ours/usual> mfu=<ours' fraction of its dtype's peak> peak_dtype=<that dtype>
peak_gflops=<its peak>`, for full fine-tuning (else the first method) at the longest length.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import torch
from recipes import (RECIPES, benchmark_parser, cpu_tag, ours_without_dropout, padding_bound, prepare, recipe_data,
                     record_name, save_benchmark, speed_settings, train_recipe)

PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
SQUARE = 2048
NOT_NATIVE_SECONDS = 0.01  # a dtype run emulated: one timing of one shape (seconds each on an AVX2-only CPU)


def package_methods() -> tuple[str, ...]:
    """The registry's core methods."""
    from peft_imdb.methods import method_names

    return tuple(method_names(core_only=True))


def measure_peaks(shapes: list[tuple[int, int]], tokens: list[int], min_seconds: float) -> dict:
    """GFLOP/s per dtype and GEMM shape ('tokens x in x out', and the square), the best as 'peak', and whether this
    machine runs the dtype natively. A dtype it does not (bf16 on an AVX2-only CPU: ~100x slower than fp32) is
    timed once at the first model shape only, so that it costs seconds, not minutes."""
    from peft_imdb.flops import matmul_flops_per_second
    from peft_imdb.hardware import native_precisions

    native = native_precisions()
    gemms = [(t, i, o) for t in tokens for i, o in shapes] + [(SQUARE, SQUARE, SQUARE)]
    peaks = {}
    for name, dtype in PEAK_DTYPES.items():
        timed, seconds = (gemms, min_seconds) if name in native else (gemms[:1], NOT_NATIVE_SECONDS)
        by_shape = {f"{m}x{k}x{n}": matmul_flops_per_second(m, k, n, dtype, seconds) / 1e9 for m, k, n in timed}
        peaks[name] = {"peak": max(by_shape.values()), "shapes": by_shape, "native": name in native}
        print(f"matmul peak {name}: {peak_text(peaks[name])} "
              + " ".join(f"{s}={g:.1f}" for s, g in by_shape.items()), flush=True)
    return peaks


def peak_text(peak: dict) -> str:
    """A measured peak as printed: `187.0 GFLOP/s`, or `not native (1.8 GFLOP/s)` for a dtype run emulated."""
    figure = f"{peak['peak']:.1f} GFLOP/s"
    return figure if peak.get("native", True) else f"not native ({figure})"


def mfu_fields(precision: str, flops_per_s: float, peaks: dict) -> dict:
    """The MFU fields of a row: the peak of the dtype the recipe trains in, and the fraction of it; None (nothing
    divided) where this machine does not run that dtype natively or no peak of it was measured."""
    from peft_imdb.flops import mfu

    peak = peaks.get(precision)
    usable = peak is not None and peak.get("native", True)
    return {"peak_dtype": precision, "mfu": mfu(flops_per_s, peak["peak"] * 1e9) if usable else None}


def mfu_text(row: dict) -> str:
    """A row's MFU as printed: `MFU 0.493 of fp32 peak`, or why there is none."""
    if row["mfu"] is None:
        return f"MFU - ({row['peak_dtype']} not native here)"
    return f"MFU {row['mfu']:.3f} of {row['peak_dtype']} peak"


def measure_run(config, data, tokenizer, recipe: str, steps: int, lengths: list[int], peaks: dict,
                adjust_model=None) -> dict:
    """Train one recipe for `steps` steps (adjust_model: a change to the built model); throughput, FLOP/s, MFU."""
    from peft_imdb.flops import count_matmul_weights, model_flops_per_second

    outcome = train_recipe(config, data, tokenizer, recipe, max_steps=steps, adjust_model=adjust_model,
                           **speed_settings(recipe))
    flops_per_s = model_flops_per_second(count_matmul_weights(outcome.trainer.model), lengths, outcome.train_seconds)
    return {"method": config.method, "max_length": config.max_length, "recipe": recipe,
            "precision": outcome.precision, "optim": outcome.optim, "steps": outcome.steps,
            "train_samples_per_s": outcome.train_samples_per_s, "train_seconds": outcome.train_seconds,
            "model_gflops_per_s": flops_per_s / 1e9, **mfu_fields(outcome.precision, flops_per_s, peaks)}


def headline_mfu(row: dict, peaks: dict) -> str:
    """The last line's MFU part: `mfu=<fraction> peak_dtype=<dtype> peak_gflops=<its peak>`; `mfu=none` where the
    dtype is not native here."""
    mfu = "none" if row["mfu"] is None else f"{row['mfu']:.4f}"
    peak = peaks.get(row["peak_dtype"])
    gflops = "none" if peak is None else f"{peak['peak']:.1f}"
    return f"mfu={mfu} peak_dtype={row['peak_dtype']} peak_gflops={gflops}"


def add_speed_arguments(parser) -> None:
    """Arguments of the benchmarks that time steps against the measured peak (mfu.py, profile_step.py)."""
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--peak-seconds", type=float, default=1.0, help="timing per GEMM shape (default 1)")
    parser.add_argument("--quick", action="store_true", help="smoke test: full only, length 32, 2 steps, short peaks")
    parser.add_argument("--seed", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    """Measure the matmul peaks, train every method in both recipes, print and store the MFU table."""
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=package_methods(), default=list(package_methods()))
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 256], help="max lengths (default 128 256)")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per recipe (default 30)")
    add_speed_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.methods, args.lengths, args.steps, args.peak_seconds = ["full"], [32], 2, 0.05
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    prepared = prepare(args.data_dir, args.model, method=args.methods[0], seed=args.seed, val_size=0,
                       train_size=args.steps * args.batch_size, eval_size=2 * args.batch_size,
                       max_length=max(args.lengths), batch_size=args.batch_size)
    if prepared is None:
        return 2
    config, imdb, tokenizer = prepared
    from peft_imdb.flops import layer_gemm_shapes
    from peft_imdb.config import detect_profile
    from peft_imdb.hardware import choose_precision, cpu_description
    from peft_imdb.models import load_config

    ours, ours_optim = choose_precision(detect_profile().precision), speed_settings("ours")["optim"]
    print(f"ours: {ours.name} ({ours.reason}), optimizer {ours_optim}", flush=True)
    peaks = measure_peaks(layer_gemm_shapes(load_config(args.model)), [args.batch_size * n for n in args.lengths],
                          args.peak_seconds)

    rows, bounds = [], {}
    for max_length in args.lengths:
        base = replace(config, max_length=max_length)
        data = {recipe: recipe_data(base, tokenizer, recipe, imdb) for recipe in RECIPES}
        lengths = list(data["ours"]["train"]["length"])
        bounds[max_length] = padding_bound(lengths, args.batch_size, max_length)
        for method in args.methods:
            run_config = replace(base, method=method)
            for recipe in RECIPES:  # warm-up (untimed): one-time costs of each precision and method
                train_recipe(run_config, data[recipe], tokenizer, recipe, max_steps=2, **speed_settings(recipe))
            pair = [measure_run(run_config, data[recipe], tokenizer, recipe, args.steps, lengths, peaks,
                                adjust_model=ours_without_dropout() if recipe == "ours" else None)
                    for recipe in RECIPES]  # usual: the model's dropout; ours: the package's default, as runs train
            pair[1]["speedup"] = pair[1]["train_samples_per_s"] / pair[0]["train_samples_per_s"]
            rows += pair
            for row in pair:
                print(f"{method:>5} L={max_length:<4} {row['recipe']:>5} {row['precision']} {row['optim']:<17} "
                      f"{row['train_samples_per_s']:7.2f} samples/s {row['model_gflops_per_s']:7.1f} GFLOP/s "
                      f"{mfu_text(row)}", flush=True)
            print(f"{method:>5} L={max_length:<4} speed-up ours/usual {pair[1]['speedup']:.2f}x", flush=True)

    headline = next(r for r in rows if r["recipe"] == "ours" and r["max_length"] == max(args.lengths)
                    and r["method"] == ("full" if "full" in args.methods else args.methods[0]))
    path = save_benchmark(record_name("mfu", args.model, f"_{cpu_tag()}", quick=args.quick), {
        "model": args.model, "methods": args.methods, "lengths": args.lengths, "steps": args.steps,
        "batch_size": args.batch_size, "seed": args.seed, "quick": args.quick,
        "ours_precision": ours.name, "ours_precision_reason": ours.reason, "ours_optim": ours_optim,
        "peak_gflops": {name: p["peak"] for name, p in peaks.items()}, "peaks_by_shape": peaks,
        "native_dtypes": [name for name, p in peaks.items() if p["native"]],
        "padding_bound": {str(k): v for k, v in bounds.items()}, "rows": rows,
        "headline": {"method": headline["method"], "max_length": headline["max_length"],
                     "speedup": headline["speedup"], "mfu": headline["mfu"], "peak_dtype": headline["peak_dtype"]},
        "cpu": cpu_description()}, args.out)
    print(f"wrote {path}")
    print(f"speedup={headline['speedup']:.3f} {headline_mfu(headline, peaks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
