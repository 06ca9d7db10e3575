"""Command line: `python -m peft_imdb run | matrix | experiment | ablation | sweep | report | merge | reproduce | estimate`."""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import time
from pathlib import Path

from . import estimate as estimate_command
from .config import PROFILES, Profile, RunConfig, detect_profile
from .errors import Stopped, UserError
from .methods import METHODS, method_adapters, method_names
from .experiments import get_experiment
from .results import STORE_ERROR_EXIT, StoreWriteError, check_writable, is_store_error, results_dir
from .stores import figures_folder, results_folder, store_for
from .stopping import on_signals


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
    parser.add_argument("--results-dir", help="where run records go (default: PEFT_IMDB_RESULTS, else results/ for "
                        "the study's commands and results-scratch/ for `run` and the smoke profile)")
    parser.add_argument("--train-size", type=_size, help="training reviews, balanced, or 'full'")
    parser.add_argument("--eval-size", type=_size, help="test reviews, balanced, or 'full'")
    parser.add_argument("--val-size", type=int, help="validation reviews drawn from train, outside the training subset")
    parser.add_argument("--data-seed", type=int, help="seed of the review subsets (same for every run)")
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--max-length", type=int, help="tokens kept per review")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="learning rate (default: the method's, per profile)")
    parser.add_argument("--adapter", nargs="+", default=[], metavar="KEY=VALUE",
                        help="the method's adapter settings in peft's own names, checked against its peft config "
                        "class, e.g. r=16 lora_alpha=32 target_modules=query,key,value (default: the registry's)")
    parser.add_argument("--lora-r", type=int, help="shortcut for --adapter r=N")
    parser.add_argument("--lora-alpha", type=int, help="shortcut for --adapter lora_alpha=N")
    parser.add_argument("--lora-dropout", type=float, help="shortcut for --adapter lora_dropout=X")
    parser.add_argument("--target-modules", nargs="+",
                        help="shortcut for --adapter target_modules=a,b (default: the architecture's preset)")
    parser.add_argument("--truncation", choices=["head", "head_tail"],
                        help="keep the first max-length tokens (head), or the first quarter and the last three "
                        "quarters of a long review (head_tail)")
    parser.add_argument("--no-group-by-length", dest="group_by_length", action="store_false", default=None,
                        help="random batches instead of batches of similar length (the usual recipe)")
    parser.add_argument("--dropout", action="store_true", default=None,
                        help="the model's and the method's own dropout (default: every dropout at p=0, chosen on "
                        "validation reviews and faster on CPU)")
    parser.add_argument("--gradient-accumulation-steps", type=int)
    parser.add_argument("--gradient-checkpointing", action="store_true", default=None,
                        help="recompute activations in the backward pass: less memory, ~30%% slower")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default=None,
                        help="training and evaluation precision (default auto: bf16 on a GPU of compute capability "
                        ">= 8.0 or a CPU with native bf16, fp16 on older GPUs, else fp32); stored resolved")
    parser.add_argument("--qlora-compute-dtype", help="fp32, fp16 or bf16 (default: from the hardware)")
    parser.add_argument("--optim", help="Trainer optimizer, e.g. paged_adamw_8bit for QLoRA on CUDA "
                        "(default adamw_torch)")
    parser.add_argument("--resume", action="store_true", default=None,
                        help="save a checkpoint each epoch (results/checkpoints/<run key>/) and go on from the "
                        "newest one left by an interrupted run; deleted when the run finishes")
    parser.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="allow a hub model's own code to run (off by default)")
    _report_to(parser)


def _report_to(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report-to", choices=["none", "tensorboard"], default="none",
                        help="tensorboard: each run writes TensorBoard event files (loss, learning rate, validation "
                        "metrics) to <results>/tensorboard/<run key>/ (needs `pip install tensorboard`)")


