"""Helpers the notebooks call: folders, parameter formulas, stored-or-new runs, store views, and execution."""

from __future__ import annotations

import os
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# Without ipywidgets, tqdm falls back to text progress bars in a notebook and says so on import;
# text bars are what a saved notebook should hold anyway. Set before .data imports datasets (tqdm).
warnings.filterwarnings("ignore", message="IProgress not found")

from .config import METHODS, Profile, RunConfig  # noqa: E402
from .data import DATA_ENV  # noqa: E402
from .results import RESULTS_ENV, RunResult  # noqa: E402

FIGURES_ENV = "PEFT_IMDB_FIGURES"
ALL_PARAMETERS = "all parameters of the trained model"
NOTEBOOKS = ("00_setup_and_data", "01_full_finetuning", "02_lora", "03_qlora", "04_ia3", "05_compare",
             "06_ablations")

# Storage of the frozen base weights under QLoRA: 4-bit NF4 codes, one 8-bit absmax per block of 64
# (double quantization) and one fp32 constant per 256 of those blocks: 4 + 8/64 + 32/(64*256) bits.
NF4_BITS_PER_WEIGHT = 4 + 8 / 64 + 32 / (64 * 256)

RUN_COLUMNS = ["status", "reason", "accuracy", "f1", "val_accuracy", "trainable_params", "adapter_params",
               "head_params", "total_params", "trainable_percent", "train_time_s", "train_samples_per_s",
               "eval_time_s", "peak_memory_mb", "memory_kind", "base_weight_bits", "saved_mb", "precision_mode",
               "lr", "device", "key"]
# What the statistics table shows (report.add_statistics): accuracy with its interval, the paired
# comparison with Full FT, and the costs; an ablation's varied column goes first.
STATISTICS_COLUMNS = ["model", "method", "lr", "n", "accuracy_mean", "accuracy_std", "acc_low", "acc_high", "diff",
                      "diff_low", "diff_high", "p_value", "trainable_params_mean", "train_time_s_mean",
                      "peak_memory_mb_mean", "memory_kind"]
STORE_COLUMNS = ["model", "method", "seed", "status", "accuracy", "f1", "trainable_params", "train_time_s",
                 "peak_memory_mb", "memory_kind", "saved_mb", "lr", "train_size", "eval_size", "max_length",
                 "finished_at", "reason"]


@dataclass(frozen=True)
class Folders:
    """Where the notebooks read data and write run records and figures."""

    data_dir: str | None  # None: the hub (stanfordnlp/imdb)
    results_dir: Path
    figures_dir: Path


def repository_root(start: str | os.PathLike | None = None) -> Path | None:
    """The checkout of this repository holding the working folder (notebooks run in notebooks/), if any."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "src" / "peft_imdb").is_dir():
            return folder
    return None


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The repository checkout, else the working folder (e.g. /content on Colab, installed from git)."""
    return repository_root(start) or Path(start or Path.cwd()).resolve()


def folders(start: str | os.PathLike | None = None) -> Folders:
    """PEFT_IMDB_DATA / PEFT_IMDB_RESULTS / PEFT_IMDB_FIGURES, else the repository's defaults.

    Data defaults to ../shared/data/imdb beside the checkout when it is there (as the Makefile does),
    else the hub; results and figures default to results/ and figures/ at the repository root.
    """
    root = project_root(start)
    data = os.environ.get(DATA_ENV) or None
    if data is None and (root.parent / "shared" / "data" / "imdb" / "train.jsonl").is_file():
        data = str(root.parent / "shared" / "data" / "imdb")
    return Folders(
        data_dir=data,
        results_dir=Path(os.environ.get(RESULTS_ENV) or root / "results"),
        figures_dir=Path(os.environ.get(FIGURES_ENV) or root / "figures"),
    )


