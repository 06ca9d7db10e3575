"""Where a training step's time goes, in our recipe, and what dropout's random masks cost.

In one process, for each method at one maximum length:
1. the dense matmul peak in fp32 and bf16 (as mfu.py measures it: a dtype this machine does not run natively is
   "not native (N GFLOP/s)", and no MFU is computed against it);
2. training in the usual recipe and in ours (as mfu.py), each also with every dropout set to p=0 (the study
   trains with the model's dropout; `scripts/choose_on_validation.py dropout` compares p=0's accuracy on
   validation reviews);
3. a torch.profiler trace of our recipe's steps: self CPU time per operator and per category
   (matmuls, dropout masks, casts, optimizer, the rest);
4. a JSON record, results/benchmarks/profile_<model>_L<length>.json.

    python benchmarks/profile_step.py --data-dir ../shared/data/imdb --methods full lora --max-length 256

The last line reads `dropout_share=<share of our step in aten::bernoulli_> matmul_share=<...>
mfu_without_dropout=<our recipe's, dropout off, against the peak of the dtype it trains in> peak_dtype=<that dtype>`
for full fine-tuning (else the first method).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import torch
from mfu import add_speed_arguments, measure_peaks, measure_run, mfu_text, package_methods
from recipes import (RECIPES, benchmark_parser, prepare, recipe_data, record_name, save_benchmark, speed_settings,
                     train_recipe)
from transformers import TrainerCallback

from peft_imdb.models import without_dropout

# Operators (self CPU time) by what they do; anything else is "other" (elementwise, norms, softmax...).
CATEGORIES = {
    "matmul": ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::_scaled_dot_product_flash_attention_cpu",
               "aten::_scaled_dot_product_flash_attention_cpu_backward"),
    "dropout masks": ("aten::bernoulli_",),
    "casts and copies": ("aten::copy_", "aten::_to_copy"),
    "optimizer": ("aten::_fused_adamw_", "aten::_foreach_mul_", "aten::_foreach_add_", "aten::_foreach_addcdiv_",
                  "aten::_foreach_addcmul_", "aten::_foreach_sqrt", "aten::_foreach_div_", "aten::_foreach_lerp_"),
}


class StepProfiler(TrainerCallback):
    """A torch.profiler trace of the Trainer's steps after `skip` untraced ones."""

    def __init__(self, skip: int, steps: int):
        schedule = torch.profiler.schedule(wait=skip, warmup=1, active=steps, repeat=1)
        self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], schedule=schedule)

    def on_train_begin(self, args, state, control, **kwargs):
        self.profiler.start()

    def on_step_end(self, args, state, control, **kwargs):
        self.profiler.step()

    def on_train_end(self, args, state, control, **kwargs):
        self.profiler.stop()


def operator_shares(profiler: torch.profiler.profile, top: int = 12) -> dict:
    """Self CPU time by category and for the top operators, as shares of the traced total."""
    events = [(e.key, e.self_cpu_time_total) for e in profiler.key_averages()]
    total = sum(t for _, t in events) or 1.0
    category = {op: name for name, ops in CATEGORIES.items() for op in ops}
    shares: dict[str, float] = {name: 0.0 for name in [*CATEGORIES, "other"]}
    for op, t in events:
        shares[category.get(op, "other")] += t / total
    ranked = sorted(events, key=lambda e: e[1], reverse=True)[:top]
    return {"categories": shares, "top_operators": {op: t / total for op, t in ranked},
            "traced_cpu_seconds": total / 1e6}