def _experiment_flags(parser: argparse.ArgumentParser, seeds_help: str) -> None:
    parser.add_argument("--model")
    parser.add_argument("--methods", nargs="+", default=None, help="only these methods' runs (default: all it has)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help=seeds_help)
    parser.add_argument("--force", action="store_true", help="re-run finished runs too")
    parser.add_argument("--in-process", action="store_true", help="run every run in this process")
    _executor(parser)
    parser.add_argument("--figures-dir", help="default: PEFT_IMDB_FIGURES, else figures/ (results-scratch/figures/ "
                        "on the smoke profile)")
    _dry_run(parser)


def _executor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local: the runs one after another on this machine (default); ray: each run a task on a "
                        "Ray cluster, its record stored here (pip install -e \".[ray]\")")
    parser.add_argument("--ray-address", default=None,
                        help="with --executor ray: auto joins a cluster started with `ray start --head` (or "
                        "host:port); default: a cluster on this machine for the command")
    parser.add_argument("--ray-cpus-per-run", type=int, default=None,
                        help="with --executor ray: CPUs each run asks of the cluster where it has no GPU (default 1; "
                        "on GPUs each run asks for one GPU)")


def _dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (runs to train and reused, each one's precision and why, the estimated "
                        "wall time on this machine) and exit without training or writing anything")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="python -m peft_imdb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="train and evaluate one method")
    run.add_argument("--model", help="alias (minilm, distilbert, roberta, deberta, gpt-neo), hub id or folder")
    run.add_argument("--method", required=True, help=f"one of {', '.join(METHODS)}")
    run.add_argument("--seed", type=int, default=0)
    _common(run)

    matrix = commands.add_parser("matrix", help="models x methods x seeds, skipping finished runs")
    matrix.add_argument("--model", "--models", dest="models", nargs="+")
    matrix.add_argument("--methods", nargs="+", default=None,
                        help=f"methods to run (default: the four core methods, {', '.join(method_names(True))})")
    matrix.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                        help="training seeds (default 0-4, the committed study's: intervals resample seeds and reviews)")
    matrix.add_argument("--force", action="store_true", help="re-run finished runs too")
    matrix.add_argument("--shard", metavar="K/N",
                        help="run only share K of N (1 <= K <= N): the runs whose position in the list sorted "
                        "by run key is K-1 modulo N; fold the N results folders with `merge`")
    matrix.add_argument("--in-process", action="store_true",
                        help="run every run in this process (default: a fresh process per run, so memory "
                        "figures start clean and a crash costs one row)")
    _executor(matrix)
    _dry_run(matrix)
    _common(matrix)

    experiment = commands.add_parser("experiment", help="one experiment of the study (its runs, then its summary); "
                                      "--list names them")
    experiment.add_argument("name", nargs="?", help="the experiment (see --list)")
    experiment.add_argument("--list", action="store_true", help="name every experiment with its runs and folder")
    _experiment_flags(experiment, seeds_help="default: the experiment's own")
    _common(experiment)

    # Aliases of `experiment`: the ablations by name, and the learning-rate sweep.
    ablation = commands.add_parser("ablation", help="an ablation (rank, targets, precision): `experiment NAME`")
    ablation.add_argument("name", help="rank, targets or precision")
    _experiment_flags(ablation, seeds_help="default: the experiment's own")
    _common(ablation)
    sweep = commands.add_parser("sweep", help="the learning-rate sweep on validation: `experiment lr-sweep`")
    _experiment_flags(sweep, seeds_help="default: the sweep's own (0 1)")
    _common(sweep)

    report = commands.add_parser("report", help="summary table and charts from the results store")
    report.add_argument("--results-dir", help="default: PEFT_IMDB_RESULTS, else results/ (results-scratch/ on the "
                        "smoke profile)")
    report.add_argument("--figures-dir", help="default: PEFT_IMDB_FIGURES, else figures/ (results-scratch/figures/ "
                        "on the smoke profile)")
    report.add_argument("--margin", type=float, default=0.01,
                        help="equivalence margin in accuracy (default 0.01 = one point), declared before the data")

    merge = commands.add_parser("merge", help="fold several results folders into one (per run key the newer row wins)")
    merge.add_argument("dirs", nargs="+", metavar="DIR", help="results folders (each holding runs/)")
    merge.add_argument("--results-dir", help="the folder to merge into (default: PEFT_IMDB_RESULTS, else results/)")

    reproduce = commands.add_parser("reproduce", help="re-train the stored runs from their configs into a scratch "
                                    "folder and compare them run by run with the records")
    chosen = reproduce.add_mutually_exclusive_group()
    chosen.add_argument("--sample", type=int, metavar="K",
                        help="only K of the runs this machine trains in their own precision natively, spread over "
                        "methods (seed 0 of each method first; default: all of them)")
    chosen.add_argument("--keys", nargs="+", metavar="KEY",
                        help="these committed runs (their keys; any folder of the results root); one in a precision "
                        "this machine does not run natively is re-trained in fp32 and judged by the interval rule")
    reproduce.add_argument("--scratch", metavar="DIR",
                           help="where the re-runs go (default: a new temporary folder); runs already there are "
                           "not trained again")
    reproduce.add_argument("--results-dir", help="the store to reproduce (default: PEFT_IMDB_RESULTS, else results/); "
                           "only read")
    reproduce.add_argument("--data-dir", help="folder with train.jsonl/test.jsonl (default: PEFT_IMDB_DATA, else the hub)")
    reproduce.add_argument("--in-process", action="store_true", help="run every run in this process")
    _dry_run(reproduce)
    _report_to(reproduce)

    estimate = commands.add_parser("estimate", help="trainable parameters and model-state memory of each method on a "
                                   "model, from its config alone (no weights, no training)")
    estimate_command.add_arguments(estimate)
    return parser