def _shown(path: str | os.PathLike | None, root: Path | None) -> str | None:
    """A folder relative to the repository when it is in or beside it: outputs then hold no machine paths."""
    if path is None:
        return None
    path = Path(path).resolve()
    if root is not None and path.is_relative_to(root.parent):
        return os.path.relpath(path, root) + " (from the repository root)"
    return str(path)


def describe_settings(profile: Profile, where: Folders) -> pd.DataFrame:
    """The profile, folders, device and main versions this notebook runs with, as a small table."""
    from .hardware import device_name
    from .results import environment

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
    rows["learning rate used"] = f"{config.learning_rate:g}"
    rows["key in the results store"] = config.key()
    return pd.DataFrame({"value": rows}).rename_axis("field")


def _meta_model(config: RunConfig):
    """The model's architecture with no weights (on the meta device): enough to count parameters."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from .models import load_config

    model_config = load_config(config.model, config.trust_remote_code)
    model_config.num_labels = 2
    with torch.device("meta"):
        return AutoModelForSequenceClassification.from_config(model_config,
                                                             trust_remote_code=config.trust_remote_code)


def _in_modules(name: str, modules: list[str]) -> bool:
    """peft's rule for modules_to_save: a module of that name anywhere on the path."""
    return any(re.match(rf"(^|.*\.){re.escape(m)}($|\..*)", name) for m in modules)


def _targeted(name: str, targets: list[str]) -> bool:
    """peft's rule for target_modules given as a list: the exact name or a dotted suffix."""
    return name in targets or any(name.endswith(f".{t}") for t in targets)


def _part_of(name: str, base_prefix: str) -> tuple[str, int | None]:
    """Group a parameter name: 'bert.encoder.layer.*' (with its layer index), 'bert.embeddings', 'classifier'."""
    match = re.match(r"(.*?)\.(\d+)\.", name)
    if match:
        return f"{match.group(1)}.*", int(match.group(2))
    parts = name.split(".")
    return ".".join(parts[:2] if parts[0] == base_prefix else parts[:1]), None


def expected_parameters(config: RunConfig) -> pd.DataFrame:
    """Trainable parameters by formula from the architecture alone (before any run), part by part.

    LoRA / QLoRA: r * (d_in + d_out) per adapted weight matrix. IA3: one scaling vector per adapted
    layer, d_out long (keys, values) or d_in long (feed-forward). Full: every parameter. PEFT methods
    also train the classification head (methods.HEAD_MODULES).
    """
    import torch

    from .methods import head_modules, ia3_config, lora_config

    model = _meta_model(config)
    model_type = model.config.model_type
    heads = head_modules(model_type)
    rows = []
    if config.method == "full":
        parts: dict[str, list] = defaultdict(lambda: [set(), 0])
        for name, parameter in model.named_parameters():
            part, layer = _part_of(name, model.base_model_prefix)
            parts[part][0].add(layer)
            parts[part][1] += parameter.numel()
        for part, (layers, count) in parts.items():
            layers.discard(None)
            formula = f"{len(layers)} × {count // len(layers):,}" if layers else "every weight and bias"
            rows.append({"part": part, "layers": len(layers) or "", "formula": formula, "params": count})
    else:
        peft_config = ia3_config(config, model_type) if config.method == "ia3" else lora_config(config, model_type)
        targets = sorted(peft_config.target_modules)
        feedforward = sorted(getattr(peft_config, "feedforward_modules", None) or [])
        groups: dict[tuple, int] = defaultdict(int)
        for name, module in model.named_modules():
            if not isinstance(module, torch.nn.Linear) or _in_modules(name, heads) or not _targeted(name, targets):
                continue
            if config.method == "ia3":
                ff = any(name.endswith(f) for f in feedforward)  # peft's test for feed-forward: a plain suffix
                size = module.in_features if ff else module.out_features
                formula = f"d_in = {size}" if ff else f"d_out = {size}"
            else:
                size = config.lora_r * (module.in_features + module.out_features)
                formula = f"r·(d_in + d_out) = {config.lora_r}·({module.in_features} + {module.out_features})"
            groups[(re.sub(r"\.\d+\.", ".*.", name), formula, size)] += 1
        for (pattern, formula, size), layers in groups.items():
            rows.append({"part": f"adapter on {pattern}", "layers": layers, "formula": f"{layers} × {formula}",
                         "params": layers * size})
        for head in heads:
            count = sum(p.numel() for n, p in model.named_parameters() if _in_modules(n, [head]))
            if count:
                rows.append({"part": f"head: {head}", "layers": "", "formula": "trained in full", "params": count})
    total = sum(row["params"] for row in rows)
    rows.append({"part": "trainable (total)", "layers": "", "formula": "", "params": total})
    adapters = sum(row["params"] for row in rows if row["part"].startswith("adapter on"))
    all_params = sum(p.numel() for p in model.parameters()) + adapters
    rows.append({"part": ALL_PARAMETERS, "layers": "", "params": all_params,
                 "formula": "the pretrained model and the head" + (" + the adapters" if adapters else "")})
    frame = pd.DataFrame(rows).set_index("part")
    frame["share of the model"] = (frame["params"] / all_params).map(lambda x: f"{x:.3%}")
    return frame


