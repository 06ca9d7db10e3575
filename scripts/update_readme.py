"""Regenerate the measured blocks of README.md and docs/*.md from stored results; no number in them is typed by hand.

Each block sits between `<!-- begin:NAME -->` and `<!-- end:NAME -->` in README.md or any docs/*.md (a block can
live in any of them) and is rebuilt from results/ (run records, predictions, benchmark records).
`python scripts/update_readme.py --check` exits 1, naming the file and the block, when one of them is out of date
(the tests run that).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from peft_imdb import findings as study_findings  # noqa: E402
from peft_imdb.comparison import add_statistics, summarize  # noqa: E402
from peft_imdb.config import PROFILES  # noqa: E402
from peft_imdb.hardware import cpu_kind_text  # noqa: E402
from peft_imdb.experiments import EXPERIMENTS  # noqa: E402
from peft_imdb.report import advice, method_table, twin_lines  # noqa: E402
from peft_imdb.sweep import FIRST_ROUND_TABLE  # noqa: E402
from peft_imdb.table import load_results  # noqa: E402

RESULTS = ROOT / "results"
MISSING = "*Not measured yet: run the command above.*"
MARKER = re.compile(r"^<!-- begin:([\w-]+) -->$", re.M)


def files() -> list[Path]:
    """The files whose blocks are generated: README.md and every docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _benchmarks(pattern: str) -> list[dict]:
    """Benchmark records, each with `record` set to its path under the repository."""
    return [{**json.loads(p.read_text()), "record": p.relative_to(ROOT).as_posix()}
            for p in sorted((RESULTS / "benchmarks").glob(pattern))]


@lru_cache(maxsize=1)
def _study_table():
    """The study's statistics table, computed once per run of this script."""
    return study_findings.study_statistics(RESULTS)


def headline() -> str:
    """One row per method against Full FT (findings.headline_markdown)."""
    return study_findings.headline_markdown(RESULTS, table=_study_table())


def findings() -> str:
    """The study's findings as generated sentences (findings.findings)."""
    return study_findings.findings_markdown(RESULTS, table=_study_table())


def study() -> str:
    """The main table (mean ± std, intervals, paired tests) and the derived advice."""
    frame = load_results(RESULTS)
    if frame.empty:
        return MISSING
    table = add_statistics(summarize(frame), RESULTS)
    twins = twin_lines(table, frame, RESULTS)
    return "\n".join(method_table(table) + [""] + twins + ([""] if twins else []) + advice(table))


def ablations() -> str:
    """Each ablation's table with its verdicts against the reference, from results/ablations/<name>/."""
    from peft_imdb.experiments import ablation_tables
    from peft_imdb.report import ablation_rows

    parts = []
    for ablation in ablation_tables(PROFILES["cpu"], RESULTS):
        parts += [f"**{ablation.name}**: {ablation.question}", ""] + ablation_rows(ablation) + [""]
    return "\n".join(parts).strip() if parts else MISSING


def _ours_dtype(records: list[dict]) -> str:
    """The dtype(s) our recipe trained in across benchmark records: the peak its MFU is against."""
    return "/".join(sorted({r["peak_dtype"] for record in records for r in record["rows"] if r["recipe"] == "ours"}))


def _mfu(row: dict) -> str:
    """A row's MFU against the peak of its own dtype; none where that dtype was not native."""
    return "not native" if row.get("mfu") is None else f"{row['mfu']:.0%}"


def _peak(record: dict, dtype: str) -> str:
    """A measured peak: `223 GFLOP/s`, or `not native (2 GFLOP/s)` where the machine emulates the dtype."""
    figure = f"{record['peak_gflops'][dtype]:.0f} GFLOP/s"
    native = record.get("native_dtypes", list(record["peak_gflops"]))
    return figure if dtype in native else f"not native ({figure})"


def mfu() -> str:
    """The MFU benchmark, one table per CPU kind (newest first): each method in the usual fp32 recipe and in ours."""
    records = sorted(_benchmarks("mfu_*.json"), key=lambda r: r["finished_at"], reverse=True)
    if not records:
        return MISSING
    return "\n\n".join(_mfu_table(record) for record in records)


