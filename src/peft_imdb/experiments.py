"""Experiments as data: one record per experiment, read by `python -m peft_imdb experiment NAME`, the report,
the README builder and the notebooks.

An experiment says which runs it plans for a profile and seeds (from each method's default config, `base`),
where they live (the folders the committed results use), which runs it may copy from the study, what each row
is compared with, and how it is summarised. Adding the next study is one `register(Experiment(...))` call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from .budget import (CHECK_PICKS, CHECK_RULE, at_checked_rates, budget_configs, check_configs, checked_rates,
                     on_one_machine_kind, write_budget_summary)
from .comparison import MARGIN, AblationTable, ablation_table
from .config import PROFILES, Profile, RunConfig
from .errors import UserError
from .methods import method_names
from .models import model_type
from .results import results_dir, warn_once
from .sweep import (CHOICES, DEFAULT_PICKS, FINAL_SEEDS, FIRST_ROUND_TABLE, ROUND_ONE, final_sweep_configs,
                    sweep_configs, widened, write_choice_summary, write_sweep_chart, write_sweep_summary)
from .targets import IA3_TARGETS, LORA_TARGETS_ATTN_FFN

# base(method, seed) -> the method's default config on the profile, with the command's overrides
Base = Callable[[str, int], RunConfig]


@dataclass(frozen=True)
class Experiment:
    """One experiment: its runs, their folder, its reference rule and its summary."""

    name: str
    question: str  # what it answers, for `experiment --list` and the summaries
    seeds: tuple[int, ...]  # its seeds when none are given
    runs: Callable[[Base, tuple[int, ...]], list[RunConfig]]  # (base, seeds) -> the configs it trains
    folder: Callable[[Profile, Path], Path]  # (profile, results root) -> where its runs live
    # (profile, results root, figures folder, every planned run finished) -> the files it wrote (summaries, figures)
    summarize: Callable[[Profile, Path, Path, bool], list[Path]]
    reuse_study: bool = False  # a run the study already holds (same key) is copied, not trained
    # Ablations: the summary column that holds what is varied, and each method's reference row among its rows.
    column: str | None = None
    reference: Callable[[pd.DataFrame], pd.Series] | None = None
    # (its folder, the configs planned) -> more configs the stored runs call for (a grid widened at an end)
    extend: Callable[[Path, list[RunConfig]], list[RunConfig]] | None = None
    # (profile, results root, the configs planned, provisional) -> the configs as another experiment's stored runs
    # settle them (rates a check picked); `provisional`: as a plan shows them before those runs are complete
    settle: Callable[[Profile, Path, list[RunConfig], bool], list[RunConfig]] | None = None
    requires: tuple[str, ...] = ()  # experiments run before this one (by `experiment NAME` and run_experiment)

    def path(self, profile: Profile, root: str | os.PathLike | None = None) -> Path:
        """Where its runs live for a profile under a results root (default: PEFT_IMDB_RESULTS, else results/)."""
        return self.folder(profile, results_dir(root))


EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add an experiment (replacing one of the same name); return it."""
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> Experiment:
    """The registered experiment of this name; a clear error listing the valid names otherwise."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise UserError(f"unknown experiment {name!r}; use one of {', '.join(EXPERIMENTS)} "
                        "(`python -m peft_imdb experiment --list`)") from None


def ablations() -> dict[str, Experiment]:
    """The experiments that vary one setting against a reference row (they have a varied column)."""
    return {name: e for name, e in EXPERIMENTS.items() if e.column is not None}


def experiment_configs(experiment: Experiment, base: Base, seeds: tuple[int, ...] | None = None,
                       methods: list[str] | None = None) -> list[RunConfig]:
    """The configs an experiment trains for these seeds (its own when None), only `methods` when given."""
    configs = experiment.runs(base, tuple(seeds) if seeds else experiment.seeds)
    return [c for c in configs if methods is None or c.method in methods]


def profile_base(profile: Profile, **overrides) -> Base:
    """base(method, seed): each method's default config on a profile, with the same overrides for all."""
    return lambda method, seed: RunConfig.from_profile(profile, method, seed=seed, **overrides)