CONFIG_FLAGS = ("train_size", "eval_size", "val_size", "data_seed", "epochs", "max_length", "batch_size", "lr",
                "truncation", "group_by_length", "dropout", "gradient_accumulation_steps", "gradient_checkpointing",
                "qlora_compute_dtype", "optim", "trust_remote_code", "data_dir", "resume")
# Shortcut flags and the peft field each one sets.
ADAPTER_SHORTCUTS = {"lora_r": "r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout",
                     "target_modules": "target_modules"}


def _adapter_items(args) -> list[str]:
    """--adapter items plus the shortcut flags, in peft's names (an explicit --adapter item wins)."""
    items = [f"{field}={','.join(value) if isinstance(value, list) else value}"
             for flag, field in ADAPTER_SHORTCUTS.items() if (value := getattr(args, flag, None)) is not None]
    return items + list(getattr(args, "adapter", []) or [])


def _profile(args) -> Profile:
    """The profile the command names (--profile), else the detected one."""
    name = getattr(args, "profile", None)
    if name and name not in PROFILES:
        raise UserError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)}")
    return PROFILES[name] if name else detect_profile()


def _base(args, methods: list[str]):
    """base(method, seed, model=None) -> the method's config on the profile with the flags given on the command line."""
    profile = _profile(args)
    # Only flags given on the command line override the profile; 'full' means the whole split.
    overrides = {name: getattr(args, name) for name in CONFIG_FLAGS if getattr(args, name, None) is not None}
    overrides.update({k: None for k, v in overrides.items() if v == "full"})
    if getattr(args, "precision", None):
        overrides["precision"] = args.precision
    items = _adapter_items(args)
    adapters = method_adapters(methods, items)

    def base(method: str, seed: int, model: str | None = None) -> RunConfig:
        return RunConfig.from_profile(profile, method, model=model or getattr(args, "model", None) or profile.model,
                                      seed=seed, adapter=adapters.get(method, {}), **overrides)

    return base


