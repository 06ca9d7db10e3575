"""Tables and charts the notebooks show: settings, configs, stored runs, statistics, plans."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

# Without ipywidgets, tqdm falls back to text progress bars in a notebook and says so on import;
# text bars are what a saved notebook should hold anyway. Set before .data imports datasets (tqdm).
warnings.filterwarnings("ignore", message="IProgress not found")

from .config import Profile, RunConfig  # noqa: E402
from .resolved import resolve  # noqa: E402
from .folders import Folders, _shown, repository_root  # noqa: E402
from .methods import method_names  # noqa: E402
from .results import RunResult  # noqa: E402

RUN_COLUMNS = ["status", "reason", "accuracy", "f1", "val_accuracy", "trainable_params", "adapter_params",
               "head_params", "total_params", "trainable_percent", "train_time_s", "train_samples_per_s",
               "eval_time_s", "peak_memory_mb", "memory_kind", "base_weight_bits", "saved_mb", "precision_mode",
               "lr", "device", "key"]
# What the statistics table shows (report.add_statistics): accuracy with its interval, the paired
# comparison with Full FT, and the costs; an ablation's varied column goes first.
STATISTICS_COLUMNS = ["model", "label", "lr", "precision_mode", "n", "accuracy_mean", "accuracy_std", "acc_low",
                      "acc_high", "seed_sd", "review_sd", "diff", "diff_low", "diff_high", "diff90_low", "diff90_high",
                      "p_value", "p_holm", "verdict", "detectable", "trainable_params_mean", "train_time_s_mean",
                      "model_state_mb_mean", "working_memory_mb_mean", "memory_kind"]
STORE_COLUMNS = ["label", "seed", "status", "precision_mode", "accuracy", "f1", "trainable_params", "train_time_s",
                 "peak_memory_mb", "memory_kind", "saved_mb", "lr", "train_size", "eval_size", "max_length",
                 "finished_at", "reason"]


def describe_settings(profile: Profile, where: Folders) -> pd.DataFrame:
    """The profile, folders, device and main versions this notebook runs with, as a small table."""
    from .hardware import device_name
    from .environment import environment

    root = repository_root()
    versions = environment()["versions"]
    rows = {
        "profile": f"{profile.name} (PEFT_IMDB_PROFILE={os.environ.get('PEFT_IMDB_PROFILE') or 'unset: detected'})",
        "model": profile.model,
        "data": _shown(where.data_dir, root) or "the hub (stanfordnlp/imdb)",
        "results": _shown(where.results_dir, root),
        "figures": _shown(where.figures_dir, root),
        "device": device_name(),
        "versions": ", ".join(f"{name} {version}" for name, version in versions.items()),
    }
    return pd.DataFrame({"value": rows}).rename_axis("setting")


def describe_config(config: RunConfig) -> pd.DataFrame:
    """Every field of a run config, the learning rate it resolves to, and its store key."""
    rows = {name: str(value) for name, value in config.to_dict().items()}
    rows["data_dir"] = _shown(config.data_dir, repository_root()) or "the hub (stanfordnlp/imdb)"
    rows["learning rate used"] = f"{config.learning_rate:g}"
    run = resolve(config)
    rows["run label"] = run.label
    rows["key in the results store"] = run.key
    return pd.DataFrame({"value": rows}).rename_axis("field")


def experiment_plan(names: Iterable[str], profile: Profile, results_dir: str | os.PathLike | None = None,
                    data_dir: str | None = None) -> pd.DataFrame:
    """Every run of these experiments, its label, and whether it is stored already, copied from the study or trains."""
    from .experiments import experiment_configs, get_experiment, profile_base
    from .plan import plan_runs, resolve_all
    from .results import results_dir as store_root
    from .targets import placement

    rows = []
    for name in names:
        experiment = get_experiment(name)
        runs = resolve_all(experiment_configs(experiment, profile_base(profile, data_dir=data_dir)))
        # The planner's own split, as a dry run: nothing is copied.
        plan = plan_runs(runs, experiment.path(profile, results_dir), dry_run=True,
                         reuse_from=store_root(results_dir) if experiment.reuse_study else None)
        where = {**{r.key: "trains" for r in plan.train}, **{r.key: "stored" for r in plan.stored},
                 **{r.key: "stored in the study: copied" for r in plan.copied}}
        for run in runs:
            targets = sorted(getattr(run.peft_config, "target_modules", None) or [])
            rows.append({"experiment": name, "run label": run.label, "method": run.config.method,
                         "placement": placement(targets, run.architecture) if targets else "",
                         "precision": run.precision.name, "lr": f"{run.config.learning_rate:.3g}", "seed": run.seed,
                         "run": where[run.key], "key": run.key})
    return pd.DataFrame(rows)


def _points(low: float, high: float) -> str:
    """An interval of accuracy differences in points: `[-2.9, -0.8]`."""
    return "–" if pd.isna(low) else f"[{100 * low:+.1f}, {100 * high:+.1f}]"


def compact_statistics(table: pd.DataFrame, varied: str | None = None) -> pd.DataFrame:
    """The statistics table as a reader takes it in, one row per run group and few columns, in % and points:
    accuracy with its 95% interval, the difference to the row's reference with its 95% and 90% intervals and
    the verdict, and the costs; `varied` (an ablation's setting) first. The full frame: `statistics_view`."""
    if table.empty:
        return table
    rows = []
    for _, row in table.iterrows():
        versus = row.get("versus") or ("reference" if pd.isna(row["diff"]) else "")
        rows.append({
            **({varied: row[varied]} if varied else {}),
            "run": row["label"], "precision": row["precision_mode"], "seeds": int(row["n"]),
            "accuracy % (95% CI)": f"{100 * row['accuracy_mean']:.1f} {_points(row['acc_low'], row['acc_high'])}"
            .replace("+", ""),
            "difference, points (95% CI)": "–" if pd.isna(row["diff"]) else
            f"{100 * row['diff']:+.1f} {_points(row['diff_low'], row['diff_high'])}",
            "90% CI": _points(row["diff90_low"], row["diff90_high"]),
            "verdict": row["verdict"] or "–", "against": versus or "–",
            "trainable params": f"{row['trainable_params_mean']:,.0f}",
            "train time (s)": f"{row['train_time_s_mean']:.0f}",
            "model state (MB)": "–" if pd.isna(row["model_state_mb_mean"]) else f"{row['model_state_mb_mean']:.0f}",
        })
    return pd.DataFrame(rows)


def statistics_view(table: pd.DataFrame, varied: str | None = None) -> pd.DataFrame:
    """Every column of a statistics table (comparison.add_statistics) worth reading, `varied` first."""
    if table.empty:
        return table
    columns = ([varied] if varied else []) + [c for c in STATISTICS_COLUMNS if c != varied and c in table.columns]
    shown = table[columns].dropna(axis=1, how="all")  # e.g. no comparison with Full FT where it did not run
    return shown.round({"accuracy_mean": 4, "accuracy_std": 4, "acc_low": 4, "acc_high": 4, "seed_sd": 4,
                        "review_sd": 4, "diff": 4, "diff_low": 4, "diff_high": 4, "diff90_low": 4, "diff90_high": 4,
                        "p_value": 4, "p_holm": 4, "detectable": 4, "trainable_params_mean": 0,
                        "train_time_s_mean": 1, "model_state_mb_mean": 1, "working_memory_mb_mean": 0})


def rules():
    """The rules `report.advice` applies to the measured table, as a numbered markdown list."""
    from IPython.display import Markdown

    from .report import RULES

    return Markdown("\n".join(f"{number}. {rule}" for number, rule in enumerate(RULES, 1)))


def run_summary(row: RunResult) -> pd.DataFrame:
    """One run's record as a one-column table: status, metrics, costs."""
    data = row.to_dict()
    data["trainable_percent"] = row.trainable_percent
    data["device"] = row.env.get("device")
    values = {name: data[name] for name in RUN_COLUMNS if data.get(name) not in (None, "")}  # skipped: few
    return pd.DataFrame({row.method: values}).rename_axis("field")


def method_rows(frame: pd.DataFrame, methods: str | list[str] | None = None) -> pd.DataFrame:
    """The rows of these methods (all when None) from `load_results`, with the columns worth reading: each row's
    label (what sets it apart: two arms of a method stay apart), learning rates as written, counts as integers."""
    if isinstance(methods, str):
        methods = [methods]
    rows = frame if methods is None else frame[frame["method"].isin(methods)]
    rows = rows[[c for c in STORE_COLUMNS if c in rows.columns]].reset_index(drop=True)
    formats = {"lr": lambda v: f"{v:g}", "trainable_params": lambda v: f"{v:,.0f}",
               "train_size": lambda v: f"{v:.0f}", "eval_size": lambda v: f"{v:.0f}", "max_length": lambda v: f"{v:.0f}"}
    for column, shown in formats.items():
        if column in rows:
            rows[column] = [("–" if pd.isna(v) else shown(v)) for v in rows[column]]
    return rows


def chart(written: list[Path], name: str,
          missing: str = "the store has no finished (`ok`) runs yet. Run notebooks 01-04 first."):
    """Show a chart that write_report or write_ablation just wrote (by file name), or say why there is none."""
    from IPython.display import Image, Markdown

    for path in written:
        if Path(path).name == name:
            return Image(filename=str(path))
    return Markdown(f"*No `{name}`: {missing}*")


def run_curve(row: RunResult):
    """Show one run's stored training loss per step and validation accuracy per epoch, or say why there is none."""
    import tempfile

    from IPython.display import Image, Markdown

    from .curves import run_curve_chart

    path = run_curve_chart(row, Path(tempfile.mkdtemp(prefix="peft-imdb-curve-")) / "run.png")
    return Image(filename=str(path)) if path else Markdown("*This run's record holds no log history.*")


def as_call(config):
    """A peft or quantization config shown as the call that builds it: its class and the fields set away from
    their defaults (peft: the class's defaults; transformers' quantization configs: their `to_diff_dict`)."""
    from IPython.display import Markdown

    from .peft_fields import non_default_fields

    if hasattr(config, "to_diff_dict"):
        chosen = {k: v for k, v in sorted(config.to_diff_dict().items()) if not k.startswith("_")}
    else:
        chosen = non_default_fields(config)
    lines = [f"{type(config).__name__}(", *(f"    {name}={value!r}," for name, value in chosen.items()), ")"]
    return Markdown("```python\n" + "\n".join(lines) + "\n```")


def adapted_layer(model):
    """The first layer peft wrapped with an adapter (its name printed above it): what a method adds to a layer."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in model.named_modules():
        if isinstance(module, BaseTunerLayer):
            print(name.removeprefix("base_model.model."))
            return module
    raise ValueError("no layer of this model carries a peft adapter")