def compare_parameters(expected: pd.DataFrame, row: RunResult) -> pd.DataFrame:
    """The formula's trainable count against the count measured in the run, and whether they agree."""
    heads = [part for part in expected.index if part.startswith("head:")]
    pairs = {"trainable": (int(expected.loc["trainable (total)", "params"]), row.trainable_params)}
    if heads:  # PEFT methods: the head is trained in full beside the adapters
        pairs["of which the head"] = (int(expected.loc[heads, "params"].sum()), row.head_params)
    pairs["all parameters"] = (int(expected.loc[ALL_PARAMETERS, "params"]), row.total_params)
    table = pd.DataFrame.from_dict(pairs, orient="index", columns=["formula", "measured in the run"])
    if row.trainable_params is None:
        table["measured in the run"] = ""
        table["agrees"] = f"not measured: the run is {row.status} ({row.reason})"
    else:
        table["agrees"] = table["formula"] == table["measured in the run"]
    return table


def weight_memory(config: RunConfig) -> pd.DataFrame:
    """Estimated size of the model's weights in fp32, in 16 bit, and as QLoRA stores them (NF4 linears).

    QLoRA quantizes the weight matrices of the linear layers outside the head; embeddings, norms,
    biases and the head stay in their load dtype (fp32 here). Weights only: activations, gradients
    and optimizer state are not in this table.
    """
    import torch

    from .methods import head_modules

    model = _meta_model(config)
    heads = head_modules(model.config.model_type)
    quantized = sum(m.weight.numel() for n, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and not _in_modules(n, heads))
    total = sum(p.numel() for p in model.parameters())
    rest = total - quantized
    mb = 2**20
    rows = {
        "fp32 (all weights)": {"MB": total * 4 / mb, "bits per weight": 32.0},
        "fp16 / bf16 (all weights)": {"MB": total * 2 / mb, "bits per weight": 16.0},
        "QLoRA: linear weights in NF4, the rest fp32": {
            "MB": (quantized * NF4_BITS_PER_WEIGHT / 8 + rest * 4) / mb,
            "bits per weight": (quantized * NF4_BITS_PER_WEIGHT + rest * 32) / total,
        },
    }
    frame = pd.DataFrame(rows).T.round(1).rename_axis("weights stored as")
    frame["note"] = ["", "", f"{quantized:,} of {total:,} parameters ({quantized / total:.0%}) are in quantized "
                             "linear layers; embeddings, norms, biases and the head are not"]
    return frame


def run_or_load(config: RunConfig, results_dir: str | os.PathLike | None = None,
                retrain: bool = False) -> RunResult:
    """The store's finished (`ok`) run of this config, said so in one line; else train and record it."""
    from .results import read_result
    from .train import run_and_record

    stored = None if retrain else read_result(config.key(), results_dir)
    if stored is not None and stored.status == "ok":
        print(f"stored run {stored.key} (finished {stored.finished_at}), not trained again; "
              "retrain=True trains it again")
        return stored
    return run_and_record(config, results_dir)