def train_quietly(configs: list[RunConfig], folder: Path, reuse_from: list[Path] | None, force: bool = False,
                  in_process: bool = True) -> int:
    """Plan and train configs into folder (copying finished runs from the reuse_from folders); 1 when a run failed."""
    from .plan import plan_runs, resolve_all, train_planned

    plan = plan_runs(resolve_all(configs), folder, force=force, reuse_from=reuse_from)
    rows = train_planned(plan.train, folder, in_process=in_process, force=force)
    return 1 if any(row.status == "failed" for row in rows) else 0


def experiment_request(experiment: Experiment, profile: Profile, base: Base | None = None,
                       root: str | os.PathLike | None = None, seeds: tuple[int, ...] | None = None,
                       methods: list[str] | None = None, force: bool = False,
                       study: str | os.PathLike | None = None,
                       provisional: bool = False) -> tuple[list[RunConfig], Path, list[Path] | None]:
    """What an experiment asks to train: (its configs, its folder, the folders it copies finished runs from or
    None). With `study` (the committed study's root, when `root` is another store), every run of this experiment
    the committed study holds, at any of its seeds, is asked for too and copied from there. `provisional`: runs
    that wait for another experiment's runs are shown as they would train today (a plan, not a training)."""
    from .plan import resolve_all
    from .results import has_ok_result

    base = base or profile_base(profile)
    configs = experiment_configs(experiment, base, seeds, methods)
    if experiment.settle is not None:
        configs = experiment.settle(profile, results_dir(root), configs, provisional)
    configs += extension(experiment, experiment.path(profile, root), configs)
    reuse = _reuse_folders(experiment, profile, root, study) if not force else None
    if study is not None and not force:
        committed = experiment.path(profile, study)
        configs += [run.config for run in resolve_all(experiment_configs(experiment, base, None, methods))
                    if has_ok_result(run.key, committed)]
    return configs, experiment.path(profile, root), reuse


def run_experiment(name: str, profile: Profile, base: Base | None = None, root: str | os.PathLike | None = None,
                   figures_dir: str | os.PathLike = "figures", seeds: tuple[int, ...] | None = None,
                   methods: list[str] | None = None, force: bool = False,
                   train: Callable[[list[RunConfig], Path, list[Path] | None], int] | None = None,
                   study: str | os.PathLike | None = None) -> tuple[int, list[Path]]:
    """Train an experiment's runs not stored yet into its folder, then write its summary: (exit code, files).

    `train(configs, folder, reuse_from)` trains them (default: in this process, quietly); a run the study
    holds already is copied from it where the experiment reuses the study's runs, unless `force`. With
    `study` (the committed study's root, when `root` is another store), every run of this experiment the
    committed study holds, at any of the experiment's seeds, is copied from it too: the summary then shows
    the committed runs beside the ones trained here.
    """
    from .plan import resolve_all
    from .results import has_ok_result

    experiment = get_experiment(name)
    written: list[Path] = []
    for required in experiment.requires:  # e.g. the check whose picks this experiment's largest runs train at
        code, files = run_experiment(required, profile, base, root, figures_dir, seeds, methods, force, train, study)
        written += files
        if code:
            return code, written
    configs, folder, reuse = experiment_request(experiment, profile, base, root, seeds, methods, force, study)
    train = train or (lambda c, f, r: train_quietly(c, f, r, force))
    code = train(configs, folder, reuse)
    more = extension(experiment, folder, configs)
    while more and not code:  # a grid widened where its pick fell at an end: trained until the pick is inside
        configs += more
        code = train(more, folder, reuse)
        more = extension(experiment, folder, configs)
    complete = all(has_ok_result(run.key, folder) for run in resolve_all(configs))
    if experiment.settle is not None:  # every planned run, the ones still waiting included
        complete &= len(configs) >= len(experiment_request(experiment, profile, base, root, seeds, methods, force,
                                                           study, provisional=True)[0])
    return code, written + experiment.summarize(profile, results_dir(root), Path(figures_dir), complete)


def extension(experiment: Experiment, folder: Path, configs: list[RunConfig]) -> list[RunConfig]:
    """The configs the experiment's stored runs call for beyond `configs` (none without an `extend` rule)."""
    if experiment.extend is None:
        return []
    return [c for c in experiment.extend(folder, configs) if c not in configs]


def experiment_folders(root: str | os.PathLike | None = None) -> list[Path]:
    """Every folder under a results root where an experiment keeps runs (for any profile), the root first; only
    those that exist."""
    root = results_dir(root)
    folders = [e.path(profile, root) for e in EXPERIMENTS.values() for profile in PROFILES.values()]
    return [Path(f) for f in dict.fromkeys(str(f) for f in [root, *folders]) if Path(f).is_dir()]