def _configs(args, models: list[str], methods: list[str], seeds: list[int]) -> list[RunConfig]:
    base = _base(args, methods)
    return [base(method, seed, model) for model, method, seed in
            itertools.product(models or [_profile(args).model], methods, seeds)]


def _print_row(result) -> None:
    if result.status != "ok":
        print(f"{result.key}: {result.status}  {result.reason}")
        return
    scored = (f"accuracy={result.accuracy:.4f} f1={result.f1:.4f}" if result.accuracy is not None
              else f"val_accuracy={result.val_accuracy:.4f} (tuning: no test review scored)")
    flag = f"  DID NOT LEARN: {result.not_learned_reason}" if result.learned is False else ""
    print(f"{result.key}: ok  {scored} trainable={result.trainable_params:,} train={result.train_time_s:.0f}s "
          f"peak={result.peak_memory_mb:.0f}MB ({result.memory_kind}){flag}")


def _matrix(args, configs: list[RunConfig], reuse_from: list[str | os.PathLike] | None = None,
            results: str | os.PathLike | None = None, title: str = "The stored runs of these settings",
            root: str | os.PathLike | None = None) -> int:
    """Resolve, plan, print the plan and train the configs into `results` (default --results-dir); 1 when a run
    failed. `--dry-run`: the plan only, nothing trained, copied or written. `root`: the results root whose stored
    runs the estimate reads (default: `results`)."""
    from .data import load_imdb
    from .parallel.shards import parse_shard, shard_runs
    from .plan import plan_runs, resolve_all, train_planned
    from .train import world

    results = results if results is not None else args.results_dir
    dry_run = getattr(args, "dry_run", False)
    if getattr(args, "executor", "local") == "ray":  # before any plan: a missing Ray is one line
        from .parallel.ray_executor import require_ray

        require_ray()
    runs = resolve_all(configs)
    if getattr(args, "shard", None):
        k, n = parse_shard(args.shard)
        total, runs = len(runs), shard_runs(runs, k, n)
        print(f"shard {k}/{n}: {len(runs)} of {total} run(s)")
    plan = plan_runs(runs, results, force=args.force, reuse_from=reuse_from, dry_run=dry_run)
    rank = world()[0]
    if rank == 0:
        for line in _plan_preview(plan, results, root if root is not None else results, title):
            print(line)
    if dry_run:
        print("dry run: nothing trained")
        return 0
    if plan.copied:
        print(f"reused {len(plan.copied)} finished run(s) of the main study")
    if plan.stored:
        print(f"skipping {len(plan.stored)} finished run(s) (use --force to re-run)")
    if not plan.train:
        return 0
    imdb = load_imdb(plan.train[0].config.data_dir)  # fail fast on bad data; each run's process reads it again
    started = time.perf_counter()
    if getattr(args, "executor", "local") == "ray":
        from .parallel.ray_executor import train_on_ray

        rows = train_on_ray(plan.train, results, args.ray_address, args.ray_cpus_per_run, on_result=_print_row)
    else:
        rows = train_planned(plan.train, results, imdb, in_process=args.in_process,
                             on_result=_print_row if rank == 0 else None, force=args.force)
    if rank == 0:
        from .matrix_log import append, entry, overhead_line
        from .wall_time import this_machine

        matrix = entry(rows, time.perf_counter() - started, this_machine().text)
        print(overhead_line(matrix))
        if rows:  # the store keeps it: its summary says how much of the wall time went around training
            try:
                append(matrix, results)
            except OSError as exc:  # the runs are stored; only this line is lost
                print(f"warning: the matrix log could not be written ({exc.strerror or exc}); the runs are stored",
                      file=sys.stderr)
    return 1 if any(row.status == "failed" for row in rows) else 0