def _mfu_table(record: dict) -> str:
    """One MFU record's table, headed by its CPU kind, date and the commit whose recipe it timed."""
    lines = [f"**{cpu_kind_text(record['env']['cpu'])}**, {record['finished_at'][:10]}, ours as `train.py` ran it at "
             f"commit `{record['env']['git_commit'][:7]}`:", "",
             "| model, method | max length | usual (fp32, AdamW): samples/s | GFLOP/s | MFU of fp32 peak "
             f"| ours: samples/s | GFLOP/s | MFU of {record['ours_precision']} peak | speed-up |", "|---" * 9 + "|"]
    rows = {(r["method"], r["max_length"], r["recipe"]): r for r in record["rows"]}
    for (method, length, recipe), usual in rows.items():
        ours = rows.get((method, length, "ours"))
        if recipe != "usual" or ours is None:
            continue
        lines.append(f"| {record['model']}, {method} | {length} | {usual['train_samples_per_s']:.1f} "
                     f"| {usual['model_gflops_per_s']:.0f} | {_mfu(usual)} | {ours['train_samples_per_s']:.1f} "
                     f"| {ours['model_gflops_per_s']:.0f} | {_mfu(ours)} "
                     f"| **{ours['train_samples_per_s'] / usual['train_samples_per_s']:.2f}×** |")
    lines += ["", f"Measured peaks (dense matmul, same process, the model's GEMM shapes and a 2048² square): "
              f"fp32 {_peak(record, 'fp32')}, bf16 {_peak(record, 'bf16')}. Ours: "
              f"{record['ours_precision']} ({record['ours_precision_reason']}), {record['ours_optim']}; "
              f"{record['steps']} steps × batch {record['batch_size']} per cell. Device: {record['env']['device']}. "
              f"Record: `{record['record']}`."]
    return "\n".join(lines)


def overhead() -> str:
    """The share of `matrix` wall time outside training and evaluation, over the committed runs' matrix commands."""
    from peft_imdb.matrix_log import MatrixEntry, overhead_line, read_log

    logged = read_log(RESULTS)
    if not logged:
        return MISSING
    total = MatrixEntry("", sum(e.runs for e in logged), sum(e.wall_s for e in logged),
                        sum(e.inside_s for e in logged), "")
    lines = [f"- `{overhead_line(total)}`: the committed runs' `matrix` commands ({len(logged)}, "
             "`results/matrix_log.json`), each run forked from the fork server; one by one:"]
    lines += [f"  - `{overhead_line(e)}` ({e.machine}, {e.finished_at[:10]})" for e in logged]
    return "\n".join(lines)