def _reuse_folders(experiment: Experiment, profile: Profile, root: str | os.PathLike | None,
                   study: str | os.PathLike | None) -> list[Path] | None:
    """Where finished runs are copied from: the committed study's folder of this experiment, then the study's runs."""
    folders = [experiment.path(profile, study)] if study is not None else []
    if experiment.reuse_study:
        folders += [results_dir(root)] + ([results_dir(study)] if study is not None else [])
    unique = [f for i, f in enumerate(folders) if f not in folders[:i] and f != experiment.path(profile, root)]
    return unique or None


# --- where runs live --------------------------------------------------------------------------------------

def _study_folder(profile: Profile, root: Path) -> Path:
    return root


def _ablation_folder(name: str) -> Callable[[Profile, Path], Path]:
    return lambda profile, root: root / "ablations" / name


def _sweep_folder(name: str) -> Callable[[Profile, Path], Path]:
    return lambda profile, root: root / "sweeps" / f"{name}_{profile.lr_table}_validation"


# --- the runs ---------------------------------------------------------------------------------------------

def _each(methods: list[str]) -> Callable[[Base, tuple[int, ...]], list[RunConfig]]:
    """Every method at its defaults, for every seed (seed-major: a stopped matrix leaves whole seeds)."""
    return lambda base, seeds: [base(method, seed) for seed in seeds for method in methods]


def _study(base: Base, seeds: tuple[int, ...]) -> list[RunConfig]:
    from .plan import with_control_arms

    return with_control_arms(_each(method_names(core_only=True))(base, seeds))


RANKS = (2, 8, 32)  # LoRA rank around the default 8 (alpha = 2r)


def _ranks(base: Base, seeds: tuple[int, ...]) -> list[RunConfig]:
    configs = []
    for seed in seeds:
        lora = base("lora", seed)
        configs += [replace(lora, adapter={**lora.adapter, "r": r, "lora_alpha": 2 * r}) for r in RANKS]
    return configs


def _placements(base: Base, seeds: tuple[int, ...]) -> list[RunConfig]:
    configs = []
    for seed in seeds:
        lora, ia3 = base("lora", seed), base("ia3", seed)
        architecture = model_type(lora.model, lora.trust_remote_code)
        if architecture not in LORA_TARGETS_ATTN_FFN or architecture not in IA3_TARGETS:
            raise UserError(f"no target presets for architecture {architecture!r}; the targets ablation needs one")
        preset, feedforward = IA3_TARGETS[architecture]
        configs += [
            lora,  # query + value
            replace(lora, adapter={**lora.adapter, "target_modules": list(LORA_TARGETS_ATTN_FFN[architecture])}),
            replace(ia3, adapter={**ia3.adapter, "target_modules": [t for t in preset if t not in feedforward]}),
            ia3,  # keys, values and the output projections
        ]
    return configs


def _precisions(base: Base, seeds: tuple[int, ...]) -> list[RunConfig]:
    # Each method in the precision this hardware runs fastest (`fast`: what auto picks, whatever the method's
    # CPU default) and in fp32; one run where the two are the same (the planner drops the duplicate).
    return [replace(base(method, seed), precision=precision) for seed in seeds
            for method in method_names(core_only=True) for precision in ("fast", "fp32")]


def _first_lr_sweep(base: Base, seeds: tuple[int, ...]) -> list[RunConfig]:
    # The first sweep's recipe (ROUND_ONE): its runs keep their names after the defaults it led to changed.
    return sweep_configs([replace(base(method, 0), lr_table=FIRST_ROUND_TABLE, **ROUND_ONE)
                          for method in method_names(families=TUNED_FIRST)], seeds)


# The families the first and the final sweep tuned; the further methods have a sweep of their own.
TUNED_FIRST = ("core", "added")


def _final_lr_sweep(families: tuple[str, ...]) -> Callable[[Base, tuple[int, ...]], list[RunConfig]]:
    """The final sweep's runs of the methods of `families`."""
    return lambda base, seeds: final_sweep_configs([base(m, 0) for m in method_names(families=families)], seeds)


def _choice_arms(name: str) -> Callable[[Base, tuple[int, ...]], list[RunConfig]]:

    def runs(base: Base, seeds: tuple[int, ...]) -> list[RunConfig]:
        return [CHOICES[name].arms(base(method, seed))["alternative"] for method in method_names(core_only=True)
                for seed in seeds]

    return runs