def _fraction(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def main(argv: list[str] | None = None) -> int:
    """Time both recipes with and without dropout, trace ours, print and store the shares."""
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=package_methods(), default=["full", "lora"])
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per timed run (default 20)")
    parser.add_argument("--profile-steps", type=int, default=5, help="steps traced by the profiler (default 5)")
    add_speed_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.methods, args.max_length, args.steps, args.profile_steps, args.peak_seconds = ["full"], 32, 2, 2, 0.05
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    steps = max(args.steps, args.profile_steps + 2)
    prepared = prepare(args.data_dir, args.model, method=args.methods[0], seed=args.seed, val_size=0,
                       train_size=steps * args.batch_size, eval_size=2 * args.batch_size,
                       max_length=args.max_length, batch_size=args.batch_size)
    if prepared is None:
        return 2
    config, imdb, tokenizer = prepared
    from peft_imdb.flops import layer_gemm_shapes
    from peft_imdb.hardware import cpu_description
    from peft_imdb.models import load_config

    peaks = measure_peaks(layer_gemm_shapes(load_config(args.model)), [args.batch_size * args.max_length],
                          args.peak_seconds)
    data = {recipe: recipe_data(config, tokenizer, recipe, imdb) for recipe in RECIPES}
    lengths = list(data["ours"]["train"]["length"])
    rows, profiles = [], {}
    for method in args.methods:
        run_config = replace(config, method=method)
        for recipe in RECIPES:  # warm-up (untimed): one-time costs of each precision and method
            train_recipe(run_config, data[recipe], tokenizer, recipe, max_steps=2, **speed_settings(recipe))
        timed = {}
        for dropout in (True, False):
            for recipe in RECIPES:
                row = measure_run(run_config, data[recipe], tokenizer, recipe, args.steps, lengths, peaks,
                                  adjust_model=None if dropout else without_dropout)
                row["dropout"] = dropout
                timed[recipe, dropout] = row
                rows.append(row)
                print(f"{method:>5} L={args.max_length:<4} {recipe:>5} dropout={'on' if dropout else 'off':<3} "
                      f"{row['train_samples_per_s']:7.2f} samples/s {mfu_text(row)}", flush=True)
        for dropout in (True, False):
            timed["ours", dropout]["speedup"] = (timed["ours", dropout]["train_samples_per_s"]
                                                 / timed["usual", dropout]["train_samples_per_s"])
        tracer = StepProfiler(skip=1, steps=args.profile_steps)
        train_recipe(run_config, data["ours"], tokenizer, "ours", max_steps=args.profile_steps + 2,
                     **speed_settings("ours"), callbacks=[tracer])
        profiles[method] = operator_shares(tracer.profiler)
        print(f"{method:>5} ours, self CPU time: " + ", ".join(
            f"{name} {share:.0%}" for name, share in profiles[method]["categories"].items()), flush=True)

    headline_method = "full" if "full" in args.methods else args.methods[0]
    ours_off = next(r for r in rows if r["method"] == headline_method and r["recipe"] == "ours" and not r["dropout"])
    headline = {"method": headline_method, "max_length": args.max_length,
                "dropout_share": profiles[headline_method]["categories"]["dropout masks"],
                "matmul_share": profiles[headline_method]["categories"]["matmul"],
                "mfu_without_dropout": ours_off["mfu"], "peak_dtype": ours_off["peak_dtype"]}
    path = save_benchmark(record_name("profile", args.model, f"_L{args.max_length}", args.quick), {
        "model": args.model, "methods": args.methods, "max_length": args.max_length, "steps": args.steps,
        "profile_steps": args.profile_steps, "batch_size": args.batch_size, "seed": args.seed, "quick": args.quick,
        "peak_gflops": {name: p["peak"] for name, p in peaks.items()},
        "native_dtypes": [name for name, p in peaks.items() if p["native"]], "rows": rows, "profiles": profiles,
        "headline": headline, "cpu": cpu_description()}, args.out)
    print(f"wrote {path}")
    print(f"dropout_share={headline['dropout_share']:.3f} matmul_share={headline['matmul_share']:.3f} "
          f"mfu_without_dropout={_fraction(headline['mfu_without_dropout'])} peak_dtype={headline['peak_dtype']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