def profile() -> str:
    """Where our recipe's step time goes (profile_step.py), and both recipes timed without dropout."""
    records = [r for r in _benchmarks("profile_*.json") if not r.get("quick")]
    if not records:
        return MISSING
    found = records[0]["profiles"][records[0]["methods"][0]]["categories"]
    names = [n for n in ("matmul", "dropout masks", "casts and copies", "optimizer", "other") if n in found]
    names += [n for n in found if n not in names]
    lines = ["| model, method | max length | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for record in records:
        for method, profile in record["profiles"].items():
            lines.append(f"| {record['model']}, {method} | {record['max_length']} | "
                         + " | ".join(f"{profile['categories'][n]:.0%}" for n in names) + " |")
    lines += ["", "| model, method | max length | dropout | usual: samples/s | ours: samples/s | ours: MFU of "
              f"{_ours_dtype(records)} peak | speed-up |", "|---" * 7 + "|"]
    for record in records:
        rows = {(r["method"], r["recipe"], r["dropout"]): r for r in record["rows"]}
        for method in record["methods"]:
            for dropout in (True, False):
                usual, ours = rows[method, "usual", dropout], rows[method, "ours", dropout]
                lines.append(f"| {record['model']}, {method} | {record['max_length']} | "
                             f"{'as trained' if dropout else 'p=0 everywhere'} | {usual['train_samples_per_s']:.1f} "
                             f"| {ours['train_samples_per_s']:.1f} | {_mfu(ours)} "
                             f"| {ours['speedup']:.2f}× |")
    lines += ["", "| model, method | max length | usual, as trained: samples/s | ours with dropout off: samples/s "
              f"| ours: MFU of {_ours_dtype(records)} peak | speed-up |", "|---" * 6 + "|"]
    for record in records:  # the two cells above that compare our recipe, dropout off, with the usual one
        rows = {(r["method"], r["recipe"], r["dropout"]): r for r in record["rows"]}
        for method in record["methods"]:
            usual, ours = rows[method, "usual", True], rows[method, "ours", False]
            lines.append(f"| {record['model']}, {method} | {record['max_length']} | {usual['train_samples_per_s']:.1f} "
                         f"| {ours['train_samples_per_s']:.1f} | {_mfu(ours)} "
                         f"| {ours['train_samples_per_s'] / usual['train_samples_per_s']:.2f}× |")
    first = records[0]
    lines += ["", f"Shares of self CPU time over {first['profile_steps']} traced steps of our recipe (torch.profiler; "
              f"`dropout masks` is `aten::bernoulli_`); timings: {first['steps']} steps × batch {first['batch_size']} "
              f"per cell, in the same process; single measurements, no interval. Device: {first['env']['device']}. Records: "
              + ", ".join(f"`{r['record']}`" for r in records) + "."]
    return "\n".join(lines)


def scaling() -> str:
    """Training samples/s and time per method of the committed study's rows (mean over seeds)."""
    frame = load_results(RESULTS)
    if frame.empty:
        return MISSING
    frame = frame[frame["status"] == "ok"]
    grouped = frame.groupby(["method", "precision_mode", "max_length", "train_size"], sort=True)
    rows = grouped.agg(samples_per_s=("train_samples_per_s", "mean"), seconds=("train_time_s", "mean"),
                       eval_seconds=("eval_time_s", "mean"), runs=("key", "count")).reset_index()
    lines = ["| method | precision | max length | train reviews | runs | train samples/s | train time (s) "
             "| test evaluation (s) |", "|---" * 8 + "|"]
    for _, r in rows.iterrows():
        lines.append(f"| {r['method']} | {r['precision_mode']} | {r['max_length']} | {r['train_size']} | {r['runs']} "
                     f"| {r['samples_per_s']:.1f} | {r['seconds']:.0f} | {r['eval_seconds']:.0f} |")
    return "\n".join(lines)


def ray_overhead() -> str:
    """The same small matrix three ways on one machine (benchmarks/ray_overhead.py): wall times and Ray's overhead."""
    records = _benchmarks("ray_overhead.json")
    if not records:
        return MISSING
    run = records[0]
    lines = ["| how the runs are executed | wall time of the matrix (s) |", "|---|---|"]
    lines += [f"| {way} | {seconds:.1f} |" for way, seconds in run["wall_s"].items()]
    runs = len(run["methods"]) * len(run["seeds"])
    overhead = run["overhead_s"]
    lines += ["", f"Ray one run at a time against local (the same schedule): {overhead:+.1f} s "
                  f"({overhead / run['wall_s']['local']:+.0%}) for {runs} runs of the `{run['profile']}` profile "
                  f"on {run['cpus']} CPUs, {cpu_kind_text(run['env']['cpu'])}; record: `{run['record']}`. "
                  + ("Ray's workers keep their imports and data from one run to the next, where the local executor "
                     "starts each run in a fresh process: on runs this short that saves more than Ray's cluster "
                     "and tasks cost." if overhead < 0 else
                     "That is Ray's cost (its cluster's start, its tasks) less the process starts its workers save.")]
    return "\n".join(lines)


def _ci_time() -> str:
    """The last recorded `.ci/run` (results/benchmarks/ci_run.json, written with CI_RECORD): its time and CPU."""
    path = RESULTS / "benchmarks" / "ci_run.json"
    if not path.is_file():
        return ""
    run = json.loads(path.read_text())
    outcome = "passed" if run["passed"] else "failed"
    return (f"`.ci/run` on a clean clone ({outcome}, both stacks side by side) took {run['total_s'] // 60} min "
            f"{run['total_s'] % 60} s on {cpu_kind_text(run['cpu'])} "
            "(`results/benchmarks/ci_run.json`, with its versions and commit). ")


def quickstart() -> str:
    """What the quick start's commands take: measured on the CPU profile, estimated for a T4, and the torch pin."""
    from peft_imdb.estimate import PUBLISHED, T4_REPORT
    from peft_imdb.experiments import STUDY_SEEDS, experiment_configs, get_experiment, profile_base
    from peft_imdb.matrix_log import entries_that_trained, read_log
    from peft_imdb.methods import method_names
    from peft_imdb.models import ALIASES
    from peft_imdb.resolved import resolve

    frame = load_results(RESULTS)
    planned = {resolve(c).key for c in experiment_configs(get_experiment("study"), profile_base(PROFILES["cpu"]))}
    study = frame[(frame["status"] == "ok") & frame["key"].isin(planned)]
    logged = entries_that_trained(read_log(RESULTS), study["finished_at"])  # the matrix commands of the study's runs
    if study.empty or not logged:
        return MISSING
    runs, wall_s = sum(e.runs for e in logged), sum(e.wall_s for e in logged)
    machines = ", ".join(sorted({e.machine for e in logged}))
    per_run = study["train_time_s"] + study["eval_time_s"]
    t4 = sorted(p.train_time_s for p in PUBLISHED if p.report == T4_REPORT and p.train_time_s)
    gpu = PROFILES["colab-t4"]
    pin = re.search(r"^torch==(\S+)", (ROOT / "requirements-cpu.txt").read_text(), re.M).group(1)
    budget_s = int(re.search(r"^BUDGET_S=(\d+)", (ROOT / ".ci" / "run").read_text(), re.M).group(1))
    core = len(method_names(core_only=True))
    stored = (f"the store holds all {len(planned)}, so from a fresh clone it trains none" if len(study) == len(planned)
              else f"the store holds {len(study)} of the {len(planned)}")
    return "\n".join([
        f"- `make study` plans the study's {len(planned)} runs (the {core} core methods and QLoRA's LoRA twin × "
        f"{len(STUDY_SEEDS)} seeds) at today's defaults (every dropout off, nested subsets, {PROFILES['cpu'].eval_size} "
        f"test reviews no earlier study scored) and trains those not stored yet: {stored}. "
        "`python -m peft_imdb experiment study --dry-run` prints the plan and its time on this CPU, from the stored "
        "runs' speeds and this CPU's matmul peak, before anything trains. The `matrix` commands that trained them took "
        f"{wall_s:.0f} s for {runs} runs on {machines} (`results/matrix_log.json`); one study run was "
        f"{per_run.min():.0f}–{per_run.max():.0f} s of training and test evaluation "
        "([docs/performance.md](docs/performance.md#scaling-predict-a-run-before-starting-it)).",
        f"- On a Colab T4 (`colab-t4`: {ALIASES[gpu.model].split('/')[-1]}, {gpu.train_size} reviews × "
        f"{gpu.epochs:g} epochs) the study would take about **{len(planned) * t4[0] / 3600:.1f}–"
        f"{len(planned) * t4[-1] / 3600:.1f} h**, and one method notebook's run about {t4[0] / 60:.0f}–"
        f"{t4[-1] / 60:.0f} min: an *estimate* from {T4_REPORT}, a reference report that trained this setting on a "
        f"T4 and printed {t4[0]:.0f}–{t4[-1]:.0f} s of training per method (`PUBLISHED` in "
        "`src/peft_imdb/estimate.py`); no run of this repository was on a T4.",
        f"- `make test` runs every tier; CI gives it {budget_s / 60:.0f} minutes (`BUDGET_S` in `.ci/run`). "
        f"{_ci_time()}`make test-fast` leaves out the system and audit tiers (subprocesses, notebook "
        "kernels, the real model, the committed files): the quick check.",
        f"- torch {pin} is pinned; pip takes its CPU-only wheel only where one is at hand locally: from PyPI it is a "
        "CUDA build of several GB. Take the CPU wheel from PyTorch's own index before `make`, which then keeps it: "
        f"`python3 -m venv .venv && .venv/bin/pip install torch=={pin} --index-url "
        "https://download.pytorch.org/whl/cpu`.",
    ])


def _picks_table(experiment: str, grid) -> str:
    """A sweep's picks (its picks.json) with each method's grid (`grid(method) -> rates`); MISSING before."""
    from peft_imdb.methods import method_names

    path = EXPERIMENTS[experiment].path(PROFILES["cpu"], RESULTS) / "picks.json"
    if not path.is_file():
        return MISSING
    chosen = json.loads(path.read_text())
    lines = ["| method | grid (cpu) | pick | validation accuracy at the pick (mean over seeds) | inside the grid |",
             "|---" * 5 + "|"]
    for method in [m for m in method_names() if m in chosen]:
        pick = chosen[method]
        lines.append(f"| {method} | {', '.join(f'{lr:g}' for lr in grid(method))} | {pick['lr']:g} "
                     f"| {pick['val_accuracy_mean']:.4f} ({pick['seeds']} seeds) "
                     f"| {'yes' if pick['interior'] else 'no: at an end'} |")
    return "\n".join(lines)


def picks() -> str:
    """Each method's grid and validation-picked CPU learning rate in the first sweep (its picks.json)."""
    from peft_imdb.methods import get_method

    return _picks_table("lr-sweep-first", lambda method: get_method(method).lr_grid.get(FIRST_ROUND_TABLE, ()))


def final_picks() -> str:
    """Each method's rates and pick in the final sweep, the grid as its stored runs have it (widened included)."""
    from peft_imdb.sweep import sweep_table

    table = sweep_table(EXPERIMENTS["lr-sweep"].path(PROFILES["cpu"], RESULTS))
    return _picks_table("lr-sweep", lambda method: sorted(table.loc[table["method"] == method, "lr"]))


def further_picks() -> str:
    """Each further method's grid and pick in its own sweep (lr-sweep-further), the grid as its runs have it."""
    from peft_imdb.sweep import sweep_table

    folder = EXPERIMENTS["lr-sweep-further"].path(PROFILES["cpu"], RESULTS)
    if not folder.is_dir():
        return MISSING
    table = sweep_table(folder)
    return _picks_table("lr-sweep-further", lambda method: sorted(table.loc[table["method"] == method, "lr"]))


def further_methods() -> str:
    """The further methods as the registry defines them: what each trains, its peft documentation, its trainable
    parameters on MiniLM by its formula, and the grid its sweep starts from."""
    from peft_imdb.config import RunConfig
    from peft_imdb.methods import get_method, method_names
    from peft_imdb.params import expected_parameters

    lines = ["| method | what it trains | peft documentation | trainable parameters on MiniLM (with the head) "
             "| learning rates its sweep starts from (cpu) |", "|---" * 5 + "|"]
    for name in method_names(families=("further",)):
        method = get_method(name)
        trainable = int(expected_parameters(RunConfig(model="minilm", method=name)).loc["trainable (total)", "params"])
        grid = ", ".join(f"{lr:g}" for lr in method.lr_grid["cpu"])
        lines.append(f"| {method.label} (`{name}`) | {method.description} | [{method.config_class}]({method.docs}) "
                     f"| {trainable:,} | {grid} |")
    return "\n".join(lines)


def choice(name: str) -> str:
    """A setting chosen on validation (the experiment `name`): its summary's rule, table and choice."""
    path = EXPERIMENTS[name].path(PROFILES["cpu"], RESULTS) / "summary.md"
    if not path.is_file():
        return MISSING
    lines = path.read_text().splitlines()
    rule = [line for line in lines if line.startswith("Rule")]
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("| method")):]
    return "\n".join(rule + ([""] if rule else []) + table).strip()