def _plan_preview(plan, results: str | os.PathLike | None, root: str | os.PathLike | None, title: str) -> list[str]:
    """The lines printed before training: a word on a precision this CPU lacks (first), then the plan and its
    estimated wall time, from the runs stored under the results root and the default results folder (the
    committed study's, when the command writes elsewhere)."""
    from .hardware import native_precisions
    from .preview import plan_lines, precision_notice
    from .results import read_results
    from .wall_time import estimator

    folder = results_dir(results)
    estimate = estimator([results_dir(root), results_dir()]).plan(plan.train)
    lines = precision_notice(title, folder, plan.train, len(plan.stored), read_results(folder, keep_aside=False),
                             estimate, native_precisions())
    groups = [("to train", plan.train), ("stored already", plan.stored), ("in the study (copied)", plan.copied)]
    return lines + plan_lines(groups, estimate, folder)


def _experiment_name(args) -> str | None:
    """The experiment a command runs: `experiment NAME`, `ablation NAME` (an ablation's only), `sweep` (lr-sweep)."""
    from .experiments import ablations

    if args.command == "sweep":
        return "lr-sweep"
    if args.command == "ablation" and args.name not in ablations():
        raise UserError(f"unknown ablation {args.name!r}; use one of {', '.join(ablations())}")
    return args.name


def _experiment(args, name: str) -> int:
    """Train an experiment's runs not stored yet into its folder, then write its summary (--dry-run: the plan)."""
    from .experiments import experiment_request, run_experiment

    profile = _profile(args)

    def train(configs, folder, reuse):
        return _matrix(args, configs, reuse_from=reuse, results=folder, title=f"The {name}", root=args.results_dir)

    if args.dry_run:  # nothing is written: no summary; an experiment's required ones are planned first
        names = [*get_experiment(name).requires, name]
        return max(train(*experiment_request(get_experiment(each), profile, _base(args, method_names()),
                                             args.results_dir, args.seeds, args.methods, args.force,
                                             provisional=True)) for each in names)
    code, written = run_experiment(
        name, profile, _base(args, method_names()), args.results_dir, args.figures_dir, args.seeds, args.methods,
        args.force, train=train)
    for path in written:
        print(f"wrote {path}")
    return code


def _list_experiments(args) -> int:
    """One line per experiment: its name, runs (for the profile and its seeds), folder and question."""
    from .experiments import EXPERIMENTS, experiment_configs
    from .plan import resolve_all

    profile, base = _profile(args), _base(args, method_names())
    for name, experiment in EXPERIMENTS.items():
        runs = resolve_all(experiment_configs(experiment, base, args.seeds, args.methods))
        folder = experiment.path(profile, args.results_dir)
        seeds = " ".join(map(str, args.seeds or experiment.seeds))
        print(f"{name:<13} {len(runs):>3} run(s), seeds {seeds:<10} {folder}  {experiment.question}")
    return 0


def _reproduce(args) -> int:
    """Re-train and compare; 1 when any run does not reproduce."""
    from .reproduce import comparison_table, reproduce

    comparisons, scratch = reproduce(args.results_dir, args.scratch, args.sample, args.data_dir, args.in_process,
                                     args.keys, args.dry_run)
    if args.dry_run:
        return 0
    print(comparison_table(comparisons))
    bad = sum(not c.ok for c in comparisons)
    print(f"{len(comparisons) - bad} of {len(comparisons)} run(s) reproduced; re-runs in {scratch}")
    return 1 if bad else 0


def _start_tensorboard(args) -> None:
    """--report-to tensorboard: check the package, then point every run (this process or a fresh one) at its folder."""
    from .results import results_dir
    from .train import TENSORBOARD_ENV, require_tensorboard

    require_tensorboard()
    root = args.scratch if args.command == "reproduce" and args.scratch else results_dir(args.results_dir)
    os.environ[TENSORBOARD_ENV] = str(Path(root).resolve() / "tensorboard")
    print(f"TensorBoard logs: {os.environ[TENSORBOARD_ENV]}/<run key>  (tensorboard --logdir "
          f"{os.environ[TENSORBOARD_ENV]})")