def _at_defaults(rows: pd.DataFrame) -> pd.Series:
    """The row of a method nearest its defaults: the one whose label names the fewest settings (the method's name
    alone when its runs are at today's defaults; `lora (lr=0.001)` beside `lora (lr=0.001, r=2)` when a default
    changed since they trained)."""
    named = rows["label"].str.count("=")
    return named == named.min()


def _in_fp32(rows: pd.DataFrame) -> pd.Series:
    return rows["precision_mode"] == "fp32"


# --- the summaries ------------------------------------------------------------------------------------------

def ablation_statistics(name: str, profile: Profile, root: str | os.PathLike | None = None,
                        margin: float = MARGIN) -> pd.DataFrame:
    """One ablation's statistics: each row against its method's reference row (empty without finished runs)."""
    experiment = ablations()[name]
    return ablation_table(experiment.path(profile, root), experiment.column, experiment.reference, margin)


def ablation_tables(profile: Profile, root: str | os.PathLike | None = None,
                    margin: float = MARGIN) -> list[AblationTable]:
    """The statistics table of every ablation with finished runs."""
    tables = [(name, experiment, ablation_statistics(name, profile, root, margin))
              for name, experiment in ablations().items()]
    return [AblationTable(name, e.question, e.column, table) for name, e, table in tables if not table.empty]


def write_reports(profile: Profile, root: str | os.PathLike | None = None, figures_dir: str | os.PathLike = "figures",
                  margin: float = MARGIN) -> list[Path]:
    """The study's summary.md with every ablation, and the figures of the study, the ablations and the sweeps."""
    from .report import write_report

    sweeps = {folder for name in ("lr-sweep-first", "lr-sweep", "lr-sweep-further") for profile_ in PROFILES.values()
              if (folder := EXPERIMENTS[name].path(profile_, root)).is_dir()}
    return write_report(root, figures_dir, margin, ablation_tables(profile, root, margin), sorted(sweeps))


def _report(profile: Profile, root: Path, figures: Path, complete: bool) -> list[Path]:
    return write_reports(profile, root, figures)


def _sweep_summary(name: str, near_tie: bool, rule: str | None = None, picked_for: str = DEFAULT_PICKS
                   ) -> Callable[[Profile, Path, Path, bool], list[Path]]:
    def summarize(profile: Profile, root: Path, figures: Path, complete: bool) -> list[Path]:
        folder = EXPERIMENTS[name].path(profile, root)
        return (write_sweep_summary(folder, complete, near_tie, name, rule)
                + write_sweep_chart(folder, figures, picked_for))

    return summarize


def _budget_summary(profile: Profile, root: Path, figures: Path, complete: bool) -> list[Path]:
    return write_budget_summary(EXPERIMENTS["budget"].path(profile, root), EXPERIMENTS["budget-lr"].path(profile, root),
                                figures, complete=complete)


def _budget_runs(profile: Profile, root: Path, configs: list[RunConfig], provisional: bool) -> list[RunConfig]:
    """The budget's configs at the check's rates, less the runs of a point begun on another kind of machine."""
    configs = at_checked_rates(configs, checked_rates(EXPERIMENTS["budget-lr"].path(profile, root)), provisional)
    configs, waiting = on_one_machine_kind(configs, EXPERIMENTS["budget"].path(profile, root))
    for line in waiting:
        warn_once(line)
    return configs


def _study_table_group(config: RunConfig) -> str:
    """The rows one study table puts side by side, times included: one model at one data setting."""
    return (f"study of {config.model} on {config.train_size} train / {config.eval_size} test reviews at length "
            f"{config.max_length}")


def _on_the_study_kind(profile: Profile, root: Path, configs: list[RunConfig], provisional: bool) -> list[RunConfig]:
    """The configs less those that would put a row trained on another kind of machine beside the study's rows."""
    configs, waiting = on_one_machine_kind(configs, EXPERIMENTS["study"].path(profile, root), group=_study_table_group)
    for line in waiting:
        warn_once(line)
    return configs


def _choice_summary(name: str) -> Callable[[Profile, Path, Path, bool], list[Path]]:
    def summarize(profile: Profile, root: Path, figures: Path, complete: bool) -> list[Path]:
        return write_choice_summary(CHOICES[name], profile, EXPERIMENTS["lr-sweep-first"].path(profile, root),
                                    EXPERIMENTS[name].path(profile, root))

    return summarize