def ablation_base(profile: Profile, methods: Iterable[str] = METHODS, data_dir: str | None = None,
                  seed: int = 0) -> dict[str, RunConfig]:
    """Each method's default config on this profile (the method notebooks' runs), the ablations' base."""
    return {method: RunConfig.from_profile(profile, method, data_dir=data_dir, seed=seed) for method in methods}


def ablation_plan(base: dict[str, RunConfig], results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every run of the three ablations, its varied setting, and whether it is stored already or will train."""
    from .ablations import ABLATIONS, _model_type, ablation_configs, ablation_folder, placement
    from .results import has_ok_result

    rows = []
    for name in ABLATIONS:
        folder = ablation_folder(name, results_dir)
        for config in ablation_configs(name, base):
            key = config.key()
            where = ("stored in the ablation folder" if has_ok_result(key, folder) else
                     "stored in the study: copied" if has_ok_result(key, results_dir) else "trains")
            place = "" if config.method == "full" else placement(
                config.method, _model_type(config.model, config.trust_remote_code), config.target_modules)
            rows.append({"ablation": name, "method": config.method, "lora_r": config.lora_r if "lora" in config.method
                         else "", "placement": place, "lr": f"{config.learning_rate:.3g}", "seed": config.seed,
                         "run": where, "key": key})
    return pd.DataFrame(rows)


def statistics_view(table: pd.DataFrame, varied: str | None = None) -> pd.DataFrame:
    """The columns of a statistics table (report.add_statistics) worth reading, `varied` first."""
    if table.empty:
        return table
    columns = ([varied] if varied else []) + [c for c in STATISTICS_COLUMNS if c != varied and c in table.columns]
    shown = table[columns].dropna(axis=1, how="all")  # e.g. no comparison with Full FT where it did not run
    return shown.round({"accuracy_mean": 4, "accuracy_std": 4, "acc_low": 4, "acc_high": 4, "diff": 4,
                        "diff_low": 4, "diff_high": 4, "p_value": 4, "trainable_params_mean": 0,
                        "train_time_s_mean": 1, "peak_memory_mb_mean": 0})


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
    """The rows of these methods (all when None) from `load_results`, with the columns worth reading."""
    if isinstance(methods, str):
        methods = [methods]
    rows = frame if methods is None else frame[frame["method"].isin(methods)]
    return rows[[c for c in STORE_COLUMNS if c in rows.columns]].reset_index(drop=True)


def chart(written: list[Path], name: str,
          missing: str = "the store has no finished (`ok`) runs yet. Run notebooks 01-04 first."):
    """Show a chart that write_report or write_ablation just wrote (by file name), or say why there is none."""
    from IPython.display import Image, Markdown

    for path in written:
        if Path(path).name == name:
            return Image(filename=str(path))
    return Markdown(f"*No `{name}`: {missing}*")


def execute(path: str | os.PathLike, timeout_s: int | None = None, kernel_name: str = "python3"):
    """Run a notebook file top to bottom in a fresh kernel, in its own folder; return the executed copy.

    Raises nbclient's CellExecutionError at the first failing cell. The file itself is not written.
    """
    import nbformat

    path = Path(path)
    return execute_notebook(nbformat.read(path, as_version=4), path.parent, timeout_s, kernel_name)


def execute_notebook(notebook, workdir: str | os.PathLike, timeout_s: int | None = None,
                     kernel_name: str = "python3"):
    """Run an in-memory notebook in a fresh kernel whose working folder is `workdir`; return it."""
    from nbclient import NotebookClient

    client = NotebookClient(notebook, timeout=timeout_s, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(Path(workdir).resolve())}})
    client.execute()
    return notebook
