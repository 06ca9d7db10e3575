"""Command line: `python -m peft_imdb run | matrix | report | merge`."""

from __future__ import annotations

import argparse
import itertools
import os
import sys

from .config import METHODS, PROFILES, RunConfig, detect_profile
from .errors import UserError


def _size(text: str) -> int | str:
    if text.lower() == "full":
        return "full"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of reviews or 'full', got {text!r}") from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help=f"defaults to use: {', '.join(PROFILES)} (default: detected, "
                        "or PEFT_IMDB_PROFILE)")
    parser.add_argument("--data-dir", help="folder with train.jsonl/test.jsonl (default: PEFT_IMDB_DATA, else the hub)")
    parser.add_argument("--results-dir", help="where run records go (default: PEFT_IMDB_RESULTS, else results/)")
    parser.add_argument("--train-size", type=_size, help="training reviews, balanced, or 'full'")
    parser.add_argument("--eval-size", type=_size, help="test reviews, balanced, or 'full'")
    parser.add_argument("--val-size", type=int, help="validation reviews drawn from train, outside the training subset")
    parser.add_argument("--data-seed", type=int, help="seed of the review subsets (same for every run)")
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--max-length", type=int, help="tokens kept per review")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="learning rate (default: the method's, per profile)")
    parser.add_argument("--lora-r", type=int)
    parser.add_argument("--lora-alpha", type=int)
    parser.add_argument("--lora-dropout", type=float)
    parser.add_argument("--target-modules", nargs="+", help="layers to adapt (default: the architecture's preset)")
    parser.add_argument("--truncation", choices=["head", "head_tail"],
                        help="keep the first max-length tokens (head), or the first quarter and the last three "
                        "quarters of a long review (head_tail)")
    parser.add_argument("--no-group-by-length", dest="group_by_length", action="store_false", default=None,
                        help="random batches instead of batches of similar length (the usual recipe)")
    parser.add_argument("--gradient-accumulation-steps", type=int)
    parser.add_argument("--gradient-checkpointing", action="store_true", default=None,
                        help="recompute activations in the backward pass: less memory, ~30%% slower")
    parser.add_argument("--qlora-compute-dtype", help="fp32, fp16 or bf16 (default: from the hardware)")
    parser.add_argument("--optim", help="Trainer optimizer, e.g. paged_adamw_8bit for QLoRA on CUDA "
                        "(default adamw_torch)")
    parser.add_argument("--resume", action="store_true", default=None,
                        help="save a checkpoint each epoch (results/checkpoints/<run key>/) and go on from the "
                        "newest one left by an interrupted run; deleted when the run finishes")
    parser.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="allow a hub model's own code to run (off by default)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the three commands."""
    parser = argparse.ArgumentParser(prog="python -m peft_imdb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="train and evaluate one method")
    run.add_argument("--model", help="alias (minilm, distilbert, roberta, deberta, gpt-neo), hub id or folder")
    run.add_argument("--method", required=True, help=f"one of {', '.join(METHODS)}")
    run.add_argument("--seed", type=int, default=0)
    _common(run)

    matrix = commands.add_parser("matrix", help="models x methods x seeds, skipping finished runs")
    matrix.add_argument("--model", "--models", dest="models", nargs="+")
    matrix.add_argument("--methods", nargs="+", default=list(METHODS))
    matrix.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="training seeds (default 0 1 2: the summary reports mean ± std and intervals)")
    matrix.add_argument("--force", action="store_true", help="re-run finished runs too")
    matrix.add_argument("--shard", metavar="K/N",
                        help="run only share K of N (1 <= K <= N): the runs whose position in the list sorted "
                        "by run key is K-1 modulo N; fold the N results folders with `merge`")
    matrix.add_argument("--in-process", action="store_true",
                        help="run every run in this process (default: a fresh process per run, so memory "
                        "figures start clean and a crash costs one row)")
    _common(matrix)

    ablation = commands.add_parser("ablation", help="one ablation of the study into results/ablations/<name>/")
    ablation.add_argument("name", help="rank (LoRA rank), targets (attention vs attention + feed-forward) or lr "
                          "(learning rate x 1/3, 1, 3 per method)")
    ablation.add_argument("--model")
    ablation.add_argument("--methods", nargs="+", default=list(METHODS),
                          help="only these methods' runs (default all four)")
    ablation.add_argument("--seeds", nargs="+", type=int, default=[0])
    ablation.add_argument("--force", action="store_true", help="re-run finished runs too")
    ablation.add_argument("--in-process", action="store_true", help="run every run in this process")
    ablation.add_argument("--figures-dir", default="figures")
    _common(ablation)

    report = commands.add_parser("report", help="summary table and charts from the results store")
    report.add_argument("--results-dir")
    report.add_argument("--figures-dir", default="figures")

    merge = commands.add_parser("merge", help="fold several results folders into one (per run key the newer row wins)")
    merge.add_argument("dirs", nargs="+", metavar="DIR", help="results folders (each holding runs/)")
    merge.add_argument("--results-dir", help="the folder to merge into (default: PEFT_IMDB_RESULTS, else results/)")
    return parser


CONFIG_FLAGS = ("train_size", "eval_size", "val_size", "data_seed", "epochs", "max_length", "batch_size", "lr",
                "lora_r", "lora_alpha", "lora_dropout", "target_modules", "truncation", "group_by_length",
                "gradient_accumulation_steps",
                "gradient_checkpointing", "qlora_compute_dtype", "optim", "trust_remote_code", "data_dir",
                "resume")


def _configs(args, models: list[str], methods: list[str], seeds: list[int]) -> list[RunConfig]:
    if args.profile and args.profile not in PROFILES:
        raise UserError(f"unknown profile {args.profile!r}; use one of {', '.join(PROFILES)}")
    profile = PROFILES[args.profile] if args.profile else detect_profile()
    # Only flags given on the command line override the profile; 'full' means the whole split.
    overrides = {name: getattr(args, name) for name in CONFIG_FLAGS if getattr(args, name) is not None}
    overrides.update({k: None for k, v in overrides.items() if v == "full"})
    return [
        RunConfig.from_profile(profile, method, model=model, seed=seed, **overrides)
        for model, method, seed in itertools.product(models or [profile.model], methods, seeds)
    ]


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; UserError otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise UserError(f"--shard must be K/N with 1 <= K <= N (e.g. 1/3, 2/3, 3/3), got {text!r}")
    return k, n


def shard_configs(configs: list[RunConfig], k: int, n: int) -> list[RunConfig]:
    """Share K of N: the runs at positions i (in the list sorted by key) with i % N == K-1, in their order."""
    keys = sorted({c.key() for c in configs})
    mine = {key for i, key in enumerate(keys) if i % n == k - 1}
    return [c for c in configs if c.key() in mine]


def _print_row(result) -> None:
    if result.status == "ok":
        print(f"{result.key}: ok  accuracy={result.accuracy:.4f} f1={result.f1:.4f} "
              f"trainable={result.trainable_params:,} train={result.train_time_s:.0f}s "
              f"peak={result.peak_memory_mb:.0f}MB ({result.memory_kind})")
    else:
        print(f"{result.key}: {result.status}  {result.reason}")


def _matrix(args, configs: list[RunConfig]) -> int:
    from tqdm.auto import tqdm

    from .claims import Holder, acquire, as_store_error
    from .data import load_imdb
    from .results import has_ok_result, read_result
    from .train import run_and_record, run_isolated, world

    if getattr(args, "shard", None):
        k, n = parse_shard(args.shard)
        total, configs = len(configs), shard_configs(configs, k, n)
        print(f"shard {k}/{n}: {len(configs)} of {total} run(s)")
    todo = [c for c in configs if args.force or not has_ok_result(c.key(), args.results_dir)]
    done = len(configs) - len(todo)
    if done:
        print(f"skipping {done} finished run(s) (use --force to re-run)")
    if not todo:
        return 0
    # Fail fast on bad data here; each isolated run then reads it again in its own process.
    imdb = load_imdb(todo[0].data_dir)
    rank, world_size = world()
    failures = 0

    # --- reliability: workers sharing a results folder claim each run (claims.py) -------------------
    # Under torchrun the ranks train every run together, so no claims there.
    claiming = world_size == 1

    def snapshot(key: str):
        record = read_result(key, args.results_dir)
        return record.to_dict() if record is not None else None

    seen = {c.key(): snapshot(c.key()) for c in todo} if claiming else {}  # a change = another worker's row
    elsewhere: dict[str, tuple[RunConfig, Holder]] = {}  # runs skipped because another worker holds them

    def attempt(config: RunConfig, again: bool = False):
        """Train one run unless another worker holds its claim or finished it since this command began."""
        key = config.key()
        claim = acquire(key, args.results_dir) if claiming else None
        if isinstance(claim, Holder):
            elsewhere[key] = (config, claim)
            print(f"{key}: {claim.describe()}; " + ("not trained here, re-run when it is free" if again
                                                     else "skipped for now, checked again at the end"))
            return None
        try:
            now = snapshot(key) if claiming else None
            if now is not None and (now != seen[key] or (now["status"] == "ok" and not args.force)):
                print(f"{key}: finished by another worker ({now['status']}), not trained here")
                return None
            if args.in_process or world_size > 1:  # under torchrun the ranks must train together, in process
                result = run_and_record(config, args.results_dir, imdb)
            else:
                try:
                    result = run_isolated(config, args.results_dir)
                except UserError as exc:  # a StoreWriteError's text comes back through the pipe
                    raise as_store_error(exc) from None
            if rank == 0:
                print(f"trained {key}")
            return result
        finally:
            if claim is not None:
                claim.release()

    progress = tqdm(todo, desc="runs", unit="run", disable=len(todo) == 1)
    for config in progress:
        progress.set_postfix_str(f"{config.model} {config.method} seed {config.seed}")
        result = attempt(config)
        if result is None:
            continue
        failures += result.status == "failed"
        if rank == 0:
            _print_row(result)
    if elsewhere:  # the end: pick up runs whose worker has gone since (a finished one is left alone)
        waiting = list(elsewhere.values())
        elsewhere.clear()
        for config, _ in waiting:
            result = attempt(config, again=True)
            if result is not None:
                failures += result.status == "failed"
                _print_row(result)
        if elsewhere:
            print(f"{len(elsewhere)} run(s) still being trained by other workers: "
                  + ", ".join(f"{key} ({holder.owner})" for key, (_, holder) in elsewhere.items()))
    # --- end reliability ---
    return 1 if failures else 0


def _ablation(args) -> int:
    """Run one ablation into <results>/ablations/<name>, reusing the main study's identical runs."""
    from .ablations import ablation_configs, ablation_folder, reuse_study_runs
    from .report import write_ablation

    configs = []
    for seed in args.seeds:
        base = {c.method: c for c in _configs(args, [args.model] if args.model else [], list(METHODS), [seed])}
        configs += [c for c in ablation_configs(args.name, base) if c.method in args.methods]
    folder = ablation_folder(args.name, args.results_dir)
    if not args.force:
        reused = reuse_study_runs(configs, args.results_dir, folder)
        if reused:
            print(f"reused {len(reused)} finished run(s) of the main study")
    code = _matrix(argparse.Namespace(**{**vars(args), "results_dir": str(folder), "shard": None}), configs)
    for path in write_ablation(args.name, folder, args.figures_dir):
        print(f"wrote {path}")
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input, 1 when a run failed, 3 when the store refused a write)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        # --- reliability: a folder that cannot hold the store stops every writing command before training ---
        from .claims import check_writable
        from .results import results_dir

        check_writable(results_dir(args.results_dir) / ("ablations/" + args.name if args.command == "ablation" else ""))
        if getattr(args, "figures_dir", None):
            check_writable(args.figures_dir, "figures folder", "--figures-dir")
        # --- end reliability ---
        if args.command == "report":
            from .report import write_report

            for path in write_report(args.results_dir, args.figures_dir):
                print(f"wrote {path}")
            return 0
        if args.command == "merge":
            from .results import merge_results

            for line in merge_results(args.dirs, args.results_dir):
                print(line)
            return 0
        if args.command == "ablation":
            return _ablation(args)
        if args.command == "run":
            return _matrix(argparse.Namespace(**vars(args), force=True, in_process=True),
                           _configs(args, [args.model] if args.model else [], [args.method], [args.seed]))
        return _matrix(args, _configs(args, args.models, args.methods, args.seeds))
    # --- reliability: a refused write is one line and exit code 3 (claims.STORE_ERROR_EXIT) ---
    except UserError as exc:
        from .claims import STORE_ERROR_EXIT, StoreWriteError

        print(f"error: {exc}", file=sys.stderr)
        return STORE_ERROR_EXIT if isinstance(exc, StoreWriteError) else 2
    except OSError as exc:
        from .claims import STORE_ERROR_EXIT, is_store_error

        if not is_store_error(exc):
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: could not write{where} ({exc.strerror}); free some space or choose another --results-dir "
              "/ --figures-dir, then re-run (finished runs are stored)", file=sys.stderr)
        return STORE_ERROR_EXIT
    # --- end reliability ---
    except KeyboardInterrupt:
        print("interrupted: finished runs are stored; re-run the same command to go on", file=sys.stderr)
        return 130

