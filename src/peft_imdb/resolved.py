"""A run resolved once: the request (RunConfig) turned into everything that names and builds the run.

The planner resolves each config here, once; model building, training, checkpoints, TensorBoard and the
record all read the resolved value instead of asking the config, the registry or the model for its name again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .config import IDENTITY_BASELINE, Profile, RunConfig, field_default
from .hardware import Precision, run_precision
from .methods import Method, get_method
from .models import model_id, model_type
from .peft_fields import non_default_fields, plain_fields
from .results import RunResult


@dataclass(frozen=True)
class ResolvedRun:
    """One run as it will train: its config with the precision resolved, architecture, peft config and names."""

    config: RunConfig  # precision is concrete (fp32, bf16 or fp16) here
    architecture: str  # config.model_type of the model, e.g. bert
    model_id: str  # the machine-independent model name (models.model_id)
    precision: Precision  # the precision and why it was chosen
    peft_config: Any = field(compare=False, repr=False)  # None for a method without an adapter
    identity: dict[str, Any] = field(compare=False)  # what determines the run
    group: str = ""  # hash of the identity without the seed: the runs of one summary row
    key: str = ""  # the run's name in the store
    label: str = ""  # the method and what sets the run apart from its defaults: `lora (r=16)`
    unavailable: str = ""  # why the installed peft cannot build the method (the run is stored as skipped)

    @property
    def method(self) -> Method:
        """The run's registry entry."""
        return get_method(self.config.method)

    @property
    def seed(self) -> int:
        """The training seed."""
        return self.config.seed

    def record(self, status: str, reason: str = "", **measured: Any) -> RunResult:
        """The run's record: its names and config, the status, and what was measured (ok, failed or skipped)."""
        from .environment import environment

        config = self.config
        return RunResult(key=self.key, group=self.group, identity=self.identity, label=self.label,
                         model=self.model_id, method=config.method, seed=config.seed, status=status, reason=reason,
                         config=config.to_dict(), lr=config.learning_rate, model_type=self.architecture,
                         precision_mode=self.precision.name, precision_reason=self.precision.reason,
                         env=environment(), **measured)


def resolve(config: RunConfig) -> ResolvedRun:
    """Resolve a config once: precision (with its reason), architecture, peft config, identity, key and label."""
    method = get_method(config.method)
    precision = run_precision(config.precision, method.cpu_bf16, method.name)
    config = replace(config, precision=precision.name)
    architecture = model_type(config.model, config.trust_remote_code)
    unavailable = method.unavailable() or ""
    peft_config = None if unavailable else method.peft_config(architecture, config.adapter, run=config)
    identity = _identity(config, peft_config)
    if unavailable:  # no peft config to name it by: its settings as given
        identity["adapter"] = {"unavailable": method.config_class, **config.adapter}
    group = _digest({k: v for k, v in identity.items() if k != "seed"})
    key = f"{model_id(config.model).replace('/', '--')}__{config.method}__seed{config.seed}__{group}"
    label = config.method if unavailable else _label(config, architecture, peft_config)
    return ResolvedRun(config, architecture, model_id(config.model), precision, peft_config, identity, group, key,
                       label, unavailable)


def _identity(config: RunConfig, peft_config) -> dict[str, Any]:
    """What determines the run: model, method, lr, the settings away from IDENTITY_BASELINE, the peft config.

    A setting at its baseline value, and a peft field at its class default, stays out: adding a field (with its
    baseline entry) renames no stored run, and changing a default renames the runs at the new one.
    """
    chosen = {"model": model_id(config.model), "method": config.method, "lr": config.learning_rate}
    for spec in fields(config):
        if spec.compare and spec.name not in chosen and spec.name != "adapter":
            if getattr(config, spec.name) != IDENTITY_BASELINE[spec.name]:
                chosen[spec.name] = getattr(config, spec.name)
    adapter = non_default_fields(peft_config)
    if adapter:
        chosen["adapter"] = adapter
    return chosen


def _digest(data: dict[str, Any]) -> str:
    """A short stable hash of plain data."""
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


# The recipe settings a table shows in a `recipe` column of their own (recipe_text) rather than in each label: how
# each reads when it differs from today's default.
RECIPE = {"dropout": lambda v: "dropout on" if v else "dropout off",
          "sampler": lambda v: f"{v} subsets", "test_reviews": lambda v: f"{v} test reviews"}


def recipe_text(config: dict[str, Any]) -> str:
    """A stored config's recipe settings that differ from today's defaults ('' for none): `dropout on, ...`.
    A setting the config lacks (stored before it existed) is at its IDENTITY_BASELINE value."""
    stored = {name: config.get(name, IDENTITY_BASELINE[name]) for name in RECIPE}
    return ", ".join(shown(stored[name]) for name, shown in RECIPE.items() if stored[name] != field_default(name))


# The data setting (with whether it scores test reviews) heads its table and precision has a column of its own:
# neither is part of a label.
_NOT_IN_LABEL = {f.name for f in fields(Profile)} | {"model", "method", "seed", "adapter", "lr", "data_dir",
                                                     "evaluate_test", "score_remaining", "precision"} | set(RECIPE)


def _label(config: RunConfig, architecture: str, peft_config) -> str:
    """The method's name and what sets the run apart from the method's defaults at its data setting."""
    method = get_method(config.method)
    labelled = [spec.name for spec in fields(config) if spec.compare and spec.name not in _NOT_IN_LABEL]
    parts = [f"{name}={_short(getattr(config, name))}" for name in labelled
             if getattr(config, name) != field_default(name, type(config))]
    if config.learning_rate != method.learning_rates[config.lr_table]:
        parts.append(f"lr={_short(config.learning_rate)}")
    if config.adapter:  # every peft field that differs, with the value the run really had
        reset = {name: field_default(name, type(config)) for name in labelled}
        default = method.peft_config(architecture, {}, run=replace(config, adapter={}, **reset))
        a, b = plain_fields(peft_config), plain_fields(default)
        parts += [f"{k}={_short(a.get(k))}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return config.method + (f" ({', '.join(sorted(parts))})" if parts else "")


def _short(value: Any) -> str:
    """A setting's value as a label shows it: lists comma-joined, floats short."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def stored_label(config: dict[str, Any], method: str) -> str:
    """The label of a stored config (records written before labels were stored); the method's name when the
    config no longer resolves here (e.g. a model folder of another machine)."""
    try:
        return resolve(RunConfig.from_dict(config)).label
    except Exception:
        return method