BLOCKS = {"headline": headline, "findings": findings, "quickstart": quickstart, "study": study, "picks": picks,
          "final-picks": final_picks, "further-methods": further_methods, "further-picks": further_picks,
          "ray-overhead": ray_overhead,
          "truncation": lambda: choice("truncation"), "dropout": lambda: choice("dropout"), "ablations": ablations,
          "mfu": mfu, "profile": profile, "overhead": overhead, "scaling": scaling}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- begin:{name} -->\n)(?:.*?\n)?(<!-- end:{name} -->)", re.S)


def render(text: str, built: dict[str, str] | None = None) -> str:
    """The text with every generated block in it rebuilt (each block built once per `built` cache)."""
    built = {} if built is None else built
    for name, build in BLOCKS.items():
        pattern = _pattern(name)
        if pattern.search(text):
            if name not in built:
                built[name] = build()
            text = pattern.sub(lambda m: m.group(1) + built[name] + "\n" + m.group(2), text)
    return text


def stale_blocks(current: str, fresh: str) -> list[str]:
    """The names of the blocks whose text differs between the current and the rebuilt file."""
    return [name for name in BLOCKS
            if [m.group(0) for m in _pattern(name).finditer(current)] != [m.group(0) for m in _pattern(name).finditer(fresh)]]


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md and docs/*.md (or with --check, say which file and block is out of date)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a block of README.md or docs/*.md differs from the results")
    args = parser.parse_args(argv)
    built: dict[str, str] = {}
    problems, found = [], set()
    for path in files():
        current = path.read_text()
        names = set(MARKER.findall(current))
        found |= names
        where = path.relative_to(ROOT).as_posix()
        problems += [f"{where}: block '{name}' is not one update_readme.py builds" for name in sorted(names - set(BLOCKS))]
        fresh = render(current, built)
        if args.check:
            problems += [f"{where}: block '{name}' is out of date with results/" for name in stale_blocks(current, fresh)]
        elif fresh != current:
            path.write_text(fresh)
            print(f"updated {where}")
    problems += [f"block '{name}' is in none of README.md, docs/*.md" for name in BLOCKS if name not in found]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        if args.check:
            print("run python scripts/update_readme.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