STUDY_SEEDS = (0, 1, 2, 3, 4)  # intervals resample seeds and reviews

register(Experiment(
    "study", "The four core methods and QLoRA's LoRA twin (the 4-bit effect alone), each against Full FT.",
    STUDY_SEEDS, _study, _study_folder, _report))
register(Experiment(
    "more-methods", "The six added peft methods at their validation-picked learning rates, against Full FT.",
    (0, 1, 2), _each(method_names(families=("added",))), _study_folder, _report, settle=_on_the_study_kind))
register(Experiment(
    "further-methods", "The further peft methods and LoRA variants at their validation-picked learning rates, "
    "against Full FT: a Holm family of their own.",
    (0, 1, 2), _each(method_names(families=("further",))), _study_folder, _report, settle=_on_the_study_kind))
register(Experiment(
    "rank", "LoRA rank 2, 8 (the default) and 32, alpha = 2r: differences to rank 8.",
    (0, 1, 2), _ranks, _ablation_folder("rank"), _report, reuse_study=True,
    column="lora_r", reference=_at_defaults))
register(Experiment(
    "targets", "Adapter placement, attention only against attention + feed-forward, for LoRA and IA3: "
    "differences to each method's default placement.",
    (0, 1, 2), _placements, _ablation_folder("targets"), _report, reuse_study=True,
    column="placement", reference=_at_defaults))
register(Experiment(
    "precision", "Each method in the precision `auto` picks on this hardware against fp32: differences to fp32. "
    "bf16 stays a method's CPU default only where it is *equivalent* (registry field `cpu_bf16`).",
    STUDY_SEEDS, _precisions, _ablation_folder("precision"), _report, reuse_study=True,
    column="precision_mode", reference=_in_fp32))
register(Experiment(
    "lr-sweep", "Each method's learning rate at the final recipe, picked on validation reviews (tuning: no test "
    "review is drawn): half-octave steps and 3 seeds for the study's methods, octaves and 2 seeds for the others, "
    "around the first sweep's picks, widened at an end; near-ties broken by the worst seed.",
    FINAL_SEEDS[True], _final_lr_sweep(TUNED_FIRST), _sweep_folder("lr_final"), _sweep_summary("lr-sweep", True),
    extend=widened))
register(Experiment(
    "lr-sweep-further", "Each further method's learning rate at the final recipe, picked on validation reviews "
    "(tuning: no test review is drawn): 2 seeds on four rates an octave apart (its registry grid), widened at an "
    "end; the final sweep's rule, near-ties broken by the worst seed.",
    FINAL_SEEDS[False], _final_lr_sweep(("further",)), _sweep_folder("lr_further"),
    _sweep_summary("lr-sweep-further", True),
    extend=widened))
register(Experiment(
    "lr-sweep-first", "The first learning-rate sweep (dropout on, the earlier subset draw), on validation reviews: "
    "the rates the committed study trained at, and the centres of the final sweep's grid.",
    (0, 1), _first_lr_sweep, _sweep_folder("lr"), _sweep_summary("lr-sweep-first", False)))
register(Experiment(
    "truncation", "Which tokens of a long review to keep, chosen on validation: head against head+tail.",
    (0, 1), _choice_arms("truncation"), _sweep_folder("truncation"), _choice_summary("truncation")))
register(Experiment(
    "dropout", "Every dropout off against on, chosen on validation.",
    (0, 1), _choice_arms("dropout"), _sweep_folder("dropout"), _choice_summary("dropout")))
register(Experiment(
    "budget-lr", "The learning-rate check of the budget experiment, on validation reviews (tuning: no test review "
    "is drawn): each study method at half, once and twice its rate at its largest training set.",
    (0, 1), check_configs, _sweep_folder("budget_lr"), _sweep_summary("budget-lr", True, CHECK_RULE, CHECK_PICKS)))
register(Experiment(
    "budget", "Do the verdicts hold as the budget grows? The four methods at 500 to 8000 nested training reviews, "
    "at the reference reports' setting (3000 reviews, 3 epochs, 256 tokens) and on every training review, each "
    "against the Full FT of its budget on the study's test reviews.",
    (0, 1, 2), budget_configs, lambda profile, root: root / "budget", _budget_summary, reuse_study=True,
    settle=_budget_runs, requires=("budget-lr",)))