def _default_folders(args) -> None:
    """Fill a --results-dir / --figures-dir left out with the folders of the store this command writes (stores.py)."""
    store = store_for(args.command, _profile(args).store)
    if hasattr(args, "results_dir") and args.results_dir is None:
        args.results_dir = str(results_folder(store))
    if hasattr(args, "figures_dir") and args.figures_dir is None:
        args.figures_dir = str(figures_folder(store))


def stopped_line(stop: Stopped) -> str:
    """One line on a command stopped by a signal: what it stopped, what is kept, how to go on."""
    if not stop.run:
        return (f"stopped by {stop.signal_name}: finished runs and written files are whole; re-run the same command "
                "to go on")
    resume = f" ({stop.resume})" if stop.resume else ""
    return (f"stopped by {stop.signal_name} during run {stop.run}: nothing of it is stored, finished runs are; re-run "
            f"the same command to go on{resume}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input, 1 when a run failed, 3 when the store refused a write,
    130 / 143 when stopped by SIGINT / SIGTERM)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    if args.command == "estimate":  # writes nothing: no folder to check
        return estimate_command.run(args)
    with on_signals():
        return _command(args)


def _command(args) -> int:
    """Run a parsed command; errors the user can act on become one line on stderr and an exit code."""
    try:
        _default_folders(args)
        # A folder that cannot hold the store stops every writing command before any training; reproduce
        # only reads the store and writes to its scratch folder; a dry run writes nothing.
        writes = not getattr(args, "dry_run", False)
        if args.command == "reproduce":
            if args.scratch and writes:
                check_writable(args.scratch, "scratch folder", "--scratch")
        elif args.command in ("experiment", "ablation", "sweep"):
            if _experiment_name(args) and writes:  # not for --list or --dry-run
                check_writable(get_experiment(_experiment_name(args)).path(_profile(args), args.results_dir))
        elif writes:
            check_writable(results_dir(args.results_dir))
        if getattr(args, "report_to", "none") == "tensorboard" and writes:
            _start_tensorboard(args)
        if getattr(args, "figures_dir", None) and writes:
            check_writable(args.figures_dir, "figures folder", "--figures-dir")
        if args.command == "report":
            from .experiments import write_reports

            if not 0 < args.margin < 0.5:
                raise UserError(f"--margin is an accuracy difference between 0 and 0.5, got {args.margin}")
            for path in write_reports(_profile(args), args.results_dir, args.figures_dir, args.margin):
                print(f"wrote {path}")
            return 0
        if args.command == "merge":
            from .results import merge_results

            for line in merge_results(args.dirs, args.results_dir):
                print(line)
            return 0
        if args.command in ("experiment", "ablation", "sweep"):
            if getattr(args, "list", False):
                return _list_experiments(args)
            if not _experiment_name(args):
                raise UserError("name an experiment (python -m peft_imdb experiment --list names them)")
            return _experiment(args, _experiment_name(args))
        if args.command == "reproduce":
            return _reproduce(args)
        if args.command == "run":
            return _matrix(argparse.Namespace(**vars(args), force=True, in_process=True),
                           _configs(args, [args.model] if args.model else [], [args.method], [args.seed]))
        from .plan import with_control_arms

        return _matrix(args, with_control_arms(_configs(args, args.models, args.methods or method_names(True),
                                                        args.seeds)))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return STORE_ERROR_EXIT if isinstance(exc, StoreWriteError) else 2
    except OSError as exc:
        if not is_store_error(exc):
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: could not write{where} ({exc.strerror}); free some space or choose another --results-dir "
              "/ --figures-dir, then re-run (finished runs are stored)", file=sys.stderr)
        return STORE_ERROR_EXIT
    except KeyboardInterrupt as exc:
        stop = exc if isinstance(exc, Stopped) else Stopped(signal.SIGINT)
        print(f"\n{stopped_line(stop)}", file=sys.stderr)  # on a line of its own, after a progress bar cut short
        return stop.exit_code
